import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobEndStatus, PipelineDecl } from "../../../shared/protocol.ts";
import type { Rollout } from "../../../shared/rollout.ts";
import {
  api,
  apiJson,
  disconnected,
  event,
  eventually,
  hello,
  helloAgent,
  connectAgent,
  jobOf,
  pipeline,
  push,
  postWebhook,
  pushPayload,
  type TestAgent,
  uniqueName,
} from "../../../testing/workerd/worker-support.ts";
import type { DeploymentListItem, DeploymentView } from "../types.ts";

const STALE_MS = 300_000; // wrangler.toml AGENT_STALE_SECONDS

const rolled = (rollout: Rollout, overrides: Partial<PipelineDecl> = {}) => pipeline({ rollout, ...overrides });

/** web-1, web-2, web-3 connected (in another order than their names) and declaring `decls(name)`. */
async function threeHosts(target: string, decls: (name: string) => PipelineDecl[] = () => [pipeline()]): Promise<Record<string, TestAgent>> {
  const hosts: Record<string, TestAgent> = {};
  for (const name of ["web-3", "web-1", "web-2"]) hosts[name] = await helloAgent(target, name, decls(name));
  return hosts;
}

const deployment = (target: string, id: string) => apiJson(`/api/targets/${target}/deployments/${id}`) as Promise<DeploymentView>;

async function deploymentBecomes(target: string, id: string, status: string): Promise<DeploymentView> {
  return eventually(`deployment ${id} ${status}`, async () => {
    const d = await deployment(target, id);
    return d.status === status ? d : undefined;
  }, 2000, 10);
}

/** The agent takes the job it was sent (which must be `id`) and ends it `status`. */
async function run(agent: TestAgent, id: string, status: JobEndStatus = "succeeded"): Promise<void> {
  const job = await agent.next("job");
  expect(job.jobId).toBe(id);
  agent.send({ type: "accepted", jobId: id });
  agent.send(event(id, 1, { kind: "job-end", status }));
  await agent.next("ack");
}

/** Nothing more arrives for a while: frames the DO sends go out at once, so 200 ms is plenty. */
async function sentNothing(agent: TestAgent): Promise<void> {
  await new Promise((r) => setTimeout(r, 200));
  expect(agent.pending().filter((m) => m.type === "job")).toEqual([]);
}

function inTarget<T>(target: string, f: (sql: SqlStorage) => T): Promise<T> {
  return runInDurableObject(env.TARGET.getByName(target), (_, state) => f(state.storage.sql));
}

describe("deployments: one push, one deployment, rolled out host by host", () => {
  it("makes one deployment with a job per agent, in agent-name order, and sends each host its job only after the one before it succeeded", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target);
    const res = await push(target, { head_commit: { message: "Fix the login form\n\nLonger description" } });
    expect(res.status).toBe(202);
    const [dep] = res.body.deployments!;
    expect(res.body.jobs.map((j) => j.agent)).toEqual(["web-1", "web-2", "web-3"]);
    expect(dep).toEqual({ id: expect.any(String), pipeline: "app", jobs: res.body.jobs.map((j) => j.id) });
    const [j1, j2, j3] = dep!.jobs as [string, string, string];

    let d = await deployment(target, dep!.id);
    expect(d).toMatchObject({
      id: dep!.id, target, pipeline: "app", repo: "owner/OldManInfo_Flask", ref: "refs/heads/master", sha: "b".repeat(40), before: "a".repeat(40),
      pusher: "octocat", message: "Fix the login form", event: "push", status: "queued",
      rollout: { batch: 1, hosts: 3, batchHosts: 1, batches: 3, haltOnFailure: true, note: null },
    });
    expect(d.jobs.map((j) => [j.agent, j.batch, j.status])).toEqual([["web-1", 1, "queued"], ["web-2", 2, "queued"], ["web-3", 3, "queued"]]);

    await sentNothing(hosts["web-2"]!);
    await sentNothing(hosts["web-3"]!);
    await run(hosts["web-1"]!, j1);
    await sentNothing(hosts["web-3"]!); // web-2's turn, not web-3's
    d = await deployment(target, dep!.id);
    expect(d.status).toBe("running");
    expect(d.startedAt).not.toBeNull();
    await run(hosts["web-2"]!, j2);
    await run(hosts["web-3"]!, j3);
    d = await deploymentBecomes(target, dep!.id, "succeeded");
    expect(d.jobs.map((j) => j.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    expect(d.finishedAt).not.toBeNull();
    expect((await jobOf(target, j2)).deployment).toBe(dep!.id);
  });

  it("halts on a failure: the hosts after it end skipped, nothing sent to them, and the deployment failed", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target);
    const { body } = await push(target);
    const [j1, j2, j3] = body.deployments![0]!.jobs as [string, string, string];
    await run(hosts["web-1"]!, j1);
    await run(hosts["web-2"]!, j2, "failed");
    const d = await deploymentBecomes(target, body.deployments![0]!.id, "failed");
    expect(d.jobs.map((j) => [j.agent, j.status])).toEqual([["web-1", "succeeded"], ["web-2", "failed"], ["web-3", "skipped"]]);
    expect(d.jobs[2]!.steps.map((s) => s.status)).toEqual(["skipped", "skipped", "skipped", "skipped"]);
    expect(d.jobs[2]!.startedAt).toBeNull();
    await sentNothing(hosts["web-3"]!);
    expect(await (await api(`/api/targets/${target}/jobs/${j3}/log`)).text()).toContain(`the rollout halted: web-2's job ${j2} ended failed; nothing ran on web-3`);
  });

  it.each(["timed_out", "interrupted"] as const)("a host whose job ends %s halts the rollout too", async (status) => {
    const target = uniqueName();
    const hosts = await threeHosts(target);
    const { body } = await push(target);
    const [j1] = body.deployments![0]!.jobs as [string];
    await run(hosts["web-1"]!, j1, status);
    const d = await deploymentBecomes(target, body.deployments![0]!.id, "failed");
    expect(d.jobs.map((j) => j.status)).toEqual([status, "skipped", "skipped"]);
  });

  it("with halt_on_failure false the rollout goes on past a failure, and the deployment still ends failed", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target, () => [rolled({ batch: 1, haltOnFailure: false })]);
    const { body } = await push(target);
    const [j1, j2, j3] = body.deployments![0]!.jobs as [string, string, string];
    await run(hosts["web-1"]!, j1, "failed");
    await run(hosts["web-2"]!, j2);
    await run(hosts["web-3"]!, j3);
    const d = await deploymentBecomes(target, body.deployments![0]!.id, "failed");
    expect(d.jobs.map((j) => j.status)).toEqual(["failed", "succeeded", "succeeded"]);
    expect(d.rollout.haltOnFailure).toBe(false);
  });

  it('batch "50%" of 3 hosts sends the first two at once (rounded up, and the plan says so), the third after both', async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target, () => [rolled({ batch: "50%", haltOnFailure: true })]);
    const { body } = await push(target);
    const [j1, j2, j3] = body.deployments![0]!.jobs as [string, string, string];
    expect((await hosts["web-1"]!.next("job")).jobId).toBe(j1);
    expect((await hosts["web-2"]!.next("job")).jobId).toBe(j2);
    for (const [name, id] of [["web-1", j1], ["web-2", j2]] as const) hosts[name]!.send({ type: "accepted", jobId: id });
    hosts["web-1"]!.send(event(j1, 1, { kind: "job-end", status: "succeeded" }));
    await hosts["web-1"]!.next("ack");
    await sentNothing(hosts["web-3"]!); // web-2 still runs
    hosts["web-2"]!.send(event(j2, 1, { kind: "job-end", status: "succeeded" }));
    await hosts["web-2"]!.next("ack");
    await run(hosts["web-3"]!, j3);
    const d = await deploymentBecomes(target, body.deployments![0]!.id, "succeeded");
    expect(d.rollout).toEqual({ batch: "50%", hosts: 3, batchHosts: 2, batches: 2, haltOnFailure: true, note: "50% of 3 hosts is 1.5: rounded up to 2 per batch" });
    expect(d.jobs.map((j) => j.batch)).toEqual([1, 1, 2]);
  });

  it("agents that disagree get the most cautious rollout, and the API says so", async () => {
    const target = uniqueName();
    const rollouts: Record<string, Rollout> = { "web-1": { batch: 3, haltOnFailure: false }, "web-2": { batch: 2, haltOnFailure: false }, "web-3": { batch: 3, haltOnFailure: true } };
    await threeHosts(target, (name) => [rolled(rollouts[name]!)]);
    const { body } = await push(target);
    const d = await deployment(target, body.deployments![0]!.id);
    expect(d.rollout).toEqual({
      batch: 2, hosts: 3, batchHosts: 2, batches: 2, haltOnFailure: true,
      note: "agents disagree (web-1 batch 3 hosts, no halt; web-2 batch 2 hosts, no halt; web-3 batch 3 hosts): using the most cautious, 2 hosts per batch, halting on failure",
    });
  });

  it("a single host sees no difference: its job goes out at once", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const { body } = await push(target);
    await run(agent, body.jobs[0]!.id);
    const d = await deploymentBecomes(target, body.deployments![0]!.id, "succeeded");
    expect(d.rollout).toMatchObject({ hosts: 1, batches: 1 });
  });
});

describe("deployments: what an operator does mid-rollout", () => {
  it("cancel: the running job is asked to stop, the jobs not started end canceled (not skipped), and the deployment canceled", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target);
    const { body } = await push(target);
    const dep = body.deployments![0]!;
    const [j1] = dep.jobs as [string];
    hosts["web-1"]!.send({ type: "accepted", jobId: (await hosts["web-1"]!.next("job")).jobId });
    await deploymentBecomes(target, dep.id, "running");

    const res = await api(`/api/targets/${target}/deployments/${dep.id}/cancel`, { method: "POST" });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ id: dep.id, status: "running" });
    expect(await hosts["web-1"]!.next("cancel")).toEqual({ type: "cancel", jobId: j1 });
    let d = await deployment(target, dep.id);
    expect(d.jobs.map((j) => j.status)).toEqual(["running", "canceled", "canceled"]);

    hosts["web-1"]!.send(event(j1, 1, { kind: "job-end", status: "canceled" }));
    d = await deploymentBecomes(target, dep.id, "canceled");
    expect(d.jobs.map((j) => j.status)).toEqual(["canceled", "canceled", "canceled"]);
    await sentNothing(hosts["web-2"]!);
    const again = await api(`/api/targets/${target}/deployments/${dep.id}/cancel`, { method: "POST" });
    expect(again.status).toBe(409);
    expect(await again.json()).toEqual({ error: `deployment ${dep.id} already finished (canceled)`, id: dep.id, status: "canceled" });
  });

  it("cancel of one host's job halts the rollout: a person stepped in, so nothing after it starts by itself", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target);
    const { body } = await push(target);
    const [j1] = body.deployments![0]!.jobs as [string];
    await hosts["web-1"]!.next("job");
    expect((await api(`/api/targets/${target}/jobs/${j1}/cancel`, { method: "POST" })).status).toBe(202);
    const d = await deploymentBecomes(target, body.deployments![0]!.id, "canceled");
    expect(d.jobs.map((j) => j.status)).toEqual(["canceled", "skipped", "skipped"]);
  });

  it("unknown deployments are 404 naming the id; the list is newest first", async () => {
    const target = uniqueName();
    await helloAgent(target, "web-1");
    const first = (await push(target)).body.deployments![0]!.id;
    const second = (await push(target)).body.deployments![0]!.id;
    const list = (await apiJson(`/api/targets/${target}/deployments?limit=5`)) as { deployments: DeploymentListItem[] };
    expect(list.deployments.map((d) => d.id)).toEqual([second, first]);
    expect(list.deployments[0]!).toMatchObject({ target, pipeline: "app", status: "queued", rollout: { hosts: 1 } });
    for (const path of ["", "/cancel"]) {
      const res = await api(`/api/targets/${target}/deployments/nope${path}`, { method: path ? "POST" : "GET" });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: `no deployment "nope" in target ${target}` });
    }
  });

  it("a newer push supersedes the older deployment's jobs not started; its running job finishes and the older one ends superseded", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target);
    const older = (await push(target)).body.deployments![0]!;
    const olderJob = (await hosts["web-1"]!.next("job")).jobId;
    hosts["web-1"]!.send({ type: "accepted", jobId: olderJob });
    await deploymentBecomes(target, older.id, "running");

    const newer = (await push(target, { after: "c".repeat(40) })).body.deployments![0]!;
    let d = await deployment(target, older.id);
    expect(d.jobs.map((j) => j.status)).toEqual(["running", "superseded", "superseded"]);
    expect(d.status).toBe("running");

    hosts["web-1"]!.send(event(olderJob, 1, { kind: "job-end", status: "succeeded" }));
    d = await deploymentBecomes(target, older.id, "superseded");
    const [n1, n2, n3] = newer.jobs as [string, string, string];
    await run(hosts["web-1"]!, n1); // web-1 was busy with the older job; the newer one goes out after it
    await run(hosts["web-2"]!, n2);
    await run(hosts["web-3"]!, n3);
    await deploymentBecomes(target, newer.id, "succeeded");
  });

  it("a host that joins the target after the deployment was made is not part of it", async () => {
    const target = uniqueName();
    const early = { "web-1": await helloAgent(target, "web-1"), "web-2": await helloAgent(target, "web-2") };
    const dep = (await push(target)).body.deployments![0]!;
    const late = await helloAgent(target, "web-0");
    await run(early["web-1"], dep.jobs[0]!);
    await run(early["web-2"], dep.jobs[1]!);
    const d = await deploymentBecomes(target, dep.id, "succeeded");
    expect(d.jobs.map((j) => j.agent)).toEqual(["web-1", "web-2"]);
    await sentNothing(late);
  });

  it("an agent that stops declaring the pipeline mid-rollout: its job ends skipped (saying why) and the rollout goes on without it", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target);
    const dep = (await push(target)).body.deployments![0]!;
    const [j1, j2, j3] = dep.jobs as [string, string, string];
    await hosts["web-1"]!.next("job");
    hosts["web-1"]!.send({ type: "accepted", jobId: j1 });

    await disconnected(target, hosts["web-2"]!, "web-2");
    const web2 = await connectAgent(target, "web-2");
    web2.send(hello("web-2", [pipeline({ name: "docs" })]));
    await web2.next("welcome");
    await eventually("web-2's job skipped", async () => (await jobOf(target, j2)).status === "skipped", 2000, 10);
    expect(await (await api(`/api/targets/${target}/jobs/${j2}/log`)).text()).toContain("agent web-2 no longer declares pipeline app: ended skipped, nothing ran there");

    hosts["web-1"]!.send(event(j1, 1, { kind: "job-end", status: "succeeded" }));
    await run(hosts["web-3"]!, j3);
    const d = await deploymentBecomes(target, dep.id, "succeeded");
    expect(d.jobs.map((j) => j.status)).toEqual(["succeeded", "skipped", "succeeded"]);
    await sentNothing(web2);
  });

  it("two pipelines on the same agents are two deployments, each rolling out on its own, one job at a time per agent", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target, () => [pipeline({ name: "app" }), pipeline({ name: "worker" })]);
    const { body } = await push(target);
    expect(body.deployments!.map((d) => d.pipeline)).toEqual(["app", "worker"]);
    const app = body.deployments![0]!;
    const worker = body.deployments![1]!;
    await run(hosts["web-1"]!, app.jobs[0]!);
    // web-1 is free again: its worker job; web-2 has app's second batch.
    await run(hosts["web-1"]!, worker.jobs[0]!);
    await run(hosts["web-2"]!, app.jobs[1]!);
    await run(hosts["web-2"]!, worker.jobs[1]!);
    await run(hosts["web-3"]!, app.jobs[2]!);
    await run(hosts["web-3"]!, worker.jobs[2]!);
    await deploymentBecomes(target, app.id, "succeeded");
    await deploymentBecomes(target, worker.id, "succeeded");
  });
});

describe("deployments: offline hosts, eviction, redelivery, POST …/deploy", () => {
  it("a host offline when its turn comes is waited for until AGENT_STALE_SECONDS, then interrupted, which halts", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target);
    const dep = (await push(target)).body.deployments![0]!;
    const [j1, j2] = dep.jobs as [string, string];
    await disconnected(target, hosts["web-2"]!, "web-2");
    await run(hosts["web-1"]!, j1);

    const { released, alarm } = await runInDurableObject(env.TARGET.getByName(target), async (_, state) => ({
      released: state.storage.sql.exec<{ t: number }>("SELECT released_at AS t FROM jobs WHERE id = ?", j2).one().t,
      alarm: await state.storage.getAlarm(),
    }));
    expect(alarm).toBe(released + STALE_MS);
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await jobOf(target, j2)).status).toBe("queued"); // not yet

    await inTarget(target, (sql) => sql.exec("UPDATE jobs SET released_at = released_at - ? WHERE id = ?", STALE_MS, j2));
    await inTarget(target, (sql) => sql.exec("UPDATE agents SET disconnected_at = disconnected_at - ? WHERE name = 'web-2'", STALE_MS));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    const d = await deploymentBecomes(target, dep.id, "failed");
    expect(d.jobs.map((j) => j.status)).toEqual(["succeeded", "interrupted", "skipped"]);
    expect(await (await api(`/api/targets/${target}/jobs/${j2}/log`)).text()).toContain(
      "agent web-2 was disconnected for more than 5 min while its turn in the rollout waited: ended interrupted, nothing ran there",
    );
  });

  it("the first batch's offline host arms the stale deadline from the webhook itself", async () => {
    const target = uniqueName();
    const web1 = await helloAgent(target, "web-1");
    await helloAgent(target, "web-2");
    await disconnected(target, web1);
    const dep = (await push(target)).body.deployments![0]!;
    const { released, alarm } = await runInDurableObject(env.TARGET.getByName(target), async (_, state) => ({
      released: state.storage.sql.exec<{ t: number }>("SELECT released_at AS t FROM jobs WHERE id = ?", dep.jobs[0]!).one().t,
      alarm: await state.storage.getAlarm(),
    }));
    expect(alarm).toBe(released + STALE_MS);
  });

  it("a single-host deployment waits for its offline agent as long as it takes (no stale deadline)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    await disconnected(target, agent);
    const { body } = await push(target);
    const alarm = await runInDurableObject(env.TARGET.getByName(target), (_, state) => state.storage.getAlarm());
    expect(alarm === null || alarm > Date.now() + 86_400_000).toBe(true); // only retention
    const back = await helloAgent(target, "web-1");
    await run(back, body.jobs[0]!.id);
  });

  it("survives eviction between batches: the next batch is released in the job-end's own transaction and sent after", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target);
    const dep = (await push(target)).body.deployments![0]!;
    const [j1, j2, j3] = dep.jobs as [string, string, string];
    await disconnected(target, hosts["web-2"]!, "web-2");
    await hosts["web-1"]!.next("job");
    hosts["web-1"]!.send({ type: "accepted", jobId: j1 });
    await deploymentBecomes(target, dep.id, "running");
    await evictDurableObject(env.TARGET.getByName(target));
    hosts["web-1"]!.send(event(j1, 1, { kind: "job-end", status: "succeeded" }));
    await hosts["web-1"]!.next("ack");
    await evictDurableObject(env.TARGET.getByName(target)); // web-2's turn has come while it is away
    const web2 = await helloAgent(target, "web-2");
    await run(web2, j2);
    await evictDurableObject(env.TARGET.getByName(target));
    await run(hosts["web-3"]!, j3);
    const d = await deploymentBecomes(target, dep.id, "succeeded");
    expect(d.jobs.map((j) => j.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
  });

  it("a redelivery gets the same answer, deployments included, and makes no second deployment", async () => {
    const target = uniqueName();
    await helloAgent(target, "web-1");
    const body = JSON.stringify(pushPayload());
    const first = await (await postWebhook(target, body, { delivery: "d-1" })).json();
    const again = await (await postWebhook(target, body, { delivery: "d-1" })).json();
    expect(again).toEqual(first);
    const list = (await apiJson(`/api/targets/${target}/deployments`)) as { deployments: unknown[] };
    expect(list.deployments).toHaveLength(1);
  });

  it("POST …/deploy makes a deployment that rolls out the same way, with the commit's message from its push", async () => {
    const target = uniqueName();
    const hosts = await threeHosts(target);
    const pushed = (await push(target, { head_commit: { message: "Ship it" } })).body.deployments![0]!;
    for (const [i, name] of ["web-1", "web-2", "web-3"].entries()) await run(hosts[name]!, pushed.jobs[i]!);
    await deploymentBecomes(target, pushed.id, "succeeded");

    const res = await api(`/api/targets/${target}/deploy`, { method: "POST", body: JSON.stringify({ pipeline: "app" }), headers: { "Content-Type": "application/json" } });
    expect(res.status).toBe(202);
    const answer = (await res.json()) as { delivery: string; jobs: { id: string }[]; deployments: { id: string; jobs: string[] }[] };
    expect(answer.deployments).toEqual([{ id: expect.any(String), pipeline: "app", jobs: answer.jobs.map((j) => j.id) }]);
    const manual = answer.deployments[0]!;
    await run(hosts["web-1"]!, manual.jobs[0]!);
    await sentNothing(hosts["web-3"]!);
    const d = await deployment(target, manual.id);
    expect(d).toMatchObject({ event: "push", pusher: "api", sha: "b".repeat(40), message: "Ship it", delivery: answer.delivery });
    expect(d.jobs.map((j) => j.status)).toEqual(["succeeded", "queued", "queued"]);
  });

  it("with no GitHub or chat secrets, reporting is off and the deployment says why (never a crash, no reports)", async () => {
    const target = uniqueName();
    await helloAgent(target, "web-1");
    const { body } = await push(target);
    const d = await deployment(target, body.deployments![0]!.id);
    expect(d.reports).toEqual([]);
    expect(d.reporting.github).toBe("off: GitHub reporting is off: set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY");
    expect(d.reporting.notifications).toMatch(/^off: .*NOTIFY_URLS/);
  });

  it("a commit message is shown, never trusted: first line, control characters replaced, cut at 200 characters", async () => {
    const target = uniqueName();
    await helloAgent(target, "web-1");
    const { body } = await push(target, { head_commit: { message: `a\u001b[2Jb ${"x".repeat(300)}\nsecond line` } });
    const d = await deployment(target, body.deployments![0]!.id);
    expect(d.message).toBe(`a\ufffd[2Jb ${"x".repeat(192)}…`);
    expect(Array.from(d.message)).toHaveLength(200);
    const none = await push(target, { head_commit: null, after: "c".repeat(40) });
    expect((await deployment(target, none.body.deployments![0]!.id)).message).toBe("");
  });
});
