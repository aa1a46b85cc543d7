/**
 * The DO's one alarm, derived from the earliest deadline stored in SQL: a disconnected agent's
 * running job going stale, a look at whether a connected agent's socket still exists while it runs a
 * job (a worker restart drops sockets without a close event), a job whose rollout turn came while its
 * agent was offline, a running job past its timeout, a cancel the agent has not confirmed,
 * retention of finished jobs, deployments and delivery records, and pruning agents unseen that long. deadlines.ts
 * applies them.
 */
import { UNSEEN_AGENTS } from "./agent-tokens.ts";
import { JOB_TIME_UP, WAITING_FOR_OFFLINE_AGENT, WAITING_SINCE } from "./jobs.ts";

const DEFAULT_STALE_SECONDS = 300;
const DEFAULT_RETENTION_DAYS = 30;
const DEFAULT_JOB_GRACE_SECONDS = 120;
const DEFAULT_CANCEL_GRACE_SECONDS = 60;

export interface AlarmSettings {
  staleMs: number;
  retentionMs: number;
  /** Past a running job's own timeout, how long the agent still has to report its end. */
  jobGraceMs: number;
  /** How long the agent has to confirm a cancel (with the job's end). */
  cancelGraceMs: number;
}

export interface AlarmVars {
  AGENT_STALE_SECONDS?: string;
  RETENTION_DAYS?: string;
  JOB_GRACE_SECONDS?: string;
  CANCEL_GRACE_SECONDS?: string;
}

function positiveNumber(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value.trim() !== "" && Number.isFinite(n) && n > 0 ? n : fallback;
}

export function alarmSettings(env: AlarmVars): AlarmSettings {
  return {
    staleMs: positiveNumber(env.AGENT_STALE_SECONDS, DEFAULT_STALE_SECONDS) * 1000,
    retentionMs: positiveNumber(env.RETENTION_DAYS, DEFAULT_RETENTION_DAYS) * 86_400_000,
    jobGraceMs: positiveNumber(env.JOB_GRACE_SECONDS, DEFAULT_JOB_GRACE_SECONDS) * 1000,
    cancelGraceMs: positiveNumber(env.CANCEL_GRACE_SECONDS, DEFAULT_CANCEL_GRACE_SECONDS) * 1000,
  };
}

function earliestDeadline(sql: SqlStorage, s: AlarmSettings): number | null {
  const row = sql
    .exec<{
      stale: number | null;
      waiting: number | null;
      check_socket: number | null;
      timeout: number | null;
      cancel: number | null;
      jobs: number | null;
      deliveries: number | null;
      deployments: number | null;
      unseen: number | null;
    }>(
      `SELECT
         (SELECT min(a.disconnected_at) FROM agents a
            WHERE a.connected = 0 AND a.disconnected_at IS NOT NULL
              AND EXISTS (SELECT 1 FROM jobs j WHERE j.agent = a.name AND j.status = 'running')) AS stale,
         (SELECT min(${WAITING_SINCE}) FROM jobs j JOIN agents a ON a.name = j.agent WHERE ${WAITING_FOR_OFFLINE_AGENT}) AS waiting,
         (SELECT min(COALESCE(a.last_seen_at, a.connected_at)) FROM agents a
            WHERE a.connected = 1
              AND EXISTS (SELECT 1 FROM jobs j WHERE j.agent = a.name AND j.status = 'running')) AS check_socket,
         (SELECT min(${JOB_TIME_UP}) FROM jobs WHERE status = 'running' AND started_at IS NOT NULL) AS timeout,
         (SELECT min(cancel_requested_at) FROM jobs WHERE status = 'running' AND cancel_requested_at IS NOT NULL) AS cancel,
         (SELECT min(finished_at) FROM jobs WHERE finished_at IS NOT NULL) AS jobs,
         (SELECT min(created_at) FROM deliveries) AS deliveries,
         (SELECT min(finished_at) FROM deployments WHERE finished_at IS NOT NULL) AS deployments,
         (SELECT min(seen) FROM (${UNSEEN_AGENTS})) AS unseen`,
    )
    .one();
  const deadlines = [
    row.stale === null ? null : row.stale + s.staleMs,
    // A job whose turn came while its agent was offline holds up its rollout: it ends interrupted.
    row.waiting === null ? null : row.waiting + s.staleMs,
    // While a connected agent runs a job, look at least once a stale period whether its socket still
    // exists (a worker restart drops sockets without a close event; the alarm reconciles them).
    row.check_socket === null ? null : row.check_socket + s.staleMs,
    row.timeout === null ? null : row.timeout + s.jobGraceMs,
    row.cancel === null ? null : row.cancel + s.cancelGraceMs,
    row.jobs === null ? null : row.jobs + s.retentionMs,
    row.deliveries === null ? null : row.deliveries + s.retentionMs,
    row.deployments === null ? null : row.deployments + s.retentionMs,
    row.unseen === null ? null : row.unseen + s.retentionMs,
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
