/**
 * GitHub's answer never waits for dispatch: the DO stores the delivery and its jobs and answers; the
 * job frame goes to the idle agent after that (a timer), exactly once. Should the DO go away between
 * the answer and the timer, the alarm's "unsent" deadline sends the job — the agent, whose hibernated
 * socket outlives the DO, is not left idle beside a queued job.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { scheduleAlarm, UNSENT_GRACE_MS } from "./alarm.ts";
import { alarmSettings } from "./deadline-settings.ts";
import { event, helloAgent, jobOf, SHA_A, SHA_B, uniqueName } from "../../testing/workerd/worker-support.ts";
import type { Target as TargetDO } from "./target.ts";
import type { WebhookDelivery } from "./types.ts";

const delivery = (id: string): WebhookDelivery => ({
  hookId: "1",
  delivery: id,
  event: "push",
  repo: "owner/OldManInfo_Flask",
  ref: "refs/heads/master",
  sha: SHA_A,
  before: SHA_B,
  pusher: "octocat",
  bodyHash: id.padEnd(64, "0"),
  stale: null,
  message: "deploy",
});

/** Nothing more arrives for a while: frames the DO sends go out at once, so 200 ms is plenty. */
const quiet = () => new Promise((r) => setTimeout(r, 200));

describe("the webhook's answer and dispatch", () => {
  it("answers before the job is sent, then sends it to the idle agent exactly once", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const stub = env.TARGET.getByName(target);
    const seen = await runInDurableObject(stub, async (instance: TargetDO, state) => {
      const answer = await instance.receiveDelivery(delivery("d-answer-first"));
      // The answer is ready; the job is stored, released, and not sent yet.
      const row = state.storage.sql.exec<{ dispatched_at: number | null; status: string }>("SELECT dispatched_at, status FROM jobs WHERE id = ?", answer.body.jobs[0]!.id).one();
      return { id: answer.body.jobs[0]!.id, row, alarm: await state.storage.getAlarm() };
    });
    expect(seen.row).toEqual({ dispatched_at: null, status: "queued" });
    // The net under the timer is armed: no later than the unsent grace.
    expect(seen.alarm).not.toBeNull();
    expect(seen.alarm! - Date.now()).toBeLessThanOrEqual(UNSENT_GRACE_MS);
    const job = await agent.next("job");
    expect(job.jobId).toBe(seen.id);
    agent.send({ type: "accepted", jobId: seen.id });
    agent.send(event(seen.id, 1, { kind: "job-end", status: "succeeded" }));
    await agent.next("ack");
    // The alarm's pass sends nothing twice.
    await runDurableObjectAlarm(stub);
    await quiet();
    expect(agent.pending().filter((m) => m.type === "job")).toEqual([]);
    expect((await jobOf(target, seen.id)).status).toBe("succeeded");
  });

  it("sends the job from the alarm when the send after the answer never happened (the DO went away first)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const stub = env.TARGET.getByName(target);
    const id = await runInDurableObject(stub, async (instance: TargetDO) => (await instance.receiveDelivery(delivery("d-evicted"))).body.jobs[0]!.id);
    expect((await agent.next("job")).jobId).toBe(id);
    // As if the instance had gone before its timer fired: the job never marked sent, and a fresh instance.
    // The alarm is derived again from what is stored (as any later event does): the unsent job is a deadline.
    await runInDurableObject(stub, async (_, state) => {
      state.storage.sql.exec("UPDATE jobs SET dispatched_at = NULL WHERE id = ?", id);
      await state.storage.deleteAlarm();
      await scheduleAlarm(state.storage, alarmSettings(env));
    });
    await evictDurableObject(stub);
    const alarm = await runInDurableObject(stub, (_, state) => state.storage.getAlarm());
    expect(alarm !== null && alarm - Date.now() <= UNSENT_GRACE_MS).toBe(true);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // The alarm sent it (the agent's accepted log makes a second copy harmless); then the deadline is gone.
    expect((await agent.next("job")).jobId).toBe(id);
    const after = await runInDurableObject(stub, (_, state) => state.storage.getAlarm());
    expect(after === null || after - Date.now() > UNSENT_GRACE_MS).toBe(true);
  });

  it("arms no unsent deadline for an agent that is busy or offline (its job waits, as before)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const stub = env.TARGET.getByName(target);
    const first = await runInDurableObject(stub, async (instance: TargetDO) => (await instance.receiveDelivery(delivery("d-1"))).body.jobs[0]!.id);
    expect((await agent.next("job")).jobId).toBe(first);
    agent.send({ type: "accepted", jobId: first });
    await expect.poll(async () => (await jobOf(target, first)).status).toBe("running");
    await runDurableObjectAlarm(stub);
    const alarm = await runInDurableObject(stub, async (instance: TargetDO, state) => {
      await instance.receiveDelivery({ ...delivery("d-2"), sha: "c".repeat(40), bodyHash: "d-2".padEnd(64, "1") });
      return state.storage.getAlarm();
    });
    // Busy: the new job waits for the running one; no alarm within the unsent grace for it.
    expect(alarm === null || alarm - Date.now() > UNSENT_GRACE_MS).toBe(true);
  });
});
