/**
 * End to end: the real worker (wrangler dev) + the real agent process over a real WebSocket on
 * loopback + real git repositories. A signed push deploys; a hostile branch name executes nothing.
 */
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { agentToken, api, jobLog, waitForAgent, waitForJob } from "../dev/api.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";

const REPO = "acme/shop";
let worker: WorkerProcess;
let agent: AgentProcess;
let repo: GitRepo;
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "hookrelay-e2e-"));
  repo = createRepo({ "VERSION": "1\n" });
  worker = await startWorker();
  agent = await startAgent({
    server: worker.url,
    name: "web-1",
    pipelines: [
      {
        name: "app",
        repo: REPO,
        branches: ["main", "x**"],
        workdir: repo.live,
        timeout: "1m",
        steps: [
          { name: "fetch", run: 'git fetch -q origin && git reset -q --hard "$HOOKRELAY_SHA" && echo "now at $(git rev-parse HEAD)"' },
          { name: "record", run: `printf '%s' "$HOOKRELAY_BRANCH" > ${scratch}/branch; printf '%s' "$HOOKRELAY_REF" > ${scratch}/ref; env | grep -c '^HOOKRELAY_AGENT_TOKEN=' || true` },
          { name: "check", run: 'test "$(cat VERSION)" = "$(git show HEAD:VERSION)" && echo "serving version $(cat VERSION)"' },
        ],
      },
    ],
  });
  await waitForAgent(worker.url, "default", "web-1");
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await worker?.stop();
});

describe("a signed push", () => {
  it("deploys the pushed commit to the live checkout and keeps the log", async () => {
    const before = repo.head(repo.work);
    const sha = repo.commit({ VERSION: "2\n" }, "version 2");
    const res = await sendWebhook(worker.url, { secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: "refs/heads/main", after: sha, before }) });
    expect(res.status).toBe(202);
    expect(res.body.jobs).toHaveLength(1);
    expect(res.body.jobs[0]).toMatchObject({ agent: "web-1", pipeline: "app", status: "queued" });

    const job = await waitForJob(worker.url, "default", res.body.jobs[0].id);
    expect(job.status).toBe("succeeded");
    expect(job).toMatchObject({ sha, ref: "refs/heads/main", repo: REPO, pipeline: "app", agent: "web-1", delivery: res.delivery });
    expect(job.steps.map((s: any) => [s.name, s.status, s.exitCode])).toEqual([
      ["fetch", "succeeded", 0],
      ["record", "succeeded", 0],
      ["check", "succeeded", 0],
    ]);
    expect(repo.head()).toBe(sha);

    const log = await jobLog(worker.url, "default", job.id);
    expect(log).toContain(`now at ${sha}`);
    expect(log).toContain("serving version 2");
    // The agent's own token never reaches a step's environment.
    expect(await jobLog(worker.url, "default", job.id, "record")).toBe("0\n");
  });

  it("passes a branch named like a command substitution only as data", async () => {
    for (const branch of [`x$(touch ${scratch}/pwned)`, "x`touch${IFS}" + scratch + "/pwned2`"]) {
      const sha = repo.commit({ VERSION: `${branch.length}\n` }, "hostile branch", "main");
      const res = await sendWebhook(worker.url, { secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: `refs/heads/${branch}`, after: sha }) });
      expect(res.status).toBe(202);
      const job = await waitForJob(worker.url, "default", res.body.jobs[0].id);
      expect(job.status).toBe("succeeded");
      expect(readFileSync(join(scratch, "branch"), "utf8")).toBe(branch);
      expect(readFileSync(join(scratch, "ref"), "utf8")).toBe(`refs/heads/${branch}`);
    }
    expect(existsSync(join(scratch, "pwned"))).toBe(false);
    expect(existsSync(join(scratch, "pwned2"))).toBe(false);
  });

  it("ignores a push to a branch no pipeline declares", async () => {
    const sha = repo.commit({ VERSION: "dev\n" }, "dev work", "dev");
    const res = await sendWebhook(worker.url, { secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: "refs/heads/dev", after: sha }) });
    expect(res.status).toBe(200);
    expect(res.body.jobs).toEqual([]);
    expect(res.body.ignored).toMatch(/refs\/heads\/dev/);
  });

  it("refuses a push signed with the wrong secret and creates no job", async () => {
    const jobsBefore = (await api(worker.url, "/api/targets/default/jobs?limit=200")).body.jobs.length;
    const sha = repo.commit({ VERSION: "evil\n" }, "unsigned");
    const res = await sendWebhook(worker.url, { secret: "not-the-secret", payload: pushPayload({ repo: REPO, ref: "refs/heads/main", after: sha }) });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: "invalid signature" });
    expect((await api(worker.url, "/api/targets/default/jobs?limit=200")).body.jobs.length).toBe(jobsBefore);
  });
});

describe("agent tokens", () => {
  it("refuses another agent's valid token for web-1's name: the real web-1 stays connected and deploys", async () => {
    // web-2's token, as a deploy step on web-2's host could read it, used to claim web-1.
    const stolen = await agentToken(worker.url, "default", "web-2");
    const impostor = await startAgent({ server: worker.url, name: "web-1", token: stolen, pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: scratch, steps: [{ name: "fake", run: "echo deployed fine" }] }] });
    try {
      await impostor.process.waitForOutput(/token rejected by the worker \(HTTP 401\)/, 30_000);
    } finally {
      await impostor.stop();
    }
    const sha = repo.commit({ VERSION: "after-impostor\n" }, "after impostor");
    const res = await sendWebhook(worker.url, { secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: "refs/heads/main", after: sha }) });
    expect(res.status).toBe(202);
    const job = await waitForJob(worker.url, "default", res.body.jobs[0].id);
    expect(job.status).toBe("succeeded");
    expect(await jobLog(worker.url, "default", job.id)).toContain("serving version after-impostor");
    expect(await jobLog(worker.url, "default", job.id)).not.toContain("deployed fine");
  });
});
