import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, apiJson, event, helloAgent, postWebhook, pushPayload, uniqueName } from "../test-support.ts";
import { migrate, SCHEMA_VERSION } from "./schema.ts";
import type { JobView } from "./types.ts";

async function pushJob(target: string, sha = "b"): Promise<string> {
  const res = await postWebhook(target, JSON.stringify(pushPayload({ after: sha.repeat(40) })));
  return ((await res.json()) as { jobs: { id: string }[] }).jobs[0]!.id;
}

describe("Target DO lifecycle", () => {
  it("sends cancel when a job canceled on its way to the agent is accepted, and keeps it canceled", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await pushJob(target);
    await agent.next("job");
    const next = await pushJob(target, "c");
    const res = await api(`/api/targets/${target}/jobs/${id}/cancel`, { method: "POST" });
    expect(await res.json()).toEqual({ id, status: "canceled" });
    agent.send({ type: "accepted", jobId: id });
    expect(await agent.next("cancel")).toEqual({ type: "cancel", jobId: id });
    agent.send(event(id, 1, { kind: "job-end", status: "canceled" }));
    await agent.next("ack");
    expect(((await apiJson(`/api/targets/${target}/jobs/${id}`)) as JobView).status).toBe("canceled");
    expect((await agent.next("job")).jobId).toBe(next); // the agent is free again
    agent.close();
  });

  it("creates the schema once and records its version; migrating again changes nothing", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const versions = await runInDurableObject(stub, (_, state) => {
      const read = () => state.storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").toArray();
      const before = read();
      migrate(state.storage);
      return [before, read()];
    });
    expect(versions).toEqual([[{ version: SCHEMA_VERSION }], [{ version: SCHEMA_VERSION }]]);
  });

  it("deletes finished jobs, their events and old delivery records after the retention period (alarm)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await pushJob(target);
    await agent.next("job");
    agent.send({ type: "accepted", jobId: id });
    agent.send(event(id, 1, { kind: "job-end", status: "succeeded" }));
    await agent.next("ack");
    const stub = env.TARGET.getByName(target);
    const count = () =>
      runInDurableObject(stub, (_, state) =>
        ["jobs", "job_events", "job_steps", "deliveries"].map((t) => state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${t}`).one().n),
      );
    expect((await count()).every((n) => n > 0)).toBe(true);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await count()).every((n) => n > 0)).toBe(true); // not old yet

    const thirtyOneDays = 31 * 86_400_000;
    await runInDurableObject(stub, (_, state) => {
      state.storage.sql.exec("UPDATE jobs SET finished_at = finished_at - ?", thirtyOneDays);
      state.storage.sql.exec("UPDATE deliveries SET created_at = created_at - ?", thirtyOneDays);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await count()).toEqual([0, 0, 0, 0]);
    agent.close();
  });
});
