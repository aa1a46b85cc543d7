/**
 * Gates at their edges, from an adversarial review: which runs may open a gate (a pull request's never),
 * what a re-run deploys and where, force-pushes and paths, rollbacks after the conclusion is gone, the
 * timeout, attempts delivered out of order, notes, what run events leave behind. Each failed before its
 * fix. Payloads are GitHub-shaped (testing/workerd/run-payloads.ts).
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { WaitForDecl } from "../../../shared/protocol.ts";
import { api, apiJson, helloAgent, pipeline, postWebhook, pushPayload, type TestAgent, uniqueName } from "../../../testing/workerd/worker-support.ts";
import { HEAD_SHA, REPO, workflowRunPayload } from "../../../testing/workerd/run-payloads.ts";
import type { DeliveryBody, DeploymentView } from "../types.ts";
import { MAX_CONCLUSIONS, storeConclusion } from "./conclusions.ts";

const HOUR = 3_600_000;
const waitFor = (w: Partial<WaitForDecl>): WaitForDecl => ({ workflows: [], checks: [], approval: false, timeoutMs: 2 * HOUR, ...w });
const decl = (o: Parameters<typeof pipeline>[0] = {}) => pipeline({ repo: REPO, branches: ["main"], ...o });

let runs = 0;
/** A completed run of "CI" on REPO's HEAD_SHA; each call another run (another body). */
function run(over: Record<string, unknown> = {}): Record<string, unknown> {
  runs += 1;
  const id = 900_000 + runs;
  return workflowRunPayload({ id, html_url: `https://github.com/${REPO}/actions/runs/${id}`, updated_at: new Date().toISOString(), ...over });
}

async function conclude(target: string, payload: Record<string, unknown>, event: "workflow_run" | "check_run" = "workflow_run"): Promise<{ status: number; body: DeliveryBody }> {
  const res = await postWebhook(target, JSON.stringify(payload), { event });
  return { status: res.status, body: (await res.json()) as DeliveryBody };
}

async function pushMain(target: string, over: Record<string, unknown> = {}): Promise<{ status: number; body: DeliveryBody }> {
  const body = pushPayload({ ref: "refs/heads/main", after: HEAD_SHA, repository: { full_name: REPO }, ...over });
  const res = await postWebhook(target, JSON.stringify(body));
  return { status: res.status, body: (await res.json()) as DeliveryBody };
}

const deploymentOf = (target: string, id: string) => apiJson(`/api/targets/${target}/deployments/${id}`) as Promise<DeploymentView>;

async function nothingSent(agent: TestAgent): Promise<void> {
  await new Promise((r) => setTimeout(r, 150));
  expect(agent.pending().filter((f) => f.type === "job")).toEqual([]);
}

describe("gates: which runs open a gate", () => {
  // GitHub runs a `pull_request_target` workflow for a fork's pull request in the base repository:
  // its workflow_run names the base repository as head_repository and the base branch's head as
  // head_sha (actions/checkout#2454: "when workflow_run is triggered by pull_request_target, the
  // head_sha points to the base branch, not the PR head"). Such a run is the fork's pull request,
  // not a test of the pushed commit, and commonly runs the fork's code.
  it("a pull_request_target run (a fork's pull request) does not open the gate of the base branch's head", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [decl({ waitFor: waitFor({ workflows: ["CI"] }) })]);
    const dep = (await pushMain(target)).body.deployments![0]!;
    await conclude(target, run({ event: "pull_request_target", head_branch: "main", pull_requests: [] }));
    expect((await deploymentOf(target, dep.id)).status).toBe("waiting");
    await nothingSent(agent);
    agent.close();
  });

  it("a fork's pull_request_target run that passes does not re-deploy a commit whose own CI failed", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [decl({ waitFor: waitFor({ workflows: ["CI"] }) })]);
    const dep = (await pushMain(target)).body.deployments![0]!;
    await conclude(target, run({ conclusion: "failure" }));
    expect((await deploymentOf(target, dep.id)).status).toBe("blocked");
    const answer = await conclude(target, run({ event: "pull_request_target", head_branch: "main", pull_requests: [] }));
    expect(answer.body.jobs).toEqual([]);
    await nothingSent(agent);
    agent.close();
  });
});

describe("gates: a passing re-run deploys what the push deployed", () => {
  it("re-deploys on the hosts the push matched, not on a host whose paths left the push out", async () => {
    const target = uniqueName();
    const gate = waitFor({ workflows: ["CI"] });
    const web1 = await helloAgent(target, "web-1", [decl({ waitFor: gate, paths: ["app/**"] })]);
    const web2 = await helloAgent(target, "web-2", [decl({ waitFor: gate, paths: ["api/**"] })]);
    const pushed = await pushMain(target, { commits: [{ added: [], modified: ["app/views.py"], removed: [] }] });
    expect(pushed.body.jobs.map((j) => j.agent), "the push").toEqual(["web-1"]);
    await conclude(target, run({ conclusion: "failure" }));
    const rerun = await conclude(target, run());
    expect(rerun.status).toBe(202);
    // web-2's config said this push is not its business; the agent cannot re-check paths itself.
    expect(rerun.body.jobs.map((j) => j.agent), "the re-run's deployment").toEqual(["web-1"]);
    web1.close();
    web2.close();
  });

  it("re-deploys on the hosts the push matched, not on a host whose branches do not take the pushed branch", async () => {
    const target = uniqueName();
    const gate = waitFor({ workflows: ["CI"] });
    const web1 = await helloAgent(target, "web-1", [decl({ waitFor: gate })]);
    const web2 = await helloAgent(target, "web-2", [decl({ waitFor: gate, branches: ["release"] })]);
    const pushed = await pushMain(target);
    expect(pushed.body.jobs.map((j) => j.agent), "the push").toEqual(["web-1"]);
    await conclude(target, run({ conclusion: "failure" }));
    const rerun = await conclude(target, run());
    // web-2 would refuse the job (its branches) and fail the re-deployment, telling GitHub `failure`.
    expect(rerun.body.jobs.map((j) => j.agent), "the re-run's deployment").toEqual(["web-1"]);
    web1.close();
    web2.close();
  });
});

describe("gates: paths on a force-push", () => {
  // A force-push (GitHub sends `forced: true`) can drop commits: its `commits` list only the new ones,
  // not what changed between `before` and `after`. GitHub Actions judges a push to an existing branch by
  // the two-dot diff before..after; the commits' own files cannot tell it, so the filter must pass.
  it("a force-push that drops an app commit (a rollback) is not ignored by a paths pipeline because its new commit touched only docs", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [decl({ paths: ["app/**"] })]);
    const first = await pushMain(target, { after: "c".repeat(40), commits: [{ added: [], modified: ["app/views.py"], removed: [] }] });
    expect(first.body.jobs).toHaveLength(1);
    // main reset to before the app commit, plus a docs commit, pushed with --force.
    const rollback = await pushMain(target, { before: "c".repeat(40), after: "d".repeat(40), forced: true, commits: [{ added: [], modified: ["docs/rollback.md"], removed: [] }] });
    expect(rollback.body.ignored, "the rollback push").toBeUndefined();
    expect(rollback.body.jobs).toHaveLength(1);
    agent.close();
  });
});

describe("gates: re-deploying a commit that already passed its gates", () => {
  // The dashboard's "Re-deploy this commit" (POST …/deploy with its sha) is how an operator rolls back to
  // the last good commit. That commit passed its CI gates when it deployed (its gates rows say so, kept
  // with the deployment), but its conclusion is gone from `conclusions` once MAX_CONCLUSIONS newer runs
  // came (a busy repository's few days, or hours with an org-wide hook): CI will not run on it again.
  it("a manual re-deploy of a commit whose CI gate passed before does not wait for CI again after its conclusion was pushed out of the table", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [decl({ waitFor: waitFor({ workflows: ["CI"] }) })]);
    await conclude(target, run());
    const good = (await pushMain(target)).body.deployments![0]!;
    const job = await agent.next("job");
    expect(job.jobId).toBe(good.jobs[0]);
    expect((await deploymentOf(target, good.id)).gates.map((g) => g.state)).toEqual(["passed"]);
    // Newer runs of other commits, as the webhook keeps them: the oldest go past MAX_CONCLUSIONS.
    await runInDurableObject(env.TARGET.getByName(target), (_, state) => {
      for (let i = 0; i < MAX_CONCLUSIONS; i++) {
        const sha = i.toString(16).padStart(40, "0");
        storeConclusion(state.storage.sql, { kind: "check", repo: REPO, headRepo: REPO, sha, name: "lint", conclusion: "success", url: null, runId: i + 1, attempt: 1 }, Date.now());
      }
    });
    const res = await api(`/api/targets/${target}/deploy`, { method: "POST", body: JSON.stringify({ pipeline: "app", ref: "refs/heads/main", sha: HEAD_SHA }) });
    expect(res.status).toBe(202);
    const again = ((await res.json()) as DeliveryBody).deployments![0]!;
    // Before the fix: `waiting` for CI that will not run again, then `blocked` at the gate timeout.
    expect((await deploymentOf(target, again.id)).status).toBe("queued");
    agent.close();
  });
});

/** An hour and a second after the push (its gate timeout an hour): the alarm runs. */
async function pastTheTimeout(target: string, deploymentId: string): Promise<void> {
  await runInDurableObject(env.TARGET.getByName(target), async (_, state) => {
    state.storage.sql.exec("UPDATE deployments SET created_at = created_at - ?, wait_until = wait_until - ? WHERE id = ?", HOUR + 1000, HOUR + 1000, deploymentId);
    await state.storage.setAlarm(Date.now() - 1);
  });
  expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
}

describe("gates: the gate timeout", () => {
  it("after a deployment ended blocked at its gate timeout, its gates do not still read `waiting`", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [decl({ waitFor: waitFor({ workflows: ["CI"], timeoutMs: HOUR }) })]);
    const dep = (await pushMain(target)).body.deployments![0]!;
    await pastTheTimeout(target, dep.id);
    const d = await deploymentOf(target, dep.id);
    expect(d.status).toBe("blocked");
    // The API's gate states are waiting|passed|failed: a blocked deployment still "waiting" at a gate
    // reads as if CI could still open it (the dashboard draws it ‖ waiting).
    expect(d.gates.map((g) => g.state)).not.toContain("waiting");
    agent.close();
  });

  // The timeout fails the gates still open, so a CI success that comes late is a passing re-run.
  it("CI that passes after the gate timeout blocked the newest deployment deploys the commit again", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [decl({ waitFor: waitFor({ workflows: ["CI"], timeoutMs: HOUR }) })]);
    const dep = (await pushMain(target)).body.deployments![0]!;
    await pastTheTimeout(target, dep.id);
    expect((await deploymentOf(target, dep.id)).status).toBe("blocked");
    const late = await conclude(target, run());
    expect(late.status).toBe(202);
    expect(late.body.deployments).toHaveLength(1);
    agent.close();
  });
});

describe("gates: an approval's note", () => {
  it("refuses C1 control characters in a note (U+0080–U+009F), as every other text edge does", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [decl({ waitFor: waitFor({ approval: true }) })]);
    const dep = (await pushMain(target)).body.deployments![0]!;
    // U+009B is the 8-bit CSI: the note becomes the blocked reason, each job's log note and the chats' text.
    const res = await api(`/api/targets/${target}/deployments/${dep.id}/reject`, { method: "POST", body: JSON.stringify({ note: "nope \u009b31mred" }) });
    expect(res.status).toBe(400);
    agent.close();
  });
});

describe("gates: what run events leave behind", () => {
  // Every workflow run and check run of every repository the hook covers (an org-wide hook: all of
  // them) is delivered; each completed one leaves a `deliveries` row for RETENTION_DAYS, even when no
  // pipeline names its repository and nothing waits for it. `conclusions` is capped at MAX_CONCLUSIONS;
  // the delivery records of the same runs are not (docs/operations.md counts delivery records among
  // what is "small and bounded").
  it("delivery records of conclusions no gate used are bounded as the conclusions are", async () => {
    const target = uniqueName();
    const n = MAX_CONCLUSIONS + 100;
    for (let i = 0; i < n; i++) {
      const payload = run({ head_sha: i.toString(16).padStart(40, "0"), head_repository: { full_name: "octo-org/unrelated" } });
      const res = await postWebhook(target, JSON.stringify({ ...payload, repository: { full_name: "octo-org/unrelated" } }), { event: "workflow_run" });
      expect(res.status).toBe(200);
    }
    const rows = await runInDurableObject(env.TARGET.getByName(target), (_, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM deliveries").one().n);
    expect(rows).toBeLessThanOrEqual(MAX_CONCLUSIONS);
  }, 120_000);
});

describe("gates: attempts of one workflow run", () => {
  // GitHub does not promise delivery order. workflow_run carries its id and run_attempt (run-event.ts
  // parses both); the DO never sees them, so an older attempt's conclusion arriving after a newer one
  // counts as the newest: here attempt 1's success, delivered late, re-deploys a commit whose re-run
  // (attempt 2) failed.
  it("an older attempt's success delivered after a newer attempt's failure does not re-deploy the commit", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [decl({ waitFor: waitFor({ workflows: ["CI"] }) })]);
    const dep = (await pushMain(target)).body.deployments![0]!;
    const url = `https://github.com/${REPO}/actions/runs/777`;
    await conclude(target, run({ id: 777, html_url: url, run_attempt: 2, conclusion: "failure" }));
    expect((await deploymentOf(target, dep.id)).status).toBe("blocked");
    const late = await conclude(target, run({ id: 777, html_url: url, run_attempt: 1, conclusion: "success", updated_at: new Date(Date.now() - 600_000).toISOString() }));
    expect(late.body.jobs).toEqual([]);
    await nothingSent(agent);
    agent.close();
  });
});
