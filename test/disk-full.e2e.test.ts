/**
 * A full disk under the agent's state_dir (a small tmpfs of its own, filled with a ballast file), with
 * the real worker and the real agent: a job running when the disk fills cannot spool its output and
 * ends; once the space returns its end must reach the worker — without waiting for the worker's job
 * deadline or an agent restart — and the agent takes the next job. A job that arrives while the disk is
 * full cannot even be accepted (its id is not written down); once the space returns the worker sends it
 * again, over the same connection, and it runs. Needs a machine that lets us mount a tmpfs (root in a
 * container that allows it); elsewhere the test says why it is skipped.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, jobLog, waitForAgent } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { startWorker, type WorkerProcess } from "../dev/worker-process.ts";
import { mountSmallDisk, type SmallDisk } from "../testing/soak/small-disk.ts";
import { push } from "../testing/push.ts";

const TARGET = "disk";
const REPO = "acme/disk";
const dir = mkdtempSync(join(tmpdir(), "hookrelay-disk-full-"));
const mounted = mountSmallDisk(join(dir, "disk"), 4);
const disk: SmallDisk | null = mounted.disk;
if (!disk) console.log(`disk-full e2e skipped: ${"why" in mounted ? mounted.why : ""}`);

const ACCEPT_TARGET = "disk-accept";
let worker: WorkerProcess;
let agent: AgentProcess;
let acceptAgent: AgentProcess;
let repo: GitRepo;

beforeAll(async () => {
  if (!disk) return;
  repo = createRepo({ VERSION: "1\n" });
  // A long job deadline, so only the agent can end the job within the test's waits; a short stale
  // period, the time after which a job sent and not accepted is sent again.
  worker = await startWorker({ vars: { JOB_GRACE_SECONDS: "600", AGENT_STALE_SECONDS: "3" } });
  agent = await startAgent({
    server: worker.url,
    target: TARGET,
    name: "web-1",
    stateDir: join(disk.dir, "state"),
    extra: { heartbeat: "1s" },
    env: { HOOKRELAY_RECONNECT_MAX_MS: "500" },
    pipelines: [
      {
        name: "app",
        repo: REPO,
        branches: ["main"],
        workdir: repo.live,
        timeout: "10m",
        // Prints steadily until the file it waits for appears (the test makes it once the disk is full),
        // then 20 KB more: past the page the spool's segment file already has on the tmpfs.
        steps: [{ name: "print", run: `i=0; while [ ! -e "${dir}/go-$HOOKRELAY_SHA" ] || [ $i -lt 5 ]; do i=$((i+1)); echo "line $i"; sleep 0.1; done; for k in $(seq 1 400); do echo ${"x".repeat(49)}; done; echo done` }],
      },
    ],
  });
  await waitForAgent(worker.url, TARGET, "web-1");

  // Its record of accepted ids ends 26 bytes short of a page (110 ids of 36 characters): on a full
  // tmpfs the next id (37 bytes) cannot be written whole, so the next job cannot be accepted.
  const acceptState = join(disk.dir, "accept-state");
  mkdirSync(acceptState, { recursive: true, mode: 0o700 });
  writeFileSync(join(acceptState, "accepted"), Array.from({ length: 110 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}\n`).join(""));
  acceptAgent = await startAgent({
    server: worker.url,
    target: ACCEPT_TARGET,
    name: "web-2",
    stateDir: acceptState,
    extra: { heartbeat: "1s" },
    env: { HOOKRELAY_RECONNECT_MAX_MS: "500" },
    pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, timeout: "1m", steps: [{ name: "say", run: 'echo "deployed $HOOKRELAY_SHA"' }] }],
  });
  await waitForAgent(worker.url, ACCEPT_TARGET, "web-2");
}, 90_000);

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await acceptAgent?.stop("SIGKILL");
  await worker?.stop("SIGKILL");
  disk?.unmount();
  rmSync(dir, { recursive: true, force: true });
});

async function job(id: string, target = TARGET): Promise<any> {
  return (await api(worker.url, `/api/targets/${target}/jobs/${id}`)).body;
}

describe.skipIf(!disk)("a full disk under the agent's state_dir", () => {
  it("a job that could not spool ends once space returns, and the agent takes the next job", async () => {
    const sha = repo.commit({ VERSION: "2\n" }, "v2");
    const first = (await push(worker.url, TARGET, REPO, sha)).body.jobs[0].id as string;
    await eventually("the job to print", async () => ((await jobLog(worker.url, TARGET, first)).includes("line 3") ? true : undefined), 30_000, 100);

    disk!.fill();
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(dir, `go-${sha}`), ""); // outside the small disk: the step can finish
    // The step's output had nowhere to go. Its job's end either had nowhere to go either (retried once
    // space returns: job-server.test.ts), or fit in what a cut-back short write left free.
    await agent.process.waitForOutput(new RegExp(`\\[job ${first}\\] (could not spool the job's end|finished: failed)`), 30_000);
    disk!.release();

    const ended = await eventually(`job ${first} to end on the worker`, async () => {
      const j = await job(first);
      return j.status !== "running" && j.status !== "queued" ? j : undefined;
    }, 30_000, 200).catch(async (e) => {
      throw new Error(`${(e as Error).message}; the worker shows ${JSON.stringify(await job(first)).slice(0, 300)}\n${agent.process.output().slice(-3000)}`);
    });
    expect(ended.status).toBe("failed");
    // What was spooled before the disk filled reached the worker, in order, each line once.
    const log = await jobLog(worker.url, TARGET, first, "print");
    expect(log).toMatch(/^line 1\nline 2\nline 3\n/);

    const sha3 = repo.commit({ VERSION: "3\n" }, "v3");
    writeFileSync(join(dir, `go-${sha3}`), "");
    const next = (await push(worker.url, TARGET, REPO, sha3)).body.jobs[0].id as string;
    const done = await eventually(`job ${next} to end`, async () => {
      const j = await job(next);
      return ["succeeded", "failed", "interrupted", "canceled", "timed_out"].includes(j.status) ? j : undefined;
    }, 60_000, 200);
    expect(done.status).toBe("succeeded");
    expect(await jobLog(worker.url, TARGET, next, "print")).toBe(`line 1\nline 2\nline 3\nline 4\nline 5\n${`${"x".repeat(49)}\n`.repeat(400)}done\n`);
  }, 180_000);

  it("a job that could not be accepted is sent again once space returns, and runs, over the same connection", async () => {
    const sha = repo.commit({ VERSION: "4\n" }, "v4");
    const connectedAt = async () => ((await api(worker.url, `/api/targets/${ACCEPT_TARGET}/agents`)).body.agents as any[]).find((a) => a.name === "web-2").connectedAt as string;
    const before = await connectedAt();
    disk!.fill();
    const id = (await push(worker.url, ACCEPT_TARGET, REPO, sha)).body.jobs[0].id as string;
    await acceptAgent.process.waitForOutput(new RegExp(`\\[job ${id}\\] not accepted: spool: `), 30_000);
    // Nothing ran, and the worker holds it sent, not running: the agent did not write it down.
    expect((await job(id, ACCEPT_TARGET)).status).toBe("queued");
    // A stale period on (3 s) the worker sends it again; with the disk still full it is refused again.
    const refusals = () => acceptAgent.process.output().match(new RegExp(`\\[job ${id}\\] not accepted: spool: `, "g"))?.length ?? 0;
    await eventually("the job to be sent again and refused again", () => refusals() >= 2 || undefined, 30_000, 100);
    expect((await job(id, ACCEPT_TARGET)).status).toBe("queued");
    disk!.release();

    const done = await eventually(`job ${id} to end`, async () => {
      const j = await job(id, ACCEPT_TARGET);
      return ["succeeded", "failed", "interrupted", "canceled", "timed_out"].includes(j.status) ? j : undefined;
    }, 30_000, 200).catch(async (e) => {
      throw new Error(`${(e as Error).message}; the worker shows ${JSON.stringify(await job(id, ACCEPT_TARGET)).slice(0, 300)}\n${acceptAgent.process.output().slice(-3000)}`);
    });
    expect(done.status).toBe("succeeded");
    expect(await jobLog(worker.url, ACCEPT_TARGET, id, "say")).toBe(`deployed ${sha}\n`);
    // It came over the connection the agent had all along: no reconnect was needed to get it again.
    expect(await connectedAt()).toBe(before);
  }, 120_000);
});
