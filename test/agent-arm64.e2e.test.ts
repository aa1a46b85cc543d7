/**
 * The arm64 single executable (`npm run build` → dist/hookrelay-agent-linux-arm64: npm's arm64 Node of
 * the same version with the same SEA blob), run as an arm64 server would: `--version`, `check` on a
 * config, and one real deploy against the real worker. On an x64 machine it runs under qemu-aarch64
 * (Debian's qemu-user) with an arm64 C library (Debian's libc6-arm64-cross, libstdc++6-arm64-cross and
 * libgcc-s1-arm64-cross, or multiarch libc6:arm64); where those are missing it is skipped, saying why.
 */
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { jobLog, waitForAgent, waitForJob } from "../dev/api.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { REPO_ROOT, startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";

const ARM64 = join(REPO_ROOT, "dist/hookrelay-agent-linux-arm64");
const REPO = "acme/arm64";
const SEA_FUSE_ON = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1";
/** Where an x64 Debian keeps an arm64 C library: the cross packages' sysroot, or multiarch (then no -L). */
const CROSS_SYSROOT = "/usr/aarch64-linux-gnu";

const buildUnsupported = process.platform === "linux" && (process.arch === "x64" || process.arch === "arm64") ? null : `the single executables are built on linux-x64 and linux-arm64 only (this is ${process.platform}-${process.arch})`;

/** How to run an arm64 program here, or why it cannot run. */
function arm64Runner(): { command: string[] } | { skip: string } {
  if (buildUnsupported) return { skip: buildUnsupported };
  if (process.arch === "arm64") return { command: [] };
  try {
    execFileSync("qemu-aarch64", ["--version"], { stdio: "pipe" });
  } catch {
    return { skip: "no qemu-aarch64 on this machine (Debian: apt-get install qemu-user; .ci/apt-packages.txt lists it)" };
  }
  if (existsSync("/lib/ld-linux-aarch64.so.1")) return { command: ["qemu-aarch64"] };
  const libs = ["ld-linux-aarch64.so.1", "libc.so.6", "libstdc++.so.6", "libgcc_s.so.1"];
  const missing = libs.filter((l) => !existsSync(join(CROSS_SYSROOT, "lib", l)));
  if (missing.length > 0) return { skip: `qemu-aarch64 is here but no arm64 C library for it (${missing.join(", ")} missing in ${CROSS_SYSROOT}/lib): apt-get install libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross` };
  return { command: ["qemu-aarch64", "-L", CROSS_SYSROOT] };
}

const runner = arm64Runner();
const cannotRun = "skip" in runner ? runner.skip : null;
if (buildUnsupported) console.log(`skipping the arm64 build test: ${buildUnsupported}`);
if (cannotRun) console.log(`skipping the arm64 executable's runs: ${cannotRun}`);
const run = "command" in runner ? [...runner.command, ARM64] : [];

let worker: WorkerProcess | undefined;
let repo: GitRepo;
let agent: AgentProcess | undefined;

beforeAll(async () => {
  if (buildUnsupported) return;
  // The README's build: both single executables (the arm64 one's Node fetched from npm once, then cached).
  execFileSync("npm", ["run", "build"], { cwd: REPO_ROOT, stdio: "pipe" });
  repo = createRepo({ VERSION: "1\n" });
  if (!cannotRun) worker = await startWorker();
}, 300_000);

afterAll(async () => {
  await agent?.stop();
  await worker?.stop();
});

function elfMachine(file: string): number {
  const fd = openSync(file, "r");
  try {
    const head = Buffer.alloc(20);
    readSync(fd, head, 0, 20, 0);
    expect(head.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    return head.readUInt16LE(18);
  } finally {
    closeSync(fd);
  }
}

function agentYml(dir: string, server: string, name: string, token: string): string {
  const file = join(dir, "agent.yml");
  writeFileSync(
    file,
    [
      `server: ${server}`,
      `name: ${name}`,
      `token: ${token}`,
      `state_dir: ${join(dir, "state")}`,
      "pipelines:",
      "  - name: app",
      `    repo: ${REPO}`,
      "    branches: [main]",
      `    workdir: ${repo.live}`,
      "    steps:",
      "      - { name: fetch, run: 'git fetch -q origin && git reset -q --hard \"$HOOKRELAY_SHA\" && echo \"now at $(git rev-parse HEAD)\"' }",
      "",
    ].join("\n"),
  );
  return file;
}

describe("the arm64 single executable", () => {
  it.skipIf(buildUnsupported !== null)("npm run build makes dist/hookrelay-agent-linux-arm64: an arm64 Node with the agent's blob", () => {
    expect(elfMachine(ARM64)).toBe(0xb7); // EM_AARCH64
    expect(statSync(ARM64).size).toBeGreaterThan(30e6); // a Node inside
    expect(statSync(ARM64).mode & 0o111).toBe(0o111);
    expect(readFileSync(ARM64).includes(SEA_FUSE_ON)).toBe(true); // postject flipped the fuse: it runs its blob
  });

  it.skipIf(buildUnsupported !== null)("the install line of docs/operations.md (\"Deploying by hand\") picks the file for `uname -m`", () => {
    const line = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8").split("\n").find((l) => l.startsWith("install -m 0755 hookrelay-agent-linux-$(uname -m"));
    const pick = /\$\((uname -m \| [^)]*)\)/.exec(line ?? "")?.[1];
    expect(pick).toBeDefined();
    for (const [machine, file] of [["x86_64", "hookrelay-agent-linux-x64"], ["aarch64", "hookrelay-agent-linux-arm64"]]) {
      const picked = execFileSync("sh", ["-c", `uname() { echo ${machine}; }; echo "hookrelay-agent-linux-$(${pick})"`], { encoding: "utf8" }).trim();
      expect(picked).toBe(file);
      expect(existsSync(join(REPO_ROOT, "dist", picked))).toBe(true);
    }
  });

  it.skipIf(cannotRun !== null)("--version and check on a config", () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
    const [cmd, ...args] = run;
    expect(execFileSync(cmd!, [...args, "--version"], { encoding: "utf8" })).toBe(`hookrelay-agent ${pkg.version}\n`);
    const dir = mkdtempSync(join(tmpdir(), "hookrelay-arm64-"));
    const config = agentYml(dir, "wss://hookrelay.example.workers.dev", "arm-1", "x".repeat(40));
    const out = execFileSync(cmd!, [...args, "check", "--config", config], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(out).toContain("agent:     arm-1");
    expect(out).toContain(`pipeline app: ${REPO}, push to main; workdir ${repo.live}`);
    expect(out).toContain(`${config}: OK\n`);
    // And a problem is one.
    const bad = join(dir, "bad.yml");
    writeFileSync(bad, readFileSync(config, "utf8").replace(repo.live, join(dir, "no-such-dir")));
    expect(() => execFileSync(cmd!, [...args, "check", "--config", bad], { stdio: "pipe" })).toThrow(/does not exist or is not a directory/);
  }, 60_000);

  it.skipIf(cannotRun !== null)("deploys a real push from the local worker", async () => {
    const name = "arm-1";
    agent = await startAgent({
      server: worker!.url,
      name,
      command: run,
      pipelines: [
        {
          name: "app",
          repo: REPO,
          branches: ["main"],
          workdir: repo.live,
          steps: [
            { name: "fetch", run: 'git fetch -q origin && git reset -q --hard "$HOOKRELAY_SHA" && echo "now at $(git rev-parse HEAD)"' },
            // The agent is the step shell's parent: its command line names the arm64 executable.
            { name: "agent", run: "tr '\\0' ' ' < /proc/$PPID/cmdline" },
          ],
        },
      ],
    });
    await waitForAgent(worker!.url, "default", name, 60_000);
    const sha = repo.commit({ VERSION: "2\n" }, "deploy on arm64", "main");
    const res = await sendWebhook(worker!.url, { secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: "refs/heads/main", after: sha }) });
    expect(res.status).toBe(202);
    const job = await waitForJob(worker!.url, "default", res.body.jobs[0].id, undefined, 90_000);
    expect([job.status, job.agent]).toEqual(["succeeded", name]);
    expect(await jobLog(worker!.url, "default", job.id, "fetch")).toBe(`now at ${sha}\n`);
    expect(readFileSync(join(repo.live, "VERSION"), "utf8")).toBe("2\n");
    expect(await jobLog(worker!.url, "default", job.id, "agent")).toContain(`${run.join(" ")} run --config `);
  }, 120_000);
});
