import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_UNFINISHED } from "../../shared/protocol.ts";
import { api, connectAgent, event, hello, helloAgent, jobOf, runningJob, uniqueName } from "../test-support.ts";

describe("Target DO: frames no agent should send", () => {
  it("refuses a hello listing more than MAX_UNFINISHED jobs with an error naming the limit, and takes the next good hello", async () => {
    const target = uniqueName();
    const agent = await connectAgent(target, "web-1");
    const unfinished = Array.from({ length: MAX_UNFINISHED + 1 }, (_, i) => ({ jobId: `job-${i}`, lastSeq: 0 }));
    agent.send(hello("web-1", undefined, unfinished));
    const error = await agent.next("error");
    expect(error.code).toBe("bad-frame");
    expect(error.message).toContain("unfinished");
    expect(error.message).toContain(String(MAX_UNFINISHED));
    agent.send(hello("web-1"));
    expect((await agent.next("welcome")).agent).toBe("web-1");
    agent.close();
  });

  it("refuses an event whose time is past the Date range, and the job still answers 200", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    agent.send({ type: "event", jobId: id, seq: 1, at: 8.64e15 + 1, body: { kind: "step-start", step: "fetch" } });
    const error = await agent.next("error");
    expect(error.code).toBe("bad-frame");
    expect(error.message).toContain("at");
    expect((await jobOf(target, id)).steps[0]).toMatchObject({ name: "fetch", status: "pending", startedAt: null });
    agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    expect((await agent.next("ack")).seq).toBe(1);
    agent.close();
  });

  it("still answers a job whose stored times are outside the Date range (a row written before times were bounded)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    await runInDurableObject(env.TARGET.getByName(target), (_, state) => {
      state.storage.sql.exec("UPDATE job_steps SET started_at = ?, finished_at = ? WHERE job_id = ? AND position = 0", 9e15, Number.MAX_SAFE_INTEGER, id);
      state.storage.sql.exec("UPDATE jobs SET started_at = ? WHERE id = ?", -9e15, id);
    });
    const res = await api(`/api/targets/${target}/jobs/${id}`);
    expect(res.status).toBe(200);
    const job = (await res.json()) as { startedAt: string | null; steps: { startedAt: string | null; finishedAt: string | null }[] };
    expect(job.startedAt).toBeNull();
    expect(job.steps[0]).toMatchObject({ startedAt: null, finishedAt: null });
    expect((await api(`/api/targets/${target}/jobs`)).status).toBe(200);
    agent.close();
  });
});
