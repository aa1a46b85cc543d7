/**
 * A target never runs out of room: a byte budget for its stored logs (var LOG_BUDGET_MB). A SQLite-backed
 * Durable Object holds at most 10 GB (5 GB for a whole free account); past that every write fails,
 * webhooks included. Age-based retention alone cannot prevent it, so when the stored log bytes pass the
 * budget, the oldest finished jobs' log events are dropped, right after the append that passed it and in
 * its transaction. The job, its steps and statuses stay (for their retention period), and its log says
 * LOG_DROPPED_NOTE. A running job's log is never dropped: if everything over the budget belongs to
 * running jobs, appends go on (nothing is refused) and the overshoot is bounded by one job's log,
 * maxJobLogBytes (its output caps in bytes and rows, events.ts, plus its step events), × the jobs
 * running, one per agent; a running job's deadline (a timeout of at most 24 h) bounds how long, and the
 * first append after they end brings the total back under the budget.
 *
 * What a row costs: its data's UTF-8 bytes + LOG_ROW_OVERHEAD_BYTES. The running totals (per job:
 * `jobs.log_bytes`/`log_rows`; per target: the one-row `log_usage`) are kept by triggers on `job_events`
 * (schema v7), so no insert or delete — appends, this file's drops, retention, job deletion — can miss
 * them, and reading them costs one row, never a SUM over the table.
 */
import { MAX_DECLARED_STEPS_PER_PIPELINE } from "../../../shared/limits.ts";
import { positiveNumber } from "../../env-number.ts";
import type { OutputCaps } from "./events.ts";
import { addNote } from "./notes.ts";

/** A row's fixed cost beyond its data: key (job id, seq), the other columns, its primary-key index entry. The v7 triggers use this literal. */
export const LOG_ROW_OVERHEAD_BYTES = 128;
/**
 * The most one job's log can cost: its output caps' bytes of data in at most their rows, then a start
 * and an end row per declared step and the job-end (rows without data). With the defaults ≈ 66.5 MiB.
 */
export function maxJobLogBytes(caps: OutputCaps): number {
  return caps.bytes + (caps.rows + 2 * MAX_DECLARED_STEPS_PER_PIPELINE + 1) * LOG_ROW_OVERHEAD_BYTES;
}
export const DEFAULT_LOG_BUDGET_MB = 1024;
export const LOG_DROPPED_NOTE = "log dropped to stay within the target's storage budget";
/** How many jobs' logs one append may drop: a bounded batch (each job's log is bounded by the output cap). */
export const MAX_DROPS_PER_APPEND = 8;

export interface LogUsage {
  bytes: number;
  rows: number;
}

/** GET /api/targets/:target/storage. */
export interface LogStorageView {
  target: string;
  /** Stored log bytes: every job_events row's data (UTF-8) + `rowOverheadBytes` per row. */
  logBytes: number;
  logRows: number;
  logBudgetBytes: number;
  rowOverheadBytes: number;
  /** The oldest job (by creation) that still has log rows; null when none has. */
  oldestLoggedJob: { id: string; createdAt: string } | null;
}

/** LOG_BUDGET_MB (MiB, may be fractional) as bytes; unset, empty or not a positive number → the default. */
export function logBudgetBytes(env: { LOG_BUDGET_MB?: string }): number {
  const mb = positiveNumber(env.LOG_BUDGET_MB, DEFAULT_LOG_BUDGET_MB);
  return Math.floor(mb * 1024 * 1024);
}

/** The running total (one row). */
export function logUsage(sql: SqlStorage): LogUsage {
  return sql.exec<{ bytes: number; rows: number }>("SELECT bytes, rows FROM log_usage WHERE id = 1").one();
}

/** The same, counted from the rows themselves (a full scan): the self-check the tests compare the running total with. */
export function measureLogUsage(sql: SqlStorage): LogUsage {
  return sql
    .exec<{ bytes: number; rows: number }>(
      "SELECT COALESCE(sum(length(CAST(data AS BLOB))), 0) + ? * count(*) AS bytes, count(*) AS rows FROM job_events",
      LOG_ROW_OVERHEAD_BYTES,
    )
    .one();
}

/**
 * Call in the transaction that stored an event. Cheap when under the budget (one row read); past it,
 * drops the oldest finished jobs' logs until the total is within it, at most MAX_DROPS_PER_APPEND jobs.
 * Returns the jobs whose logs were dropped.
 */
export function keepWithinBudget(sql: SqlStorage, budgetBytes: number, now: number): string[] {
  let { bytes } = logUsage(sql);
  if (bytes <= budgetBytes) return [];
  const oldest = sql
    .exec<{ id: string; log_bytes: number }>(
      "SELECT id, log_bytes FROM jobs WHERE log_rows > 0 AND finished_at IS NOT NULL ORDER BY created_at, rowid LIMIT ?",
      MAX_DROPS_PER_APPEND,
    )
    .toArray();
  const dropped: string[] = [];
  for (const job of oldest) {
    if (bytes <= budgetBytes) break;
    dropJobLog(sql, job.id, now);
    bytes -= job.log_bytes;
    dropped.push(job.id);
  }
  return dropped;
}

/** Deletes the job's log events (the triggers count them out) and says so in its log, once. */
function dropJobLog(sql: SqlStorage, jobId: string, now: number): void {
  sql.exec("DELETE FROM job_events WHERE job_id = ?", jobId);
  const said = sql.exec("SELECT 1 FROM job_notes WHERE job_id = ? AND text = ? LIMIT 1", jobId, LOG_DROPPED_NOTE).toArray().length > 0;
  if (!said) addNote(sql, jobId, LOG_DROPPED_NOTE, now);
}

export function logStorageView(sql: SqlStorage, target: string, budgetBytes: number): LogStorageView {
  const usage = logUsage(sql);
  const oldest = sql
    .exec<{ id: string; created_at: number }>("SELECT id, created_at FROM jobs WHERE log_rows > 0 ORDER BY created_at, rowid LIMIT 1")
    .toArray()[0];
  return {
    target,
    logBytes: usage.bytes,
    logRows: usage.rows,
    logBudgetBytes: budgetBytes,
    rowOverheadBytes: LOG_ROW_OVERHEAD_BYTES,
    oldestLoggedJob: oldest ? { id: oldest.id, createdAt: new Date(oldest.created_at).toISOString() } : null,
  };
}
