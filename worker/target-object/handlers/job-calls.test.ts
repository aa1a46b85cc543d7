import { describe, expect, it } from "vitest";
import {
  api,
  connectAgent,
  disconnected,
  event,
  hello,
  helloAgent,
  jobOf,
  pipeline,
  postWebhook,
  push,
  pushPayload,
  runningJob,
  uniqueName,
} from "../../../testing/workerd/worker-support.ts";

describe("Target DO: cancel", () => {
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
});
