/**
 * The DO's one alarm, derived from the earliest deadline stored in SQL: a disconnected agent's
 * running job going stale, and retention of finished jobs and delivery records.
 */
import { deleteJob, finishJob } from "./jobs.ts";

const DEFAULT_STALE_SECONDS = 300;
const DEFAULT_RETENTION_DAYS = 30;

export interface AlarmSettings {
  staleMs: number;
  retentionMs: number;
}

function positiveNumber(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value.trim() !== "" && Number.isFinite(n) && n > 0 ? n : fallback;
}

export function alarmSettings(env: { AGENT_STALE_SECONDS?: string; RETENTION_DAYS?: string }): AlarmSettings {
  return {
    staleMs: positiveNumber(env.AGENT_STALE_SECONDS, DEFAULT_STALE_SECONDS) * 1000,
    retentionMs: positiveNumber(env.RETENTION_DAYS, DEFAULT_RETENTION_DAYS) * 86_400_000,
  };
}

function earliestDeadline(sql: SqlStorage, s: AlarmSettings): number | null {
  const row = sql
    .exec<{ stale: number | null; jobs: number | null; deliveries: number | null }>(
      `SELECT
         (SELECT min(a.disconnected_at) FROM agents a
            WHERE a.connected = 0 AND a.disconnected_at IS NOT NULL
              AND EXISTS (SELECT 1 FROM jobs j WHERE j.agent = a.name AND j.status = 'running')) AS stale,
         (SELECT min(finished_at) FROM jobs WHERE finished_at IS NOT NULL) AS jobs,
         (SELECT min(created_at) FROM deliveries) AS deliveries`,
    )
    .one();
  const deadlines = [
    row.stale === null ? null : row.stale + s.staleMs,
    row.jobs === null ? null : row.jobs + s.retentionMs,
    row.deliveries === null ? null : row.deliveries + s.retentionMs,
  ].filter((d): d is number => d !== null);
  return deadlines.length > 0 ? Math.min(...deadlines) : null;
}

export async function scheduleAlarm(storage: DurableObjectStorage, s: AlarmSettings): Promise<void> {
  const deadline = earliestDeadline(storage.sql, s);
  const current = await storage.getAlarm();
  if (deadline === null) {
    if (current !== null) await storage.deleteAlarm();
  } else if (current !== deadline) {
    await storage.setAlarm(deadline);
  }
}

/** Applies every deadline that has passed. */
export function runDeadlines(storage: DurableObjectStorage, s: AlarmSettings, now: number): void {
  const sql = storage.sql;
  storage.transactionSync(() => {
    const stale = sql
      .exec<{ id: string; agent: string }>(
        `SELECT j.id, j.agent FROM jobs j JOIN agents a ON a.name = j.agent
         WHERE j.status = 'running' AND a.connected = 0 AND a.disconnected_at IS NOT NULL AND a.disconnected_at + ? <= ?`,
        s.staleMs,
        now,
      )
      .toArray();
    for (const job of stale) {
      finishJob(sql, job.id, "interrupted", now);
      console.log(`[job ${job.id}] interrupted: agent ${job.agent} has been disconnected for more than ${s.staleMs / 1000} s`);
    }
    const expired = sql.exec<{ id: string }>("SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at + ? <= ?", s.retentionMs, now).toArray();
    for (const { id } of expired) deleteJob(sql, id);
    sql.exec("DELETE FROM deliveries WHERE created_at + ? <= ?", s.retentionMs, now);
  });
}
