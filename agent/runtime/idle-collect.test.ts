import { describe, expect, it } from "vitest";
import { eventually } from "../../dev/eventually.ts";
import { constants, PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics } from "node:v8";
import { IdleCollector } from "./idle-collect.ts";

describe("IdleCollector", () => {
  // First: Node says it once per process, so a collection before this one would hide it.
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

  it("gives back what a job left: the young generation shrinks back, not only its garbage collected", async () => {
    const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space")!.physical_space_size;
    // A step's flood: short-lived objects by the hundred thousand grow the young generation.
    let sink = 0;
    for (let round = 0; round < 20; round++) {
      const junk = Array.from({ length: 20_000 }, (_, i) => ({ i, line: `output line ${i}` }));
      sink += junk.length;
      await new Promise((r) => setImmediate(r));
    }
    expect(sink).toBe(400_000);
    const grown = newSpace();
    const idle = new IdleCollector(1);
    idle.jobEnded();
    await eventually("a collection", () => (idle.collections === 1 ? true : undefined), 5000, 5);
    await new Promise((r) => setTimeout(r, 50));
    // A full collection alone leaves it as grown (measured: 2.1 MB before and after); V8's last-resort one shrinks it.
    expect(newSpace()).toBeLessThan(grown / 2);
  });

  it("collects once after a job ends and the agent stays idle, not while the next job runs", async () => {
    // V8's own record of its collections: a full one (mark-compact) must follow.
    let major = 0;
    const gcs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
    });
    gcs.observe({ entryTypes: ["gc"] });
    const idle = new IdleCollector(20);
    idle.jobEnded();
    idle.jobEnded(); // a second end before the first's turn: still one collection
    await eventually("a collection", () => (idle.collections === 1 ? true : undefined), 5000, 5);
    await eventually("V8's full collection", () => (major > 0 ? true : undefined), 5000, 5);
    gcs.disconnect();
    idle.jobEnded();
    idle.jobStarted(); // the next job started before the agent was idle long enough
    await new Promise((r) => setTimeout(r, 100));
    expect(idle.collections).toBe(1);
    idle.stop();
  });
});
