/**
 * The DO's deadline settings from the worker's vars (wrangler.toml, .dev.vars): how long an agent may
 * stay away, how long finished records are kept, the graces after a job's timeout and after a cancel.
 * Read by the alarm (alarm.ts), the deadlines it runs (handlers/deadlines.ts) and the webhook route (retention).
 */
import { positiveNumber } from "../env-number.ts";

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

export function alarmSettings(env: AlarmVars): AlarmSettings {
  return {
    staleMs: positiveNumber(env.AGENT_STALE_SECONDS, DEFAULT_STALE_SECONDS) * 1000,
    retentionMs: positiveNumber(env.RETENTION_DAYS, DEFAULT_RETENTION_DAYS) * 86_400_000,
    jobGraceMs: positiveNumber(env.JOB_GRACE_SECONDS, DEFAULT_JOB_GRACE_SECONDS) * 1000,
    cancelGraceMs: positiveNumber(env.CANCEL_GRACE_SECONDS, DEFAULT_CANCEL_GRACE_SECONDS) * 1000,
  };
}
