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

  it("prints no experimental-feature notice for the collection, and leaves other warnings as they were", async () => {
    const warnings: string[] = [];
    const listen = (w: Error) => void warnings.push(w.message);
    process.on("warning", listen);
    try {
      const idle = new IdleCollector(1);
      idle.jobEnded();
      await eventually("a collection", () => (idle.collections === 1 ? true : undefined), 5000, 5);
      await new Promise((r) => setTimeout(r, 50));
      process.emitWarning("hookrelay test warning");
      await eventually("the other warning", () => (warnings.includes("hookrelay test warning") ? true : undefined), 5000, 5);
      expect(warnings.filter((w) => w.includes("measureMemory"))).toEqual([]);
    } finally {
      process.off("warning", listen);
    }
  });
});
