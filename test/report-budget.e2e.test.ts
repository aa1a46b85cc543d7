/**
 * End to end, issue 23 item 4: a slow GitHub never holds up a deadline. The real worker (wrangler dev)
 * reports to a fake GitHub that answers every call 14 s late (just under a send's 15 s timeout); an
 * agent is killed mid-job, so its job's stale deadline comes due while the alarm is sending. The job
 * must end `interrupted` in the next alarm, after at most the one send in flight — not after every
 * report due has been sent.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { waitForAgent, waitForJob } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { startWorker, type WorkerProcess } from "../dev/worker-process.ts";
import { type FakeGitHub, startFakeGitHub } from "../testing/fake-github.ts";
import { push } from "../testing/push.ts";

const TARGET = "slow";
const REPO = "acme/slow";
const TOKEN = "ghp_slowgithubtoken";

let github: FakeGitHub;
let worker: WorkerProcess;
let agent: AgentProcess;

beforeAll(async () => {
  github = await startFakeGitHub({ tokens: [TOKEN] });
  worker = await startWorker({ vars: { GITHUB_API_URL: github.url, AGENT_STALE_SECONDS: "1" }, secrets: { GITHUB_TOKEN: TOKEN } });
  agent = await startAgent({
    server: worker.url, target: TARGET, name: "web-1",
    // Heartbeats well inside AGENT_STALE_SECONDS: a socket silent past it is closed as a dead one.
    extra: { heartbeat: "200ms" },
    pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: mkdtempSync(join(tmpdir(), "hookrelay-slow-")), timeout: "1m", steps: [{ name: "wait", run: "sleep 20" }] }],
  });
  await waitForAgent(worker.url, TARGET, "web-1");
}, 120_000);

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await worker?.stop();
  await github?.close();
});

describe("an alarm pass sending to a slow GitHub", () => {
  it("a job deadline due meanwhile runs in the next alarm, before the reports queued behind the send in flight", async () => {
    github.delayAnswers(14_000);
    const res = await push(worker.url, TARGET, REPO, "d".repeat(40));
    expect(res.status).toBe(202);
    const jobId: string = res.body.jobs[0].id;
    await waitForJob(worker.url, TARGET, jobId, ["running"]);
    // Due now: GitHub's deployment, `queued` behind it, and `in_progress`. The agent dies: its job goes
    // stale a second later, while the alarm waits on GitHub.
    await agent.stop("SIGKILL");
    const ended = await waitForJob(worker.url, TARGET, jobId, ["interrupted"], 90_000);
    const made = github.deployments(REPO);
    const states = made.flatMap((d) => github.statusesOf(REPO, d.id).map((s) => s.state));
    // At most the send in flight when the deadline came due got through first: never `in_progress`.
    expect(states).not.toContain("in_progress");
    expect(ended.status).toBe("interrupted");
    // And the reports still go out, in order, over the following alarms.
    github.delayAnswers(0);
    await eventually("GitHub told of the failure", async () => {
      const all = github.deployments(REPO).flatMap((d) => github.statusesOf(REPO, d.id).map((s) => s.state));
      return all.at(-1) === "failure" ? all : undefined;
    }, 90_000, 200).then((all) => expect(all).toEqual(["queued", "in_progress", "failure"]));
  }, 240_000);
});
