import type { OutputCaps } from "./events.ts";

/** What each plain function behind the DO shell (target.ts) gets: the object's state, its target name, the time of the call. */
export interface TargetContext {
  ctx: DurableObjectState;
  target: string;
  now: number;
  /** LOG_BUDGET_MB in bytes (log-budget.ts). */
  logBudgetBytes: number;
  /** A job's output caps, JOB_LOG_ROWS among them (events.ts). */
  outputCaps: OutputCaps;
}
