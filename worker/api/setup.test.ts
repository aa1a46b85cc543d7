// GET /api/targets/:target/setup: the checklist goes from red to green as each setup step is done —
// an agent registered and connected, GitHub's ping and pushes recorded with our answer, a refused
// signature shown as the hook's wrong secret, an agent of another protocol named, wait_for without the
// events it needs.
import { describe, expect, it } from "vitest";
import { agentsOf, api, connectAgent, eventually, helloAgent, pipeline, postWebhook, pushPayload, registerAgent, apiJson, uniqueName } from "../../testing/workerd/worker-support.ts";
import type { SetupCheck } from "./setup-checklist.ts";
import { workflowRunPayload, REPO, HEAD_SHA } from "../../testing/workerd/run-payloads.ts";

interface SetupAnswer {
  target: string;
  red: number;
  checks: SetupCheck[];
  facts: { deliveries: { kind: string; event: string; status: number; answer: string; count: number }[]; agents: { name: string; state: string; protocol: number | null; refused: { reason: string } | null }[] };
}

const setup = (target: string) => apiJson(`/api/targets/${target}/setup`) as Promise<SetupAnswer>;
const check = (s: SetupAnswer, id: SetupCheck["id"]) => s.checks.find((c) => c.id === id)!;

describe("GET /api/targets/:target/setup", () => {
  it("starts red with what to do next, and turns green as the newcomer registers an agent, connects it and GitHub pings", async () => {
    const target = uniqueName("setup");
    const before = await setup(target);
    expect(check(before, "secrets").state).toBe("ok");
    expect(check(before, "agents")).toMatchObject({ state: "red", lines: ["No agent is registered in this target."] });
    expect(check(before, "agents").fix).toContain(`npx hookrelay agents add web-1 --target ${target}`);
    expect(check(before, "webhook")).toMatchObject({ state: "red", lines: ["GitHub has sent nothing to this target yet."] });
    expect(check(before, "webhook").fix).toContain(`/webhook/${target}`);
    expect(before.red).toBe(2);

    await registerAgent(target, "web-1");
    const registered = await setup(target);
    expect(check(registered, "agents").state).toBe("red");
    expect(check(registered, "agents").lines).toEqual(["web-1: registered, never connected"]);

    const agent = await helloAgent(target, "web-1");
    const ping = await postWebhook(target, JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 42 }), { event: "ping", delivery: "ping-1" });
    expect(ping.status).toBe(200);
    const green = await eventually("the ping recorded", async () => {
      const s = await setup(target);
      return s.facts.deliveries.length > 0 && s;
    }, 4000);
    expect(check(green, "agents").state).toBe("ok");
    expect(check(green, "agents").lines[0]).toMatch(/^web-1: connected since .* · version test-1, protocol 3$/);
    expect(check(green, "webhook").state).toBe("ok");
    expect(green.facts.deliveries).toEqual([expect.objectContaining({ kind: "ping", event: "ping", status: 200, answer: "200: pong", count: 1 })]);
    expect(green.red).toBe(0);
    agent.close();
  });

  it("records a push with the DO's answer, and a later refused signature turns the webhook red naming the secret", async () => {
    const target = uniqueName("setup");
    const agent = await helloAgent(target, "web-1");
    const res = await postWebhook(target, JSON.stringify(pushPayload()), { delivery: "push-1" });
    expect(res.status).toBe(202);
    const pushed = await setup(target);
    expect(pushed.facts.deliveries[0]).toMatchObject({ kind: "push", status: 202, answer: "202: 1 job" });
    expect(check(pushed, "webhook").state).toBe("ok");

    // Signed with the configured secret itself, not this target's own: what a hook set up for /webhook sends to /webhook/<target>.
    const wrong = await postWebhook(target, JSON.stringify(pushPayload()), { delivery: "push-2", signWith: "It's a Secret to Everybody" });
    expect(wrong.status).toBe(401);
    const refused = await eventually("the refusal recorded", async () => {
      const s = await setup(target);
      return check(s, "webhook").state === "red" && s;
    }, 4000);
    expect(check(refused, "webhook").lines[0]).toMatch(/^A delivery \(push\) was refused at .*: invalid signature\.$/);
    expect(check(refused, "webhook").fix).toContain(`this target's own secret (GET /api/targets/${target}/webhook-secret`);
    // Unsigned requests are anyone's: a second refusal within REFUSED_NOTE_EVERY_MS does not reach the DO.
    expect((await postWebhook(target, JSON.stringify(pushPayload()), { signWith: "wrong" })).status).toBe(401);
    expect((await postWebhook(target, JSON.stringify({}), { event: "issues", delivery: "after" })).status).toBe(200);
    const later = await eventually("the later delivery recorded", async () => {
      const s = await setup(target);
      return s.facts.deliveries.some((d) => d.kind === "issues") && s;
    }, 4000);
    expect(later.facts.deliveries.find((d) => d.kind === "(refused)")!.count).toBe(1);
    // The push that was stored is still listed under it.
    expect(check(refused, "webhook").lines[1]).toMatch(/^Last push \(delivery push-1\) at .*: answered 202: 1 job\.$/);
    agent.close();
  });

  it("names an agent whose protocol this worker does not speak, with the fix", async () => {
    const target = uniqueName("setup");
    const old = await connectAgent(target, "old-1");
    old.send({ type: "hello", protocol: 2, agent: "old-1", version: "0.0.9", pipelines: [pipeline()], unfinished: [] } as never);
    await old.closed();
    const s = await setup(target);
    const agents = check(s, "agents");
    expect(agents.state).toBe("red");
    expect(agents.lines[0]).toContain("old-1: registered, never connected · its hello was refused at ");
    expect(agents.lines[0]).toContain("this worker speaks protocol 3 and agent old-1 speaks 2 (version 0.0.9): upgrade the agent");
    expect(agents.fix).toContain("this worker speaks protocol 3 and 4");

    // Upgraded, it is welcomed and the refusal is forgotten.
    const upgraded = await helloAgent(target, "old-1");
    const after = await setup(target);
    expect(check(after, "agents").state).toBe("ok");
    expect(after.facts.agents[0]!.refused).toBeNull();
    upgraded.close();
  });

  it("is red while a pipeline waits for workflows GitHub never sent, and green once a workflow_run arrives", async () => {
    const target = uniqueName("setup");
    const gated = pipeline({ repo: REPO, waitFor: { workflows: ["ci"], checks: [], approval: false, timeoutMs: 3_600_000 } });
    const agent = await helloAgent(target, "web-1", [gated]);
    const before = await setup(target);
    expect(check(before, "wait-for")).toMatchObject({ state: "red", lines: ["web-1/app waits for workflows ci: GitHub has never sent a workflow_run event to this target."] });
    expect(check(before, "wait-for").fix).toContain("Workflow runs");

    const run = await postWebhook(target, JSON.stringify(workflowRunPayload({ name: "ci", head_sha: HEAD_SHA })), { event: "workflow_run" });
    expect(run.status).toBeLessThan(300);
    const after = await setup(target);
    expect(check(after, "wait-for").state).toBe("ok");
    expect(check(after, "wait-for").lines[0]).toMatch(/^web-1\/app waits for workflows ci: GitHub last sent workflow_run at /);
    agent.close();
  });

  it("records an event the worker does not deploy with its answer, and keeps one row per event", async () => {
    const target = uniqueName("setup");
    for (const delivery of ["i-1", "i-2"]) {
      expect((await postWebhook(target, JSON.stringify({ action: "opened" }), { event: "issues", delivery })).status).toBe(200);
    }
    const s = await eventually("both deliveries recorded", async () => {
      const r = await setup(target);
      return r.facts.deliveries[0]?.count === 2 && r;
    }, 4000);
    expect(s.facts.deliveries).toHaveLength(1);
    expect(s.facts.deliveries[0]).toMatchObject({ kind: "issues", status: 200 });
    expect(s.facts.deliveries[0]!.answer).toContain("200: ignored: issues events are not deployed");
  });

  it("POST …/agents answers the install commands, the pipeline's fields checked before anything is registered", async () => {
    const target = uniqueName("setup");
    const post = (body: unknown) => api(`/api/targets/${target}/agents`, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
    const bad = await post({ name: "web-1", repo: "not a repo" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'repo must be OWNER/NAME, the GitHub repository (e.g. octo/app), not "not a repo"' });
    expect(await agentsOf(target)).toEqual([]);

    const res = await post({ name: "web-1", repo: "octo/app", workdir: "/srv/my app", branch: "refs/heads/release/*" });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { name: string; token: string; install: string };
    expect(body.install).toContain(`target: ${target}\nname: web-1\n`);
    expect(body.install).toContain('    repo: octo/app\n    branches: ["release/*"]\n    workdir: "/srv/my app"\n');
    expect(body.install).toContain(` HOOKRELAY_AGENT_TOKEN='${body.token}' sh -c`);
    // Without the fields, the placeholders to edit.
    const plain = (await (await post({ name: "web-2" })).json()) as { install: string };
    expect(plain.install).toContain("OWNER/REPO              # edit");
  });
});
