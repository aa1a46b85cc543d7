import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  agentsOf,
  api,
  connectAgent,
  disconnected,
  event,
  hello,
  helloAgent,
  jobOf,
  jobsOf,
  pipeline,
  postWebhook,
  push,
  pushPayload,
  runningJob,
  statusBecomes,
  uniqueName,
} from "../test-support.ts";

describe("Target DO: matching and deliveries", () => {
  it("creates a job for a matching push once an agent has said hello, and sends it to the agent", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [pipeline({ branches: ["release/**", "master"] })]);
    const { status, body } = await push(target, { repository: { full_name: "OWNER/oldmaninfo_flask" } });
    expect(status).toBe(202);
    expect(body.jobs).toEqual([{ id: expect.any(String), agent: "web-1", pipeline: "app", status: "queued" }]);
    const job = await agent.next("job");
    expect(job).toMatchObject({ jobId: body.jobs[0]!.id, pipeline: "app", ref: "refs/heads/master", sha: "b".repeat(40), before: "a".repeat(40), pusher: "octocat", event: "push" });
    expect((await push(target, { ref: "refs/heads/release/1.2" })).status).toBe(202);
    expect((await push(target, { ref: "refs/heads/dev" })).body.ignored).toBe("no pipeline for push to refs/heads/dev of owner/OldManInfo_Flask");
    expect((await push(target, { repository: { full_name: "owner/other" } })).status).toBe(200);
    agent.close();
  });

  it("answers a duplicate delivery with the first answer and creates no second job", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const first = await push(target, {}, "dup-1");
    const again = await push(target, {}, "dup-1");
    expect(first.status).toBe(202);
    expect(again).toEqual(first);
    expect(await jobsOf(target)).toHaveLength(1);
    // Same GUID under another hook id is another delivery (GitHub shares GUIDs across hooks).
    const otherHook = await postWebhook(target, JSON.stringify(pushPayload()), { delivery: "dup-1", hookId: "999" });
    expect(otherHook.status).toBe(202);
    agent.close();
  });

  it("matches against stored pipelines while the agent is offline, and sends the job when it reconnects", async () => {
    const target = uniqueName();
    await disconnected(target, await helloAgent(target, "web-1"));
    const { status, body } = await push(target);
    expect(status).toBe(202);
    const again = await helloAgent(target, "web-1");
    expect((await again.next("job")).jobId).toBe(body.jobs[0]!.id);
    again.close();
  });

  it("supersedes an older queued job of the same agent and pipeline that was not sent yet", async () => {
    const target = uniqueName();
    await disconnected(target, await helloAgent(target, "web-1"));
    const first = await push(target);
    const second = await push(target, { after: "c".repeat(40) });
    const older = await jobOf(target, first.body.jobs[0]!.id);
    expect(older.status).toBe("superseded");
    expect(older.steps.every((s) => s.status === "skipped")).toBe(true);
    expect((await jobOf(target, second.body.jobs[0]!.id)).status).toBe("queued");
  });

  it("does not supersede a job already sent to the agent; the next one waits its turn", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const first = await push(target);
    await agent.next("job");
    const second = await push(target);
    expect((await jobOf(target, first.body.jobs[0]!.id)).status).toBe("queued");
    agent.send({ type: "accepted", jobId: first.body.jobs[0]!.id });
    await statusBecomes(target, first.body.jobs[0]!.id, "running");
    agent.send(event(first.body.jobs[0]!.id, 1, { kind: "job-end", status: "succeeded" }));
    expect((await agent.next("job")).jobId).toBe(second.body.jobs[0]!.id);
    agent.close();
  });
});

describe("Target DO: the job flow over the agent's socket", () => {
  it("runs a job end to end: accepted, events acked, job-end, then the API shows status, steps and log", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [pipeline({ steps: ["fetch", "install"], onFailure: ["rollback"] })]);
    const id = await runningJob(target, agent);
    const events = [
      { kind: "step-start", step: "fetch" },
      { kind: "output", step: "fetch", stream: "stdout", data: "HEAD is now at bbbb\n" },
      { kind: "output", step: "fetch", stream: "stderr", data: "no newline" },
      { kind: "step-end", step: "fetch", status: "succeeded", exitCode: 0 },
      { kind: "step-start", step: "install" },
      { kind: "output", step: "install", stream: "stdout", data: "ok ✓\r\n" },
      { kind: "step-end", step: "install", status: "succeeded", exitCode: 0 },
      { kind: "job-end", status: "succeeded" },
    ] as const;
    for (const [i, body] of events.entries()) {
      agent.send(event(id, i + 1, body));
      expect(await agent.next("ack")).toEqual({ type: "ack", jobId: id, seq: i + 1 });
    }
    const job = await jobOf(target, id);
    expect(job).toMatchObject({ id, target, agent: "web-1", pipeline: "app", status: "succeeded", repo: "owner/OldManInfo_Flask", ref: "refs/heads/master" });
    expect(job.startedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(job.finishedAt).not.toBeNull();
    expect(job.steps.map((s) => [s.name, s.status, s.exitCode])).toEqual([
      ["fetch", "succeeded", 0],
      ["install", "succeeded", 0],
      ["rollback", "skipped", null],
    ]);
    const log = await api(`/api/targets/${target}/jobs/${id}/log`);
    expect(log.headers.get("Content-Type")).toBe("text/plain; charset=utf-8");
    expect(await log.text()).toBe(
      "--- fetch\nHEAD is now at bbbb\nno newline\n--- fetch succeeded (exit 0)\n--- install\nok ✓\r\n--- install succeeded (exit 0)\n--- job succeeded\n",
    );
    const stepLog = await api(`/api/targets/${target}/jobs/${id}/log?step=fetch`);
    expect(await stepLog.text()).toBe("HEAD is now at bbbb\nno newline");
    agent.close();
  });

  it("stores a duplicate event once and re-acks it; a gap is neither stored nor acked", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    expect((await agent.next("ack")).seq).toBe(1);
    agent.send(event(id, 2, { kind: "output", step: "fetch", stream: "stdout", data: "once\n" }));
    expect((await agent.next("ack")).seq).toBe(2);
    agent.send(event(id, 2, { kind: "output", step: "fetch", stream: "stdout", data: "once\n" }));
    expect((await agent.next("ack")).seq).toBe(2);
    agent.send(event(id, 5, { kind: "output", step: "fetch", stream: "stdout", data: "gap\n" }));
    agent.send(event(id, 3, { kind: "output", step: "fetch", stream: "stdout", data: "three\n" }));
    expect((await agent.next("ack")).seq).toBe(3); // the gap frame got no ack; the next ack is for 3
    expect(await (await api(`/api/targets/${target}/jobs/${id}/log?step=fetch`)).text()).toBe("once\nthree\n");
    agent.close();
  });

  it("answers bad frames with a bad-frame error and keeps working", async () => {
    const target = uniqueName();
    const agent = await connectAgent(target, "web-1");
    agent.send({ type: "accepted", jobId: "x" }); // before hello
    expect((await agent.next("error")).code).toBe("bad-frame");
    agent.send("not json");
    expect((await agent.next("error")).code).toBe("bad-frame");
    agent.send(JSON.stringify({ type: "launch-missiles" }));
    expect((await agent.next("error")).message).toContain("type");
    agent.send(JSON.stringify({ ...hello("web-1"), pipelines: [{ name: "app" }] }));
    expect((await agent.next("error")).message).toContain("pipelines[0].repo");
    agent.ws.send(new Uint8Array([1, 2, 3]));
    expect((await agent.next("error")).message).toContain("binary");
    agent.send(hello("someone-else"));
    expect((await agent.next("error")).message).toContain("someone-else");
    agent.send(hello("web-1"));
    expect((await agent.next("welcome")).agent).toBe("web-1");
    agent.send(event("no-such-job", 1, { kind: "step-start", step: "fetch" }));
    expect((await agent.next("error")).code).toBe("unknown-job");
    agent.close();
  });

  it("replaces an older connection of the same agent, closing it with 4000", async () => {
    const target = uniqueName();
    const first = await helloAgent(target, "web-1");
    const closed = new Promise<number>((resolve) => first.ws.addEventListener("close", (e) => resolve(e.code)));
    const second = await helloAgent(target, "web-1");
    expect(await closed).toBe(4000);
    const { body } = await push(target);
    expect((await second.next("job")).jobId).toBe(body.jobs[0]!.id);
    expect((await agentsOf(target))[0]).toMatchObject({ name: "web-1", connected: true, version: "test-1" });
    second.close();
  });
});

describe("Target DO: reconnects, cancel, stale agents, eviction", () => {
  it("resumes unfinished jobs on hello and marks running jobs the agent lost as interrupted", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    await agent.next("ack");
    await disconnected(target, agent);

    const back = await connectAgent(target, "web-1");
    back.send(hello("web-1", [pipeline()], [{ jobId: id, lastSeq: 3 }]));
    await back.next("welcome");
    expect(await back.next("resume")).toEqual({ type: "resume", jobId: id, ackedSeq: 1 });
    expect((await jobOf(target, id)).status).toBe("running");
    await disconnected(target, back);

    const amnesiac = await helloAgent(target, "web-1"); // unfinished: []
    await statusBecomes(target, id, "interrupted");
    const steps = (await jobOf(target, id)).steps;
    expect(steps.map((s) => s.status)).toEqual(["canceled", "skipped", "skipped", "skipped"]);
    expect(await (await api(`/api/targets/${target}/jobs/${id}/log`)).text()).toBe(
      "--- fetch\n--- [hookrelay] agent web-1 reconnected without this job (it did not list it unfinished): ended interrupted\n",
    );
    amnesiac.close();
  });

  it("cancels a queued job at once, and 409s a finished one", async () => {
    const target = uniqueName();
    await disconnected(target, await helloAgent(target, "web-1"));
    const { body } = await push(target);
    const id = body.jobs[0]!.id;
    const res = await api(`/api/targets/${target}/jobs/${id}/cancel`, { method: "POST" });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ id, status: "canceled" });
    expect((await jobOf(target, id)).status).toBe("canceled");
    expect((await api(`/api/targets/${target}/jobs/${id}/cancel`, { method: "POST" })).status).toBe(409);
    expect((await api(`/api/targets/${target}/jobs/nope/cancel`, { method: "POST" })).status).toBe(404);
  });

  it("sends cancel to the agent for a running job, and again on reconnect if it was offline", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    const res = await api(`/api/targets/${target}/jobs/${id}/cancel`, { method: "POST" });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ id, status: "running" });
    expect(await agent.next("cancel")).toEqual({ type: "cancel", jobId: id });
    await disconnected(target, agent);

    const back = await connectAgent(target, "web-1");
    back.send(hello("web-1", [pipeline()], [{ jobId: id, lastSeq: 0 }]));
    await back.next("resume");
    expect(await back.next("cancel")).toEqual({ type: "cancel", jobId: id });
    back.send(event(id, 1, { kind: "job-end", status: "canceled" }));
    await back.next("ack");
    expect((await jobOf(target, id)).status).toBe("canceled");
    back.close();
  });

  it("marks a disconnected agent's running job interrupted once the stale deadline passes (alarm)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    await disconnected(target, agent);
    const stub = env.TARGET.getByName(target);

    // Before the deadline the alarm changes nothing.
    expect(await runInDurableObject(stub, async (_, state) => (await state.storage.getAlarm()) !== null)).toBe(true);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await jobOf(target, id)).status).toBe("running");

    // Fake the clock: the agent left longer ago than AGENT_STALE_SECONDS.
    await runInDurableObject(stub, (_, state) => {
      state.storage.sql.exec("UPDATE agents SET disconnected_at = disconnected_at - 301000");
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await jobOf(target, id)).status).toBe("interrupted");
  });

  it("counts an agent that comes back still running a stale-interrupted job as busy, then sends its next job", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const a = await runningJob(target, agent);
    agent.send(event(a, 1, { kind: "step-start", step: "fetch" }));
    await agent.next("ack");
    await disconnected(target, agent);
    const stub = env.TARGET.getByName(target);
    await runInDurableObject(stub, (_, state) => {
      state.storage.sql.exec("UPDATE agents SET disconnected_at = disconnected_at - 301000");
    });
    await runDurableObjectAlarm(stub);
    expect((await jobOf(target, a)).status).toBe("interrupted");
    const b = ((await (await postWebhook(target, JSON.stringify(pushPayload({ after: "c".repeat(40) })))).json()) as { jobs: { id: string }[] }).jobs[0]!.id;

    const back = await connectAgent(target, "web-1");
    back.send(hello("web-1", undefined, [{ jobId: a, lastSeq: 1 }]));
    await back.next("welcome");
    expect(await back.next("resume")).toMatchObject({ jobId: a, ackedSeq: 1 });
    const revived = await jobOf(target, a);
    expect(revived.status).toBe("running");
    expect(revived.finishedAt).toBeNull();
    expect(revived.steps[0]).toMatchObject({ name: "fetch", status: "running" });
    await expect(back.next("job", 300)).rejects.toThrow(); // busy with A: B waits

    back.send(event(a, 2, { kind: "step-end", step: "fetch", status: "succeeded", exitCode: 0 }));
    back.send(event(a, 3, { kind: "job-end", status: "succeeded" }));
    expect(await back.next("job")).toMatchObject({ jobId: b });
    expect((await jobOf(target, a)).status).toBe("succeeded");
    back.close();
  });

  it("sends the next job at once when a job still on its way to the agent is canceled", async () => {
    const target = uniqueName();
    const decls = [pipeline({ name: "app" }), pipeline({ name: "docs", branches: ["docs"] })];
    const agent = await helloAgent(target, "web-1", decls);
    const first = ((await (await postWebhook(target, JSON.stringify(pushPayload()))).json()) as { jobs: { id: string }[] }).jobs[0]!.id;
    expect(await agent.next("job")).toMatchObject({ jobId: first }); // sent, never accepted
    const second = ((await (await postWebhook(target, JSON.stringify(pushPayload({ ref: "refs/heads/docs" })))).json()) as { jobs: { id: string }[] }).jobs[0]!.id;
    await expect(agent.next("job", 300)).rejects.toThrow(); // the agent still has the first one to answer
    expect((await api(`/api/targets/${target}/jobs/${first}/cancel`, { method: "POST" })).status).toBe(202);
    expect(await agent.next("job")).toMatchObject({ jobId: second });
    agent.close();
  });

  it("keeps jobs and events across eviction, and acks continue from the stored seq", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    agent.send(event(id, 2, { kind: "output", step: "fetch", stream: "stdout", data: "before eviction\n" }));
    await agent.next("ack");
    expect((await agent.next("ack")).seq).toBe(2);

    await evictDurableObject(env.TARGET.getByName(target));

    agent.send(event(id, 2, { kind: "output", step: "fetch", stream: "stdout", data: "before eviction\n" }));
    expect((await agent.next("ack")).seq).toBe(2);
    agent.send(event(id, 3, { kind: "output", step: "fetch", stream: "stdout", data: "after\n" }));
    expect((await agent.next("ack")).seq).toBe(3);
    agent.send(event(id, 4, { kind: "job-end", status: "failed" }));
    expect((await agent.next("ack")).seq).toBe(4);
    expect(await (await api(`/api/targets/${target}/jobs/${id}/log?step=fetch`)).text()).toBe("before eviction\nafter\n");
    const job = await jobOf(target, id);
    expect(job.status).toBe("failed");
    expect(job.steps[0]).toMatchObject({ name: "fetch", status: "failed" });
    agent.close();
  });
});
