/**
 * A wall clock that jumps (an NTP step, a VM resumed) does not decide a job's timeout: the real agent,
 * its clock moved an hour on mid-job (testing/clock-shim.ts, loaded with --import; timers stay
 * monotonic as on a real machine), still runs the next step of a job with a 1-minute timeout.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, waitForAgent, waitForJob } from "../dev/api.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { REPO_ROOT, startWorker, type WorkerProcess } from "../dev/worker-process.ts";
import { push } from "../testing/push.ts";

const TARGET = "clock";
const REPO = "acme/clock";
const STUBBORN = "acme/stubborn";
const dir = mkdtempSync(join(tmpdir(), "hookrelay-clock-"));
const clockFile = join(dir, "clock");
let worker: WorkerProcess;
let agent: AgentProcess;
let repo: GitRepo;

beforeAll(async () => {
  writeFileSync(clockFile, "0\n");
  repo = createRepo({ VERSION: "1\n" });
  worker = await startWorker();
  agent = await startAgent({
    server: worker.url, target: TARGET, name: "web-1",
    env: { HOOKRELAY_TEST_CLOCK_FILE: clockFile },
    command: [process.execPath, "--import", join(REPO_ROOT, "testing/clock-shim.ts"), join(REPO_ROOT, "agent/commands/cli.ts")],
    extra: { kill_grace: "3s" },
    pipelines: [{
      name: "app", repo: REPO, branches: ["main"], workdir: repo.live, timeout: "1m",
      steps: [
        { name: "wait", run: `for i in $(seq 1 600); do [ -e "${dir}/go-$HOOKRELAY_SHA" ] && break; sleep 0.05; done; echo waited` },
        { name: "next", run: "echo next" },
      ],
    }, {
      // Ignores SIGTERM: only the SIGKILL after kill_grace stops it.
      name: "stubborn", repo: STUBBORN, branches: ["main"], workdir: repo.live, timeout: "10m",
      steps: [{ name: "hold", run: "trap '' TERM; echo holding; while true; do sleep 0.1; done" }],
    }],
  });
  await waitForAgent(worker.url, TARGET, "web-1");
}, 90_000);

afterAll(async () => {
  await agent?.stop();
  await worker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a wall-clock jump on the agent", () => {
  it("an hour forward mid-job does not time the job out", async () => {
    const sha = repo.commit({ VERSION: "2\n" }, "v2");
    const id = (await push(worker.url, TARGET, REPO, sha)).body.jobs[0].id as string;
    await agent.process.waitForOutput(new RegExp(`\\[job ${id}\\] step wait started`), 30_000);
    writeFileSync(clockFile, `${3600_000}\n`);
    await new Promise((r) => setTimeout(r, 300)); // the shim reads the file every 100 ms: the jump has happened before the step ends
    writeFileSync(join(dir, `go-${sha}`), "");
    const job = await waitForJob(worker.url, TARGET, id, undefined, 60_000);
    expect(job.status).toBe("succeeded");
    expect(job.steps.map((s: any) => `${s.name} ${s.status}`)).toEqual(["wait succeeded", "next succeeded"]);
  });

  it("an hour back during the kill grace does not stretch it: a step that ignores SIGTERM is killed after kill_grace, and the job ends", async () => {
    writeFileSync(clockFile, "0\n");
    const sha = repo.commit({ VERSION: "3\n" }, "v3");
    const id = (await push(worker.url, TARGET, STUBBORN, sha)).body.jobs[0].id as string;
    await agent.process.waitForOutput(new RegExp(`\\[job ${id}\\] step hold started`), 30_000);
    expect((await api(worker.url, `/api/targets/${TARGET}/jobs/${id}/cancel`, { method: "POST" })).status).toBe(202);
    await agent.process.waitForOutput(new RegExp(`\\[job ${id}\\] cancel requested by the worker`), 30_000);
    // Inside the 3 s grace (the shim reads the file every 100 ms): the clock goes back an hour.
    writeFileSync(clockFile, `${-3600_000}\n`);
    // Well before the worker's own cancel grace (60 s) would end it without the agent.
    const job = await waitForJob(worker.url, TARGET, id, undefined, 30_000);
    expect(job.status).toBe("canceled");
    expect(agent.process.output()).toMatch(new RegExp(`\\[job ${id}\\] finished: canceled`));
  });
});
