/**
 * End to end: a small fleet on one target, as `npm run bench:fleet` drives a large one (bench/fleet.ts) —
 * four protocol agents (testing/fleet-agent.ts) and one real agent process under the real worker, a push
 * rolled out in batches of 10% (one host each here), the worker restarted and every agent back, then an
 * idle spell with heartbeats every 200 ms on a worker that writes a line each time the Target object's code
 * runs. What is asserted is what a run must get right, never how fast: every job succeeded, every
 * host's stored log is what it printed, every agent came back, and no heartbeat woke the object.
 */
import { describe, expect, it } from "vitest";
import { fleetBench, fleetOk, fleetLine } from "../bench/fleet.ts";

describe("a fleet on one target (protocol agents and a real one)", () => {
  it("rolls a push out to all of them in batches, keeps every log whole, and answers their heartbeats without waking the object", async () => {
    const r = await fleetBench({ agents: 5, real: 1, rollouts: 1, idleMs: 2000, heartbeatMs: 200, noMatchPushes: 1 });
    expect(r.failures).toEqual([]);
    expect(fleetOk(r)).toBe(true);
    // One warm-up and one measured rollout, five hosts each, one host a batch (10% of 5, rounded up).
    expect(r.jobsRun).toBe(10);
    expect(r.jobsFailed).toBe(0);
    expect(r.logsChecked).toBe(20);
    expect(r.logsNotWhole).toBe(0);
    expect(r.rollouts).toHaveLength(1);
    expect(r.rollouts[0]!.status).toBe("succeeded");
    expect(r.rollouts[0]!.batches).toBe(5);
    expect(r.rollouts[0]!.boundaries).toHaveLength(4);
    // The count is real: the traced worker saw every agent's upgrade and hello after its restart…
    expect(r.tracedEntries.fetch ?? 0).toBeGreaterThanOrEqual(5);
    expect(r.tracedEntries.webSocketMessage ?? 0).toBeGreaterThanOrEqual(5);
    // …and none while ~50 heartbeats crossed (five agents, every 200 ms, 2 s): the runtime answered them.
    expect(r.idleEntries).toEqual({});
    expect(r.idleWakeups).toBe(0);
    expect(Number.isFinite(r.reconnectAllMs)).toBe(true);
    expect(fleetLine(r)).toMatch(/^fleet: agents=5 connect_ms=\d+ rollout_ms=\d+ boundary_p50_ms=-?[\d.]+ boundary_max_ms=-?[\d.]+ answer_delta_ms=-?[\d.]+ idle_wakeups=0 reconnect_all_ms=\d+$/);
  }, 240_000);
});
