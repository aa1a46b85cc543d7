import type { OutputCaps } from "../jobs/events.ts";

/** What each handler behind the DO shell (target.ts) gets: the object's state, its target name, the time of the call. */
export interface TargetContext {
  ctx: DurableObjectState;
  target: string;
  now: number;
  /** LOG_BUDGET_MB in bytes (jobs/log-budget.ts). */
  logBudgetBytes: number;
  /** A job's output caps, JOB_LOG_ROWS among them (jobs/events.ts). */
  outputCaps: OutputCaps;
}

/**
 * What a handler changed, handed back to the shell — the one place that sends jobs and arms the alarm:
 * after it, every idle connected agent is sent its released job, and the alarm is re-derived from the
 * deadlines in SQL. Null when nothing changed that either depends on (a bad frame, a running job's output).
 */
export interface Changed {
  /**
   * Agents idle as far as the DO knows (they said hello, reported a job's end, or the DO ended their
   * job): a job sent to them but not accepted — it reached them while busy, or the socket dropped — goes again.
   */
  resend: string[];
  /**
   * Set when all that changed is one agent's own job starting or ending while its deployment stayed as
   * it was (lifecycle.ts startJob, endJob): no job was released for any other agent, so the shell sends
   * only the `resend` agents their next job; and the deadlines it adds come no sooner than alarm.ts
   * ownJobDeadlinesFrom says, so an alarm already due by then is kept (armUnlessSooner). A rollout's
   * batch starts and ends ten jobs at once: only the end that releases the next batch does the rest.
   * Unset: all of it (every idle agent's released job sent, the alarm derived in full).
   */
  only?: OwnJobChange;
}

/**
 * - "job-ended": a job's end while another job of its batch is still queued or running; it adds the
 *   finished job's retention.
 * - "job-started": a job accepted, not its deployment's first (that one reports "running"); it adds the
 *   job's time-up (`timeUpAt`, then the grace) and the look at its agent's socket (a stale period from now).
 */
export type OwnJobChange = { kind: "job-ended" } | { kind: "job-started"; timeUpAt: number };

/** An RPC handler's answer and what it changed (null: nothing). */
export interface Handled<T> {
  result: T;
  changed: Changed | null;
}
