import { describe, expect, it } from "vitest";
import { agentsOf, disconnected, event, eventually, helloAgent, jobOf, registerAgent, runningJob, uniqueName } from "../../../testing/workerd/worker-support.ts";

describe("GET /api/targets/:target/agents: the job an agent runs now, and since when it is offline", () => {
  it("shows runningJob while the agent runs a job, none after it ends, and disconnectedAt once it left", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const [idle] = await agentsOf(target);
    expect(idle).toMatchObject({ name: "web-1", connected: true, disconnectedAt: null, runningJob: null });

    const id = await runningJob(target, agent);
    const { deployment } = await jobOf(target, id);
    expect(deployment).toEqual(expect.any(String));
    const [busy] = await agentsOf(target);
    expect(busy?.runningJob).toEqual({ id, pipeline: "app", deployment });

    agent.send(event(id, 1, { kind: "job-end", status: "succeeded" }));
    await eventually("the job ended", async () => (await agentsOf(target))[0]?.runningJob === null, 2000, 10);

    const before = Date.now();
    await disconnected(target, agent);
    const [gone] = await agentsOf(target);
    expect(gone?.connected).toBe(false);
    expect(gone?.disconnectedAt).toEqual(expect.any(String));
    expect(Date.parse(gone!.disconnectedAt!)).toBeGreaterThanOrEqual(before - 1000);
  });

  it("shows neither for an agent registered that never connected", async () => {
    const target = uniqueName();
    await registerAgent(target, "web-2");
    expect(await agentsOf(target)).toEqual([
      { name: "web-2", connected: false, version: "", pipelines: [], connectedAt: null, lastSeenAt: null, disconnectedAt: null, runningJob: null },
    ]);
  });
});
