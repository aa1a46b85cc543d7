/**
 * `npm run soak` stopped with ^C: the soak starts its worker and agents detached (a process group
 * each), so a terminal's SIGINT reaches the soak alone. It must stop what it started — no worker, agent
 * or step left running, no small disk left mounted (a person would need a shell and root to clean up) —
 * keep the processes' output, and exit 130.
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startProcess, type RunningProcess } from "../dev/process.ts";
import { REPO_ROOT } from "../dev/worker-process.ts";

/** Processes whose command line or environment names `dir` (wrangler's --persist-to, the agents' clock files). */
function processesNaming(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const text = readFileSync(`/proc/${entry}/cmdline`, "latin1") + readFileSync(`/proc/${entry}/environ`, "latin1");
      if (text.includes(dir)) found.push(Number(entry));
    } catch {
      /* gone, or not ours */
    }
  }
  return found;
}

let soak: RunningProcess | null = null;
let kept: string | undefined;
afterAll(async () => {
  await soak?.stop("SIGKILL");
  if (kept) rmSync(kept, { recursive: true, force: true }); // what the soak keeps for an operator to read
});

describe("npm run soak, interrupted", () => {
  it("stops its worker, agents and steps, unmounts its disks, keeps their output and exits 130 on SIGINT", async () => {
    soak = startProcess(process.execPath, ["scripts/soak.ts", "--faults", "1000", "--seed", "7"], {
      cwd: REPO_ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      label: "soak",
    });
    await soak.waitForOutput(/^fault \d+\/1000 /m, 180_000); // its world is up and faults are being thrown
    process.kill(soak.pid, "SIGINT"); // the soak alone, as a terminal's ^C reaches it
    const exit = await Promise.race([soak.exited, new Promise<null>((r) => setTimeout(() => r(null), 90_000))]);
    expect(exit, soak.output().slice(-3000)).toEqual({ code: 130, signal: null });

    const dir = (kept = /output kept in (\S+)/.exec(soak.output())?.[1]);
    expect(dir, soak.output().slice(-3000)).toMatch(/hookrelay-soak-/);
    expect(processesNaming(dir!)).toEqual([]);
    expect(readFileSync("/proc/mounts", "utf8").split("\n").filter((l) => l.includes(dir!))).toEqual([]);
    // The output of the processes it stopped is kept (the worker's lines, each agent's).
    expect(readdirSync(dir!)).toContain("processes.log");
    expect(readFileSync(join(dir!, "processes.log"), "utf8")).toMatch(/--- worker/);
  }, 300_000);
});
