/**
 * Gates end to end (issue 25): the real worker under `wrangler dev`, real agent processes, real git
 * repositories; every webhook signed as GitHub signs it, the CI conclusions shaped like GitHub's own
 * `workflow_run.completed` example (dev/github.ts workflowRunPayload).
 *
 * - a push to a pipeline with `wait_for: {workflows: [CI]}` waits (nothing runs on the host) until a
 *   `workflow_run` of the same repository, sha and head repository concludes success; then its step runs;
 * - a `workflow_run` concluding failure ends it `blocked`: nothing ran, GitHub (testing/fake-github.ts)
 *   got a `failure` status naming the run, and the notification (testing/notify-receiver.ts) names it;
 * - a fork's run of the same sha leaves it waiting (the genuine run then opens it);
 * - a tag push deploys only the pipeline whose `tags` match, its step seeing HOOKRELAY_TAG and an empty
 *   HOOKRELAY_BRANCH;
 * - a docs-only push is ignored by a `paths: ["app/**"]` pipeline and deploys a pipeline without paths;
 * - the worker SIGKILLed while a deployment waits, restarted on the same storage: the run's success
 *   still opens the gate and the step runs;
 * - two workflows and a check, all required (the last one opens it); conclusions that came before the
 *   push (it deploys at once); a re-run that passes after a failure (a new deployment runs); a newer push
 *   superseding a waiting one; a gate timeout (`timeout: 2s`) ending it `blocked`.
 *
 * What ran is checked on the host itself (each step appends a line to a file only this test reads) and
 * through the API (the deployment, its job and its step).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, getDeployment, jobLog, waitForAgent, waitForDeployment } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { createRepo, git, type GitRepo } from "../dev/git-repo.ts";
import { checkRunPayload, pushPayload, sendWebhook, workflowRunPayload } from "../dev/github.ts";
import { startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";
import { type FakeGitHub, startFakeGitHub } from "../testing/fake-github.ts";
import { type NotifyReceiver, startNotifyReceiver } from "../testing/notify-receiver.ts";

const REPO = "acme/gated";
const GITHUB_TOKEN = "ghp_gates_e2e_0123456789abcdefghij";
/** Longer than the dispatch (4 ms after the commit), the alarm's net (2 s) is not: a job sent at all is sent by then. */
const NOTHING_RAN_MS = 1_500;

const scratch = mkdtempSync(join(tmpdir(), "hookrelay-gates-e2e-"));
let files = 0;
/** A new file on the host the steps append to; its lines. */
function hostFile(): { path: string; lines: () => string[] } {
  const path = join(scratch, `ran-${++files}.txt`);
  return { path, lines: () => (existsSync(path) ? readFileSync(path, "utf8").split("\n").filter((l) => l !== "") : []) };
}

async function send(worker: WorkerProcess, target: string, event: string, payload: Record<string, unknown>) {
  return sendWebhook(worker.url, { target, event, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload });
}

/** A signed push of `sha` to `ref`; with `changed`, the commit's files as GitHub lists them in `commits`. */
async function push(worker: WorkerProcess, target: string, ref: string, sha: string, changed?: { added?: string[]; modified?: string[]; removed?: string[] }) {
  const payload = pushPayload({ repo: REPO, ref, after: sha, before: "1".repeat(40) });
  if (changed) payload.commits = [{ id: sha, message: "change", added: changed.added ?? [], modified: changed.modified ?? [], removed: changed.removed ?? [] }];
  return send(worker, target, "push", payload);
}

/** A push that made exactly one deployment; its id. */
async function pushOne(worker: WorkerProcess, target: string, sha: string): Promise<string> {
  const res = await push(worker, target, "refs/heads/main", sha);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  expect(res.body.deployments).toHaveLength(1);
  return res.body.deployments[0].id;
}

const runOf = (sha: string, o: { conclusion?: string; headRepo?: string } = {}) => workflowRunPayload({ repo: REPO, sha, name: "CI", ...o });
const runUrl = (run: Record<string, unknown>) => (run.workflow_run as { html_url: string }).html_url;

/** The deployment still `waiting`, its one job never started, and nothing on the host, after NOTHING_RAN_MS. */
async function stillWaiting(worker: WorkerProcess, target: string, id: string, ran: () => string[], sha: string): Promise<any> {
  await new Promise((r) => setTimeout(r, NOTHING_RAN_MS));
  const d = await getDeployment(worker.url, target, id);
  expect(d.status).toBe("waiting");
  expect(d.gates).toEqual([expect.objectContaining({ kind: "workflow", name: "CI", state: "waiting", url: null })]);
  for (const job of d.jobs) {
    expect(job.startedAt).toBeNull();
    for (const step of job.steps ?? []) expect(step.status).not.toMatch(/running|succeeded|failed/);
  }
  expect(ran().filter((l) => l.includes(sha))).toEqual([]);
  return d;
}

/** The deployment ran its one step on the host: the API says so, and so does the host's file. */
async function ranOnHost(worker: WorkerProcess, target: string, id: string, ran: () => string[], line: string): Promise<any> {
  const done = await waitForDeployment(worker.url, target, id, ["succeeded", "failed", "blocked", "canceled", "superseded"], 30_000);
  expect(done.status).toBe("succeeded");
  expect(done.jobs).toHaveLength(1);
  expect(done.jobs[0].startedAt).toBeTruthy();
  expect(done.jobs[0].steps).toEqual([expect.objectContaining({ name: "deploy", status: "succeeded" })]);
  expect(ran()).toContain(line);
  return done;
}

describe("gates end to end: CI conclusions, tags and paths on one worker", () => {
  let worker: WorkerProcess;
  let github: FakeGitHub;
  let receiver: NotifyReceiver;
  let repo: GitRepo;
  const agents: AgentProcess[] = [];
  const ci = hostFile();
  const tags = hostFile();
  const paths = hostFile();

  beforeAll(async () => {
    github = await startFakeGitHub({ tokens: [GITHUB_TOKEN] });
    const notifySecret = `whsec_${randomBytes(32).toString("base64")}`;
    receiver = await startNotifyReceiver({ secret: notifySecret });
    worker = await startWorker({
      vars: { GITHUB_API_URL: github.url, PUBLIC_URL: "https://hookrelay.example.test", REPORT_RETRY_SECONDS: "1" },
      secrets: { GITHUB_TOKEN, NOTIFY_URLS: receiver.standardUrl(), NOTIFY_SECRET: notifySecret },
    });
    repo = createRepo({ "app/main.py": "print('v1')\n", "docs/x.md": "# v1\n" });
    const step = (file: string, what: string) => [{ name: "deploy", run: `echo "${what}" >> '${file}'` }];
    const started = await Promise.all([
      // CI-gated: only after the workflow "CI" passed for the sha.
      startAgent({
        server: worker.url, target: "ci", name: "web-1",
        pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, environment: "production", wait_for: { workflows: ["CI"] }, steps: step(ci.path, "deployed $HOOKRELAY_SHA") }],
      }),
      // Two pipelines on one host: the branch one and the release one (tags v*).
      startAgent({
        server: worker.url, target: "tags", name: "web-1",
        pipelines: [
          { name: "app", repo: REPO, branches: ["main"], workdir: repo.live, steps: step(tags.path, "app $HOOKRELAY_SHA") },
          {
            name: "release", repo: REPO, branches: ["main"], tags: ["v*"], workdir: repo.live,
            steps: [{ name: "deploy", run: `git fetch -q --tags origin && echo "release tag=[$HOOKRELAY_TAG] branch=[\${HOOKRELAY_BRANCH-unset}] sha=$HOOKRELAY_SHA at=$(git rev-parse "refs/tags/$HOOKRELAY_TAG^{commit}")" >> '${tags.path}'` }],
          },
        ],
      }),
      // A monorepo service that deploys only when its files changed, and a site (another target) that deploys on every push.
      startAgent({
        server: worker.url, target: "paths-app", name: "web-1",
        pipelines: [{ name: "app", repo: REPO, branches: ["main"], paths: ["app/**"], workdir: repo.live, steps: step(paths.path, "app $HOOKRELAY_SHA") }],
      }),
      startAgent({
        server: worker.url, target: "paths-site", name: "web-1",
        pipelines: [{ name: "site", repo: REPO, branches: ["main"], workdir: repo.live, steps: step(paths.path, "site $HOOKRELAY_SHA") }],
      }),
    ]);
    agents.push(...started);
    for (const target of ["ci", "tags", "paths-app", "paths-site"]) await waitForAgent(worker.url, target, "web-1");
  }, 90_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await worker?.stop();
    await github?.close();
    await receiver?.close();
  });

  it("a push waits for its workflow: nothing runs until CI concludes success for that sha, then the step runs", async () => {
    const sha = repo.commit({ "app/main.py": "print('v2')\n" }, "v2");
    const id = await pushOne(worker, "ci", sha);
    const waiting = await stillWaiting(worker, "ci", id, ci.lines, sha);
    expect(waiting.gates[0].requiredBy).toEqual(["web-1"]);
    expect(Date.parse(waiting.waitingUntil)).toBeGreaterThan(Date.now());

    const run = runOf(sha);
    const answer = await send(worker, "ci", "workflow_run", run);
    expect(answer.status).toBe(200);
    expect(answer.body.gates).toEqual([{ deployment: id, gate: "workflow CI", state: "passed" }]);

    const done = await ranOnHost(worker, "ci", id, ci.lines, `deployed ${sha}`);
    expect(done.gates).toEqual([expect.objectContaining({ kind: "workflow", name: "CI", state: "passed", url: runUrl(run), by: "success" })]);
    expect(done.blockedReason).toBeNull();
    expect(await jobLog(worker.url, "ci", done.jobs[0].id)).not.toContain("blocked");
  });

  it("a workflow concluding failure blocks it: nothing ran, GitHub got `failure` naming the run, so did the notification", async () => {
    const sha = repo.commit({ "app/main.py": "raise SystemExit(1)\n" }, "broken");
    const id = await pushOne(worker, "ci", sha);
    await stillWaiting(worker, "ci", id, ci.lines, sha);

    const run = runOf(sha, { conclusion: "failure" });
    const url = runUrl(run);
    const answer = await send(worker, "ci", "workflow_run", run);
    expect(answer.body.gates).toEqual([{ deployment: id, gate: "workflow CI", state: "failed" }]);

    const blocked = await waitForDeployment(worker.url, "ci", id, ["blocked"], 10_000);
    expect(blocked.blockedReason).toContain("failure");
    expect(blocked.blockedReason).toContain(url);
    expect(blocked.gates).toEqual([expect.objectContaining({ state: "failed", url, by: "failure" })]);
    // Nothing ran: the job never started, and a while later the host still has no line for this sha.
    await new Promise((r) => setTimeout(r, NOTHING_RAN_MS));
    const later = await getDeployment(worker.url, "ci", id);
    expect(later.status).toBe("blocked");
    expect(later.jobs.map((j: any) => [j.status, j.startedAt])).toEqual([["skipped", null]]);
    expect(ci.lines().filter((l) => l.includes(sha))).toEqual([]);

    // GitHub: the deployment of this sha went pending ("waiting for CI") → failure, the run's URL in the description.
    const statuses = await eventually(`GitHub's failure status for ${sha.slice(0, 7)}`, async () => {
      const found = github.deployments(REPO).filter((d) => d.ref === sha);
      if (found.length !== 1) return undefined;
      const s = github.statusesOf(REPO, found[0]!.id);
      return s.at(-1)?.state === "failure" ? s : undefined;
    }, 30_000, 100);
    expect(statuses.map((s) => s.state)).toEqual(["pending", "failure"]);
    expect(statuses[0]!.description).toBe("waiting for CI");
    expect(statuses[1]!.description).toContain(url);
    expect(statuses[1]!.description!.length).toBeLessThanOrEqual(140);

    // The notification: a verified Standard Webhooks `deployment.blocked` whose reason names the run.
    const told = await eventually("the deployment.blocked notification", async () => receiver.received.find((n) => (n.event as any)?.type === "deployment.blocked" && n.body.includes(id)), 30_000, 100);
    expect(told.problems).toEqual([]);
    expect(told.event).toMatchObject({ type: "deployment.blocked", data: { deployment: id, status: "blocked", sha } });
    expect((told.event as any).data.reason).toContain(url);
  });

  it("a fork's run of the same sha leaves it waiting; the repository's own run then opens it", async () => {
    const sha = repo.commit({ "app/main.py": "print('v3')\n" }, "v3");
    const id = await pushOne(worker, "ci", sha);
    const fork = await send(worker, "ci", "workflow_run", runOf(sha, { headRepo: "mallory/gated" }));
    expect(fork.status).toBe(200);
    expect(fork.body.gates ?? []).toEqual([]);
    expect(fork.body.ignored).toMatch(/mallory\/gated, a fork\) never opens a gate/);
    await stillWaiting(worker, "ci", id, ci.lines, sha);

    // Not a gate that nothing opens: the same conclusion from the repository itself deploys it.
    await send(worker, "ci", "workflow_run", runOf(sha));
    await ranOnHost(worker, "ci", id, ci.lines, `deployed ${sha}`);
  });

  it("a tag push deploys only the pipeline whose tags match; its step sees HOOKRELAY_TAG and an empty HOOKRELAY_BRANCH", async () => {
    const sha = repo.commit({ "app/main.py": "print('v1.2.0')\n" }, "release 1.2.0");
    git(repo.work, "tag", "v1.2.0", sha);
    git(repo.work, "push", "-q", "origin", "refs/tags/v1.2.0");
    const res = await push(worker, "tags", "refs/tags/v1.2.0", sha);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.deployments.map((d: any) => d.pipeline)).toEqual(["release"]);
    const done = await ranOnHost(worker, "tags", res.body.deployments[0].id, tags.lines, `release tag=[v1.2.0] branch=[] sha=${sha} at=${sha}`);
    expect(done.ref).toBe("refs/tags/v1.2.0");
    expect(tags.lines()).toEqual([`release tag=[v1.2.0] branch=[] sha=${sha} at=${sha}`]);

    // A tag no pipeline names deploys nothing.
    const other = await push(worker, "tags", "refs/tags/nightly", sha);
    expect(other.status).toBe(200);
    expect(other.body).toMatchObject({ jobs: [], ignored: expect.stringContaining("no pipeline") });
    await new Promise((r) => setTimeout(r, NOTHING_RAN_MS));
    expect(tags.lines()).toHaveLength(1);
  });

  it("a docs-only push is ignored by a `paths: [app/**]` pipeline and deploys a pipeline without paths; a push touching app/ deploys it", async () => {
    const docs = repo.commit({ "docs/x.md": "# v2\n" }, "docs only");
    const ignored = await push(worker, "paths-app", "refs/heads/main", docs, { modified: ["docs/x.md"] });
    expect(ignored.status).toBe(200);
    expect(ignored.body).toMatchObject({ jobs: [], ignored: "no changed file matches paths" });
    const site = await push(worker, "paths-site", "refs/heads/main", docs, { modified: ["docs/x.md"] });
    expect(site.status).toBe(202);
    await ranOnHost(worker, "paths-site", site.body.deployments[0].id, paths.lines, `site ${docs}`);
    expect(paths.lines().filter((l) => l.startsWith("app "))).toEqual([]);

    const code = repo.commit({ "app/main.py": "print('v4')\n" }, "code");
    const app = await push(worker, "paths-app", "refs/heads/main", code, { modified: ["app/main.py"] });
    expect(app.status, JSON.stringify(app.body)).toBe(202);
    await ranOnHost(worker, "paths-app", app.body.deployments[0].id, paths.lines, `app ${code}`);
    expect(paths.lines().filter((l) => l.startsWith("app "))).toEqual([`app ${code}`]);
  });
});

describe("gates end to end: a worker killed while a deployment waits", () => {
  let worker: WorkerProcess;
  let repo: GitRepo;
  let agent: AgentProcess;
  const ran = hostFile();

  beforeAll(async () => {
    worker = await startWorker();
    repo = createRepo();
    agent = await startAgent({
      server: worker.url, target: "restart", name: "web-1", extra: { heartbeat: "1s" },
      pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, wait_for: { workflows: ["CI"] }, steps: [{ name: "deploy", run: `echo "deployed $HOOKRELAY_SHA" >> '${ran.path}'` }] }],
    });
    await waitForAgent(worker.url, "restart", "web-1");
  }, 90_000);

  afterAll(async () => {
    await agent?.stop();
    await worker?.stop();
  });

  it("keeps the waiting deployment across a SIGKILL and a restart on the same storage; CI's success then opens the gate and the step runs", async () => {
    const sha = repo.commit({ "README.md": "v2\n" }, "v2");
    const id = await pushOne(worker, "restart", sha);
    await waitForDeployment(worker.url, "restart", id, ["waiting"], 10_000);

    await worker.process.stop("SIGKILL");
    await worker.restart(); // same port, same --persist-to storage
    await waitForAgent(worker.url, "restart", "web-1", 30_000);
    await stillWaiting(worker, "restart", id, ran.lines, sha);

    const answer = await send(worker, "restart", "workflow_run", runOf(sha));
    expect(answer.body.gates).toEqual([{ deployment: id, gate: "workflow CI", state: "passed" }]);
    await ranOnHost(worker, "restart", id, ran.lines, `deployed ${sha}`);
    expect(ran.lines()).toEqual([`deployed ${sha}`]);
  });
});

describe("gates end to end: every gate, early conclusions, re-runs, supersede, timeout", () => {
  let worker: WorkerProcess;
  let repo: GitRepo;
  const agents: AgentProcess[] = [];
  const ran = hostFile();
  const quick = hostFile();
  const conclude = (target: string, sha: string, gate: "CI" | "Build" | "lint", conclusion = "success") =>
    gate === "lint"
      ? send(worker, target, "check_run", checkRunPayload({ repo: REPO, sha, name: "lint", conclusion }))
      : send(worker, target, "workflow_run", runOf(sha, { conclusion, name: gate } as { conclusion: string }));
  const states = async (target: string, id: string) => (await getDeployment(worker.url, target, id)).gates.map((g: any) => `${g.kind} ${g.name} ${g.state}`);

  beforeAll(async () => {
    worker = await startWorker();
    repo = createRepo();
    const step = (file: string) => [{ name: "deploy", run: `echo "deployed $HOOKRELAY_SHA" >> '${file}'` }];
    agents.push(
      ...(await Promise.all([
        startAgent({
          server: worker.url, target: "many", name: "web-1",
          pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, wait_for: { workflows: ["CI", "Build"], checks: ["lint"] }, steps: step(ran.path) }],
        }),
        startAgent({
          server: worker.url, target: "quick", name: "web-1",
          pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, wait_for: { workflows: ["CI"], timeout: "2s" }, steps: step(quick.path) }],
        }),
      ])),
    );
    for (const target of ["many", "quick"]) await waitForAgent(worker.url, target, "web-1");
  }, 90_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await worker?.stop();
  });

  it("needs every gate: two workflows and a check; the last conclusion opens it", async () => {
    const sha = repo.commit({ "app/main.py": "print('many')\n" }, "many");
    const id = await pushOne(worker, "many", sha);
    await conclude("many", sha, "CI");
    await conclude("many", sha, "lint", "neutral");
    expect(await states("many", id)).toEqual(["workflow CI passed", "workflow Build waiting", "check lint passed"]);
    await new Promise((r) => setTimeout(r, NOTHING_RAN_MS));
    expect((await getDeployment(worker.url, "many", id)).status).toBe("waiting");
    expect(ran.lines().filter((l) => l.includes(sha))).toEqual([]);
    await conclude("many", sha, "Build", "skipped");
    await ranOnHost(worker, "many", id, ran.lines, `deployed ${sha}`);
  });

  it("takes conclusions that came before the push: the push deploys at once", async () => {
    const sha = repo.commit({ "app/main.py": "print('early')\n" }, "early");
    for (const gate of ["CI", "Build", "lint"] as const) {
      const early = await conclude("many", sha, gate);
      expect(early.body.ignored).toMatch(/no deployment waits for it \(kept/);
    }
    const id = await pushOne(worker, "many", sha);
    await ranOnHost(worker, "many", id, ran.lines, `deployed ${sha}`);
  });

  it("a re-run that passes after a failure deploys the commit again: a new deployment, and it runs", async () => {
    const sha = repo.commit({ "app/main.py": "print('flaky')\n" }, "flaky");
    const first = await pushOne(worker, "many", sha);
    await conclude("many", sha, "Build");
    await conclude("many", sha, "lint");
    await conclude("many", sha, "CI", "failure");
    expect((await waitForDeployment(worker.url, "many", first, ["blocked"], 10_000)).blockedReason).toMatch(/^CI concluded failure \(workflow CI\)/);
    const rerun = await conclude("many", sha, "CI");
    expect(rerun.status, JSON.stringify(rerun.body)).toBe(202);
    const again = rerun.body.deployments[0].id;
    expect(again).not.toBe(first);
    await ranOnHost(worker, "many", again, ran.lines, `deployed ${sha}`);
    expect(ran.lines().filter((l) => l.includes(sha))).toHaveLength(1);
  });

  it("a newer push supersedes a waiting deployment; the older commit's CI then opens nothing", async () => {
    const older = repo.commit({ "app/main.py": "print('older')\n" }, "older");
    const olderId = await pushOne(worker, "many", older);
    const newer = repo.commit({ "app/main.py": "print('newer')\n" }, "newer");
    const newerId = await pushOne(worker, "many", newer);
    expect((await getDeployment(worker.url, "many", olderId)).status).toBe("superseded");
    for (const gate of ["CI", "Build", "lint"] as const) await conclude("many", older, gate);
    await new Promise((r) => setTimeout(r, NOTHING_RAN_MS));
    expect(ran.lines().filter((l) => l.includes(older))).toEqual([]);
    expect((await getDeployment(worker.url, "many", newerId)).status).toBe("waiting");
  });

  it("ends blocked when CI does not conclude within the gate's timeout (the alarm), nothing run", async () => {
    const sha = repo.commit({ "app/main.py": "print('slow')\n" }, "slow");
    const id = await pushOne(worker, "quick", sha);
    const blocked = await waitForDeployment(worker.url, "quick", id, ["blocked"], 15_000);
    expect(blocked.blockedReason).toBe("CI did not finish within 2 s (still waiting for workflow CI)");
    expect(blocked.jobs.map((j: any) => [j.status, j.startedAt])).toEqual([["skipped", null]]);
    expect(quick.lines()).toEqual([]);
  });
});
