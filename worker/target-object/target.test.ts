import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, connectAgent, event, hello, helloAgent, jobOf, pipeline, runningJob, uniqueName } from "../../testing/workerd/worker-support.ts";

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
});

describe("Target DO: eviction", () => {
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
