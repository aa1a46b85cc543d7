/**
 * A pipeline's rollout across the agents that declare it: `rollout: { batch: 1 | "N%", halt_on_failure }`
 * in the agent config, `rollout: {batch, haltOnFailure}` in hello's pipeline declarations. Pure helpers
 * both sides use: the batch value's rule, and how many hosts a batch is for a deployment of `hosts`.
 */

/** A batch is a number of hosts (1–100, as many as a target may have) or a percentage of them ("1%"–"100%"). */
export type BatchSize = number | string;

export interface Rollout {
  batch: BatchSize;
  /** A failed, timed-out or interrupted job ends the rollout: hosts not started yet are `skipped`. */
  haltOnFailure: boolean;
}

/** One host at a time, halting on the first failure: a single server sees no difference. */
export const DEFAULT_ROLLOUT: Rollout = Object.freeze({ batch: 1, haltOnFailure: true });

export const MAX_BATCH_HOSTS = 100;
const PERCENT = /^([1-9][0-9]?|100)%$/;

/** Why `value` cannot be a batch, or null. */
export function batchProblem(value: unknown): string | null {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 1 && value <= MAX_BATCH_HOSTS ? null : `must be a whole number of hosts from 1 to ${MAX_BATCH_HOSTS}, or "N%"`;
  }
  if (typeof value === "string") {
    return PERCENT.test(value) ? null : `must be "N%" with N from 1 to 100 (like "50%"), or a whole number of hosts`;
  }
  return `must be a number of hosts (like 1) or a percentage (like "50%")`;
}

/** How many hosts one batch is, out of `hosts` (≥ 1): a percentage rounds up, and a batch is never more than all of them. */
export function batchHosts(batch: BatchSize, hosts: number): number {
  if (typeof batch === "number") return Math.max(1, Math.min(batch, hosts));
  const percent = Number(batch.slice(0, -1));
  return Math.max(1, Math.min(hosts, Math.ceil((hosts * percent) / 100)));
}

/** `1 host`, `"50%"`: a batch as the config wrote it. */
export function describeBatch(batch: BatchSize): string {
  return typeof batch === "number" ? `${batch} host${batch === 1 ? "" : "s"}` : batch;
}
