import { describe, expect, it } from "vitest";
import { eventually } from "../../dev/eventually.ts";
import { IdleCollector } from "./idle-collect.ts";

describe("IdleCollector", () => {
  it("collects once after a job ends and the agent stays idle, not while the next job runs", async () => {
    const idle = new IdleCollector(20);
    idle.jobEnded();
    idle.jobEnded(); // a second end before the first's turn: still one collection
    await eventually("a collection", () => (idle.collections === 1 ? true : undefined), 5000, 5);
    idle.jobEnded();
    idle.jobStarted(); // the next job started before the agent was idle long enough
    await new Promise((r) => setTimeout(r, 100));
    expect(idle.collections).toBe(1);
    idle.stop();
  });
});
