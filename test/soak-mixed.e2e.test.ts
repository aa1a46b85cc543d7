/**
 * The mixed-fault soak, short (about 50 faults), so CI keeps it alive: worker SIGKILLs and restarts, an
 * eviction, agent SIGKILLs, partitions, resets, full disks and clock jumps against the real worker and four real
 * agents under a steady stream of pushes (testing/soak/, docs/soak.md). `npm run soak` runs the long one.
 * SOAK_SEED replays a seed's choices (timings still vary); SOAK_FAULTS changes the count.
 */
import { describe, expect, it } from "vitest";
import { runSoak } from "../testing/soak/run.ts";

// A fixed seed by default, so CI throws the same faults each run (timings still vary); SOAK_SEED picks another, `npm run soak` draws one.
const SEED = process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) >>> 0 : 2028839054;
const FAULTS = Math.max(1, Number(process.env.SOAK_FAULTS ?? 50));

describe(`the mixed-fault soak (seed ${SEED}, ${FAULTS} faults)`, () => {
  it("loses, repeats, double-runs, strands and double-reports nothing, and its log totals match a recount", async () => {
    console.log(`soak: seed ${SEED} (SOAK_SEED=${SEED} to replay)`);
    const result = await runSoak({
      faults: FAULTS,
      seed: SEED,
      minutes: null,
      // Short holds, and fewer worker restarts (~8 s each here): the long run (npm run soak) partitions
      // for up to 90 s and throws every kind alike.
      limits: { maxPartitionSeconds: 4, maxDiskFullSeconds: 3, recoverTimeoutMs: 60_000 },
      gapMaxMs: 600,
      workerShare: 0.1,
      // One eviction (the object left idle until the runtime evicts it), not drawn: each costs ~20 s.
      evictShare: 0,
      evictAt: [Math.ceil(FAULTS / 2)],
    });
    console.log(result.text);
    if (!result.ok) console.log(`soak: findings and every process's output kept in ${result.dir}`);
    expect(result.results.length).toBe(FAULTS);
    expect(result.results.every((r) => r.recovered)).toBe(true);
    expect(result.findings.details).toEqual([]);
    // The eviction was produced: the object was built again after its quiet, its agents' sockets kept.
    expect(result.results.find((r) => r.kind === "evict")?.what).toMatch(/object evicted and built again, (\d+) of \1 agents kept their connection/);
    expect(result.text.split("\n").at(-1)).toMatch(new RegExp(`^soak: faults=${FAULTS} kinds=\\d+ lost=0 repeated=0 double_runs=0 stuck=0 reports_dup=0 seed=${SEED} minutes=[\\d.]+$`));
  }, 15 * 60_000);
});
