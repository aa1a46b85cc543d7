import { describe, expect, it } from "vitest";
import { planRollout, rolloutOrder } from "./rollout-plan.ts";

const halt = (batch: number | string) => ({ batch, haltOnFailure: true });

describe("rollout plan", () => {
  it("orders hosts by name, numbers naturally (web-2 before web-10)", () => {
    expect(rolloutOrder(["web-10", "web-2", "db", "web-1"])).toEqual(["db", "web-1", "web-2", "web-10"]);
  });

  it("one host at a time by default", () => {
    const { plan, order, batchOf } = planRollout(["web-3", "web-1", "web-2"].map((agent) => ({ agent, rollout: halt(1) })));
    expect(order).toEqual(["web-1", "web-2", "web-3"]);
    expect(order.map(batchOf)).toEqual([0, 1, 2]);
    expect(plan).toEqual({ batch: 1, hosts: 3, batchHosts: 1, batches: 3, haltOnFailure: true, note: null });
  });

  it('"50%" of 3 hosts rounds up to 2 per batch, and says so', () => {
    const { plan, order, batchOf } = planRollout(["web-1", "web-2", "web-3"].map((agent) => ({ agent, rollout: halt("50%") })));
    expect(order.map(batchOf)).toEqual([0, 0, 1]);
    expect(plan).toMatchObject({ batch: "50%", batchHosts: 2, batches: 2, note: "50% of 3 hosts is 1.5: rounded up to 2 per batch" });
  });

  it("agents that disagree get the most cautious: the smallest batch, halting if any halts — and the plan says who said what", () => {
    const { plan, batchOf } = planRollout([
      { agent: "web-1", rollout: { batch: 3, haltOnFailure: false } },
      { agent: "web-2", rollout: { batch: "50%", haltOnFailure: false } },
      { agent: "web-3", rollout: { batch: 3, haltOnFailure: true } },
    ]);
    expect(plan).toMatchObject({ batch: "50%", batchHosts: 2, batches: 2, haltOnFailure: true });
    expect(plan.note).toBe(
      "agents disagree (web-1 batch 3 hosts, no halt; web-2 batch 50%, no halt; web-3 batch 3 hosts): using the most cautious, 2 hosts per batch, halting on failure; 50% of 3 hosts is 1.5: rounded up to 2 per batch",
    );
    expect(["web-1", "web-2", "web-3"].map(batchOf)).toEqual([0, 0, 1]);
  });

  it("a batch larger than the hosts is all at once", () => {
    const { plan } = planRollout([{ agent: "web-1", rollout: { batch: 5, haltOnFailure: false } }]);
    expect(plan).toEqual({ batch: 5, hosts: 1, batchHosts: 1, batches: 1, haltOnFailure: false, note: "batch 5 is more than the 1 host: all at once" });
  });
});
