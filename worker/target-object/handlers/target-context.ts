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
   * "job-ended": all that changed is a job's end that left its deployment as it was (another job of its
   * batch is still queued or running: lifecycle.ts endJob). No job was released for any other agent and
   * no deadline came sooner, so the shell sends only the `resend` agents their next job and keeps an
   * alarm already due before the one deadline such an end adds (alarm.ts armAfterJobEnd). Unset: all of it.
   */
  only?: "job-ended";
}

/** An RPC handler's answer and what it changed (null: nothing). */
export interface Handled<T> {
  result: T;
  changed: Changed | null;
}
