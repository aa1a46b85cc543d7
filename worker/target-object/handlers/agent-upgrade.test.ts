import { describe, expect, it } from "vitest";
import { agentsOf, helloAgent, push, uniqueName } from "../../../testing/workerd/worker-support.ts";

describe("Target DO: the agent socket upgrade", () => {
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
