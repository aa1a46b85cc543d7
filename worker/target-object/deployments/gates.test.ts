import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { WaitForDecl } from "../../../shared/protocol.ts";
import type { SendOutcome } from "../../report/outcome.ts";
import { api, apiJson, helloAgent, pipeline, postWebhook, push, SHA_B, type TestAgent, uniqueName } from "../../../testing/workerd/worker-support.ts";
import { storeReportSetup } from "../reports/report-outbox.ts";
import type { ReportBody } from "../reports/report-record.ts";
import { type ChannelSender, sendDueReports } from "../reports/report-sending.ts";
import type { DeliveryBody, DeploymentView } from "../types.ts";

const REPO = "owner/OldManInfo_Flask";
const HOUR = 3_600_000;

const waitFor = (w: Partial<WaitForDecl>): WaitForDecl => ({ workflows: [], checks: [], approval: false, timeoutMs: 2 * HOUR, ...w });

/** A `workflow_run` (action completed) shaped like GitHub's own example, for `sha` of REPO unless overridden. */
function workflowRun(o: { name?: string; conclusion?: string; sha?: string; headRepo?: string; id?: number; action?: string } = {}): Record<string, unknown> {
  const id = o.id ?? Math.floor(Math.random() * 1e9) + 1;
  return {
    action: o.action ?? "completed",
    repository: { full_name: REPO },
    workflow: { name: o.name ?? "CI" },
    workflow_run: {
      id,
      name: o.name ?? "CI",
      head_sha: o.sha ?? SHA_B,
      head_branch: "master",
      status: "completed",
      conclusion: o.conclusion ?? "success",
      html_url: `https://github.com/${REPO}/actions/runs/${id}`,
      run_attempt: 1,
      updated_at: new Date().toISOString(),
      head_repository: { full_name: o.headRepo ?? REPO },
    },
  };
}

/** A `check_run` (action completed) shaped like GitHub's example. */
function checkRun(o: { name: string; conclusion?: string; sha?: string }): Record<string, unknown> {
  const id = Math.floor(Math.random() * 1e9) + 1;
  return {
    action: "completed",
    repository: { full_name: REPO },
    check_run: {
      id,
      name: o.name,
      head_sha: o.sha ?? SHA_B,
      status: "completed",
      conclusion: o.conclusion ?? "success",
      html_url: `https://github.com/${REPO}/runs/${id}`,
      completed_at: new Date().toISOString(),
      check_suite: { head_branch: "master", head_sha: o.sha ?? SHA_B },
    },
  };
}

async function conclude(target: string, event: "workflow_run" | "check_run", payload: Record<string, unknown>, delivery?: string): Promise<{ status: number; body: DeliveryBody }> {
  const res = await postWebhook(target, JSON.stringify(payload), { event, ...(delivery ? { delivery } : {}) });
  return { status: res.status, body: (await res.json()) as DeliveryBody };
}

const deploymentOf = (target: string, id: string) => apiJson(`/api/targets/${target}/deployments/${id}`) as Promise<DeploymentView>;

async function gated(target: string, w: Partial<WaitForDecl>, more: Parameters<typeof pipeline>[0] = {}): Promise<TestAgent> {
  return helloAgent(target, "web-1", [pipeline({ waitFor: waitFor(w), ...more })]);
}

/** Nothing was sent to the agent: no `job` frame among what it received within a short wait. */
async function nothingSent(agent: TestAgent): Promise<void> {
  await new Promise((r) => setTimeout(r, 150));
  expect(agent.pending().filter((f) => f.type === "job")).toEqual([]);
}

/** GitHub reporting on, and one chat notified of failures only (NOTIFY_ON=failure). */
function reportEverywhere(target: string): Promise<void> {
  return runInDurableObject(env.TARGET.getByName(target), (_, state) =>
    storeReportSetup(state.storage.sql, {
      target,
      github: { state: "on", why: null },
      notify: { state: "on", why: null, on: "failure", targets: [{ channel: "notify:0123456789abcdef", label: "chat" }] },
      publicUrl: null,
    }),
  );
}

/** Every report the target sends, to peers that take them all; `send` runs one outbox pass. */
function reportsOf(target: string): { calls: ReportBody[]; send: () => Promise<number> } {
  const calls: ReportBody[] = [];
  const sender: ChannelSender = {
    async send(body): Promise<SendOutcome> {
      calls.push(body);
      return { kind: "sent", status: 201, body: body.kind === "github-deployment" ? { id: 5 } : {} };
    },
  };
  return { calls, send: () => runInDurableObject(env.TARGET.getByName(target), (_, state) => sendDueReports(state.storage.sql, () => sender, 1000)) };
}

describe("gates: a deployment waits until its CI passed", () => {
  it("waits (no job sent) until the workflow concludes success, then is queued and its job goes out", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"] });
    const pushed = await push(target);
    const dep = pushed.body.deployments![0]!;
    expect(await deploymentOf(target, dep.id)).toMatchObject({
      status: "waiting",
      gates: [{ kind: "workflow", name: "CI", state: "waiting", url: null, requiredBy: ["web-1"] }],
      waitingUntil: expect.any(String),
    });
    await nothingSent(agent);

    const run = workflowRun();
    const answer = await conclude(target, "workflow_run", run);
    expect(answer).toMatchObject({ status: 200, body: { gates: [{ deployment: dep.id, gate: "workflow CI", state: "passed" }] } });
    const job = await agent.next("job");
    expect(job.jobId).toBe(dep.jobs[0]);
    expect(await deploymentOf(target, dep.id)).toMatchObject({
      status: "queued",
      waitingUntil: null,
      gates: [{ kind: "workflow", name: "CI", state: "passed", by: "success", url: (run.workflow_run as { html_url: string }).html_url }],
    });
    agent.close();
  });

  it("ends blocked when the workflow concludes failure: the reason names the run, its job skipped, nothing sent", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"] });
    const dep = (await push(target)).body.deployments![0]!;
    const run = workflowRun({ conclusion: "failure" });
    await conclude(target, "workflow_run", run);
    const d = await deploymentOf(target, dep.id);
    expect(d.status).toBe("blocked");
    expect(d.blockedReason).toBe(`CI concluded failure (workflow CI) — ${(run.workflow_run as { html_url: string }).html_url}`);
    expect(d.jobs.map((j) => j.status)).toEqual(["skipped"]);
    expect(await (await api(`/api/targets/${target}/jobs/${dep.jobs[0]}/log`)).text()).toContain("the deployment was blocked: CI concluded failure");
    await nothingSent(agent);
    agent.close();
  });

  it("never opens a gate with a fork's run of the same commit", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"] });
    const dep = (await push(target)).body.deployments![0]!;
    const answer = await conclude(target, "workflow_run", workflowRun({ headRepo: "attacker/OldManInfo_Flask" }));
    expect(answer.body.ignored).toMatch(/attacker\/OldManInfo_Flask, a fork\) never opens a gate/);
    expect((await deploymentOf(target, dep.id)).status).toBe("waiting");
    await nothingSent(agent);
    agent.close();
  });

  it("takes a conclusion that came before the push: the push deploys at once", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"] });
    const early = await conclude(target, "workflow_run", workflowRun());
    expect(early.body.ignored).toMatch(/no deployment waits for it \(kept/);
    const dep = (await push(target)).body.deployments![0]!;
    expect((await agent.next("job")).jobId).toBe(dep.jobs[0]);
    expect(await deploymentOf(target, dep.id)).toMatchObject({ status: "queued", gates: [{ state: "passed" }] });
    agent.close();
  });

  it("needs every gate: two workflows and a check, the last one opens it; another commit's run counts for nothing", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI", "Build"], checks: ["lint"] });
    const dep = (await push(target)).body.deployments![0]!;
    await conclude(target, "workflow_run", workflowRun({ name: "CI" }));
    await conclude(target, "check_run", checkRun({ name: "lint", sha: "c".repeat(40) }));
    await conclude(target, "workflow_run", workflowRun({ name: "Build", conclusion: "neutral" }));
    expect((await deploymentOf(target, dep.id)).gates.map((g) => `${g.kind} ${g.name} ${g.state}`)).toEqual(["workflow CI passed", "workflow Build passed", "check lint waiting"]);
    await nothingSent(agent);
    await conclude(target, "check_run", checkRun({ name: "lint", conclusion: "skipped" }));
    expect((await agent.next("job")).jobId).toBe(dep.jobs[0]);
    agent.close();
  });

  it("a re-run that passes after a failure deploys the commit again", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"] });
    const first = (await push(target)).body.deployments![0]!;
    await conclude(target, "workflow_run", workflowRun({ conclusion: "failure" }));
    expect((await deploymentOf(target, first.id)).status).toBe("blocked");
    const rerun = await conclude(target, "workflow_run", workflowRun());
    expect(rerun.status).toBe(202);
    const again = rerun.body.deployments![0]!;
    expect(again.id).not.toBe(first.id);
    expect((await agent.next("job")).jobId).toBe(again.jobs[0]);
    expect(await deploymentOf(target, again.id)).toMatchObject({ status: "queued", sha: SHA_B, gates: [{ state: "passed" }] });
    agent.close();
  });

  it("sends no host anything while it waits, even when another host's job ends (a host that stops declaring the pipeline)", async () => {
    const target = uniqueName();
    const decl = pipeline({ waitFor: waitFor({ workflows: ["CI"] }) });
    const web1 = await helloAgent(target, "web-1", [decl]);
    const web2 = await helloAgent(target, "web-2", [decl]);
    const dep = (await push(target)).body.deployments![0]!;
    web1.close();
    const again = await helloAgent(target, "web-1", [pipeline({ name: "other" })]);
    const d = await deploymentOf(target, dep.id);
    expect(d.status).toBe("waiting");
    expect(d.jobs.map((j) => `${j.agent} ${j.status}`)).toEqual(["web-1 skipped", "web-2 queued"]);
    await nothingSent(web2);
    await conclude(target, "workflow_run", workflowRun());
    expect((await web2.next("job")).jobId).toBe(dep.jobs[1]);
    again.close();
    web2.close();
  });

  it("a newer push supersedes a waiting deployment", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"] });
    const older = (await push(target)).body.deployments![0]!;
    const newer = (await push(target, { after: "d".repeat(40) })).body.deployments![0]!;
    expect((await deploymentOf(target, older.id)).status).toBe("superseded");
    expect((await deploymentOf(target, newer.id)).status).toBe("waiting");
    // The older commit's CI passing later opens nothing.
    await conclude(target, "workflow_run", workflowRun());
    await nothingSent(agent);
    agent.close();
  });

  it("ends blocked when the gates stay open past their timeout (the alarm)", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"], timeoutMs: HOUR });
    const dep = (await push(target)).body.deployments![0]!;
    await runInDurableObject(env.TARGET.getByName(target), async (_, state) => {
      expect(await state.storage.getAlarm()).toBeLessThanOrEqual(Date.now() + HOUR);
      // An hour (and a second) has passed since the push.
      state.storage.sql.exec("UPDATE deployments SET created_at = created_at - ?, wait_until = wait_until - ? WHERE id = ?", HOUR + 1000, HOUR + 1000, dep.id);
      await state.storage.setAlarm(Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect(await deploymentOf(target, dep.id)).toMatchObject({ status: "blocked", blockedReason: "CI did not finish within 1 h (still waiting for workflow CI)" });
    expect((await deploymentOf(target, dep.id)).gates).toEqual([expect.objectContaining({ state: "failed", by: "timeout" })]);
    await nothingSent(agent);
    agent.close();
  });

  it("answers a redelivered conclusion as it did the first time, deciding nothing twice", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"] });
    await push(target);
    const run = workflowRun();
    const first = await conclude(target, "workflow_run", run, "run-delivery-1");
    const again = await conclude(target, "workflow_run", run, "run-delivery-1");
    expect(again).toEqual(first);
    await agent.next("job");
    await nothingSent(agent);
    agent.close();
  });

  it("ignores a run that has not completed, saying why", async () => {
    const target = uniqueName();
    const answer = await conclude(target, "workflow_run", workflowRun({ action: "requested" }));
    expect(answer).toMatchObject({ status: 200, body: { jobs: [], ignored: expect.stringMatching(/only completed runs count/) } });
  });
});

describe("gates: a person approves", () => {
  it("waits for approval after CI; approve with a note → queued and sent; the decision is recorded", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"], approval: true });
    const dep = (await push(target)).body.deployments![0]!;
    await conclude(target, "workflow_run", workflowRun());
    expect((await deploymentOf(target, dep.id)).gates.map((g) => g.state)).toEqual(["passed", "waiting"]);
    await nothingSent(agent);
    const res = await api(`/api/targets/${target}/deployments/${dep.id}/approve`, { method: "POST", body: JSON.stringify({ note: "ship it" }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: dep.id, status: "queued", gates: [{ state: "passed" }, { kind: "approval", state: "passed", by: "admin", note: "ship it", at: expect.any(String) }] });
    expect((await agent.next("job")).jobId).toBe(dep.jobs[0]);
    const late = await api(`/api/targets/${target}/deployments/${dep.id}/reject`, { method: "POST" });
    expect(late.status).toBe(409);
    expect(await late.json()).toEqual({ error: `deployment ${dep.id} is queued: it does not wait for approval` });
    agent.close();
  });

  it("reject → blocked with the note as its reason, nothing sent; a bad note is refused", async () => {
    const target = uniqueName();
    const agent = await gated(target, { approval: true });
    const dep = (await push(target)).body.deployments![0]!;
    const bad = await api(`/api/targets/${target}/deployments/${dep.id}/reject`, { method: "POST", body: JSON.stringify({ note: "x".repeat(501) }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/note: longer than 500 characters/);
    const res = await api(`/api/targets/${target}/deployments/${dep.id}/reject`, { method: "POST", body: JSON.stringify({ note: "not on a Friday" }) });
    expect(await res.json()).toMatchObject({ status: "blocked" });
    expect((await deploymentOf(target, dep.id)).blockedReason).toBe("rejected by admin: not on a Friday");
    await nothingSent(agent);
    expect((await api(`/api/targets/${target}/deployments/nope/approve`, { method: "POST" })).status).toBe(404);
    agent.close();
  });

  it("a manual deploy counts as its approval but still waits for its commit's CI (already concluded → at once)", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"], approval: true });
    await conclude(target, "workflow_run", workflowRun());
    const res = await api(`/api/targets/${target}/deploy`, { method: "POST", body: JSON.stringify({ pipeline: "app", ref: "refs/heads/master", sha: SHA_B }) });
    expect(res.status).toBe(202);
    const dep = ((await res.json()) as DeliveryBody).deployments![0]!;
    expect((await agent.next("job")).jobId).toBe(dep.jobs[0]);
    expect((await deploymentOf(target, dep.id)).gates.map((g) => `${g.name} ${g.state} ${g.by}`)).toEqual(["CI passed success", "approval passed api"]);
    agent.close();
  });
});

describe("gates: what is told", () => {
  it("GitHub gets `pending` while waiting and `failure` with the reason when blocked; the chats a deployment.blocked naming the run", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"] });
    await reportEverywhere(target);
    await push(target);
    const run = workflowRun({ conclusion: "timed_out" });
    await conclude(target, "workflow_run", run);
    const { calls, send } = reportsOf(target);
    await send();
    const url = (run.workflow_run as { html_url: string }).html_url;
    // In order per channel: GitHub's, then the chat's.
    expect(calls.filter((b) => b.kind !== "notify").map((b) => (b.kind === "github-status" ? `${b.state}: ${b.description}` : "create"))).toEqual([
      "create",
      "pending: waiting for CI",
      `failure: CI concluded timed_out (workflow CI) — ${url}`,
    ]);
    expect(calls.filter((b) => b.kind === "notify").map((b) => (b.kind === "notify" ? `${b.type}: ${b.reason}` : ""))).toEqual([`deployment.blocked: CI concluded timed_out (workflow CI) — ${url}`]);
    agent.close();
  });
});

describe("gates: a person is asked", () => {
  it("when only the approval waits (CI passed), the chats get deployment.waiting with its link — whatever NOTIFY_ON says — and GitHub `pending`", async () => {
    const target = uniqueName();
    const agent = await gated(target, { workflows: ["CI"], approval: true });
    await reportEverywhere(target);
    const dep = (await push(target)).body.deployments![0]!;
    const { calls, send } = reportsOf(target);
    await send();
    expect(calls.filter((b) => b.kind === "notify")).toEqual([]);
    await conclude(target, "workflow_run", workflowRun());
    await send();
    const told = calls.map((b) => (b.kind === "github-status" ? `${b.state}: ${b.description}` : b.kind === "notify" ? `${b.type} ${b.path}` : "create"));
    expect(told).toEqual(["create", "pending: waiting for CI", "pending: waiting for approval", `deployment.waiting /targets/${target}/deployments/${dep.id}`]);
    await nothingSent(agent);
    agent.close();
  });
});

describe("gates: which pushes a pipeline takes", () => {
  it("a tag push deploys only a pipeline whose tags name it", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [pipeline({ name: "app" }), pipeline({ name: "release", tags: ["v*"] })]);
    const tagged = await push(target, { ref: "refs/tags/v1.2.0" });
    expect(tagged.body.deployments!.map((d) => d.pipeline)).toEqual(["release"]);
    const other = await push(target, { ref: "refs/tags/nightly" });
    expect(other.body).toMatchObject({ jobs: [], ignored: `no pipeline for push to refs/tags/nightly of ${REPO}` });
    agent.close();
  });

  it("a docs-only push is ignored by a pipeline with paths and deploys one without", async () => {
    const target = uniqueName();
    const docs = { commits: [{ added: ["docs/guide.md"], modified: ["README.md"], removed: [] }] };
    const withPaths = await helloAgent(target, "web-1", [pipeline({ paths: ["app/**", "requirements.txt"] })]);
    expect((await push(target, docs)).body).toMatchObject({ jobs: [], ignored: "no changed file matches paths" });
    const code = await push(target, { commits: [{ added: [], modified: ["app/views.py"], removed: [] }] });
    expect(code.body.jobs).toHaveLength(1);
    withPaths.close();
    const other = uniqueName();
    const without = await helloAgent(other, "web-1", [pipeline()]);
    expect((await push(other, docs)).body.jobs).toHaveLength(1);
    without.close();
  });
});


