/**
 * GitHub gets each deployment and each status once, even when it carried out a call whose answer never
 * came back (a timeout, or the worker stopped mid-send — the soak's worker SIGKILLs found the latter):
 * the retry looks at GitHub first. The real worker, a real agent, and the fake GitHub told to carry
 * out the first two POSTs (the deployment, the `queued` status) without answering them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, waitForAgent } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { startWorker, type WorkerProcess } from "../dev/worker-process.ts";
import { type FakeGitHub, startFakeGitHub } from "../testing/fake-github.ts";
import { push } from "../testing/push.ts";

const TARGET = "once";
const REPO = "acme/once";
const TOKEN = "once-github-token";
let github: FakeGitHub;
let worker: WorkerProcess;
let agent: AgentProcess;
let repo: GitRepo;

beforeAll(async () => {
  github = await startFakeGitHub({ tokens: [TOKEN] });
  worker = await startWorker({ vars: { GITHUB_API_URL: github.url, REPORT_RETRY_SECONDS: "1" }, secrets: { GITHUB_TOKEN: TOKEN } });
  repo = createRepo({ VERSION: "1\n" });
  agent = await startAgent({
    server: worker.url, target: TARGET, name: "web-1",
    pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, steps: [{ name: "ok", run: "true" }] }],
  });
  await waitForAgent(worker.url, TARGET, "web-1");
}, 90_000);

afterAll(async () => {
  await agent?.stop();
  await worker?.stop();
  await github?.close();
});

describe("reports whose answer was lost", () => {
  it("are not sent twice: one GitHub deployment, each status once, in order", async () => {
    github.applyWithoutAnswer(2);
    const sha = repo.commit({ VERSION: "2\n" }, "v2");
    const res = await push(worker.url, TARGET, REPO, sha);
    expect(res.status).toBe(202);
    const id = res.body.deployments[0].id as string;
    // Each unanswered call times out (15 s) and is retried; the reports end sent.
    const reports = await eventually("every report sent", async () => {
      const d = (await api(worker.url, `/api/targets/${TARGET}/deployments/${id}`)).body;
      return d.status === "succeeded" && d.reports.length === 4 && d.reports.every((r: any) => r.state === "sent") ? d.reports : undefined;
    }, 90_000, 250);
    expect(reports.map((r: any) => r.attempts)).toEqual([2, 2, 1, 1]);
    const made = github.deployments(REPO).filter((d) => (d.payload as any)?.deployment === id);
    expect(made).toHaveLength(1);
    expect(github.statusesOf(REPO, made[0]!.id).map((s) => s.state)).toEqual(["queued", "in_progress", "success"]);
  }, 120_000);
});
