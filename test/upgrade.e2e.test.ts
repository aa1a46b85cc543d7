/**
 * End to end: an agent upgraded mid-job. What an agent before protocol 3 spooled (its JSON frames, one
 * a line, in `events-N.log`) and the worker never acknowledged is sent by the upgraded agent to the
 * real worker (wrangler dev) and stored: nothing is lost across the upgrade, and nothing runs again.
 * The old agent is played by a plain WebSocket client (the worker takes only one protocol, so its
 * hello says 3); its spool is written as that agent wrote it.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { PROTOCOL_VERSION, type JobEventBody, type PipelineDecl, type WorkerMessage } from "../shared/protocol.ts";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { agentToken, api, jobLog, waitForAgent, waitForJob } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";

const REPO = "acme/upgrade";
let worker: WorkerProcess;
let repo: GitRepo;
let agent: AgentProcess | undefined;

beforeAll(async () => {
  repo = createRepo({ VERSION: "1\n" });
  worker = await startWorker();
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await worker?.stop();
});

describe("an agent upgraded in the middle of a job", () => {
  it("sends what the older agent spooled as text frames, the worker stores it, and the job ends as it ended there", async () => {
    const name = "web-up";
    const token = await agentToken(worker.url, "default", name);
    const decl: PipelineDecl = { name: "app", repo: REPO, events: ["push"], branches: ["main"], steps: ["deploy"], onFailure: [], timeoutMs: 60_000, rollout: { batch: 1, haltOnFailure: true } };

    // The old agent: connected, declared its pipeline, took the job and said `accepted`; then it was
    // stopped for the upgrade before any event reached the worker.
    const ws = new WebSocket(`${worker.url.replace(/^http/, "ws")}/agent?target=default&agent=${name}`, { headers: { authorization: `Bearer ${token}` } });
    const frames: WorkerMessage[] = [];
    ws.on("message", (data, isBinary) => {
      if (!isBinary && data.toString() !== "pong") frames.push(JSON.parse(data.toString()) as WorkerMessage);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    ws.send(JSON.stringify({ type: "hello", protocol: PROTOCOL_VERSION, agent: name, version: "old", pipelines: [decl], unfinished: [] }));
    await eventually("welcome", () => frames.some((f) => f.type === "welcome"));
    const sha = repo.head(repo.work);
    const res = await sendWebhook(worker.url, { secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: "refs/heads/main", after: sha }) });
    expect(res.status).toBe(202);
    const jobId: string = res.body.jobs[0].id;
    await eventually("the job frame", () => frames.some((f) => f.type === "job" && f.jobId === jobId));
    ws.send(JSON.stringify({ type: "accepted", jobId }));
    await eventually("the job running", async () => (await api(worker.url, `/api/targets/default/jobs/${jobId}`)).body.status === "running");
    ws.close(1000, "upgrading");
    await eventually("the old agent gone", async () => (await api(worker.url, "/api/targets/default/agents")).body.agents.find((a: { name: string }) => a.name === name)?.connected === false);

    // Its state_dir as it left it: the job accepted, its four events in the old format, none acked.
    const stateDir = join(mkdtempSync(join(tmpdir(), "hookrelay-upgrade-")), "state");
    mkdirSync(join(stateDir, "jobs", jobId), { recursive: true });
    writeFileSync(join(stateDir, "accepted"), `${jobId}\n`);
    const old = (seq: number, body: JobEventBody) => JSON.stringify({ type: "event", jobId, seq, at: Date.now(), body });
    writeFileSync(
      join(stateDir, "jobs", jobId, "events-1.log"),
      [
        old(1, { kind: "step-start", step: "deploy" }),
        old(2, { kind: "output", step: "deploy", stream: "stdout", data: "printed by the old agent ✓\n" }),
        old(3, { kind: "step-end", step: "deploy", status: "succeeded", exitCode: 0 }),
        old(4, { kind: "job-end", status: "succeeded" }),
      ].join("\n") + "\n",
    );

    // The upgraded agent, on that state_dir, with the same pipeline (whose step would leave a mark if it ran).
    agent = await startAgent({
      server: worker.url,
      name,
      token,
      stateDir,
      pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, steps: [{ name: "deploy", run: "touch ran-again" }] }],
    });
    await waitForAgent(worker.url, "default", name);
    const job = await waitForJob(worker.url, "default", jobId);
    expect(job.status).toBe("succeeded");
    expect(await jobLog(worker.url, "default", jobId)).toBe("--- deploy\nprinted by the old agent ✓\n--- deploy succeeded (exit 0)\n--- job succeeded\n");
    // Acked, so the spool lets the job go; and the job did not run again.
    await eventually("the spool to drop the job", () => !existsSync(join(stateDir, "jobs", jobId)));
    expect(existsSync(join(repo.live, "ran-again"))).toBe(false);
  }, 120_000);
});
