/**
 * The `jobs` table's SQL: creating, finishing (which settles its steps too) and describing jobs, and
 * the queries dispatch, hello, events and the deadlines make of it. A row's mapping: job-record.ts;
 * steps: steps.ts.
 */
import { assertNever } from "../../../shared/assert-never.ts";
import type { JobStatus, PipelineDecl, StepStatus } from "../../../shared/protocol.ts";
import { insertJobRow, type JobPlacement, type JobRow, stepStatusOf, toListItem } from "./job-record.ts";
import { insertDeclaredSteps, replaceDeclaredSteps } from "./steps.ts";
import { type DeliveryInput, isoOrNull, type JobListItem, type JobView, type StepView } from "../types.ts";
import { logInfo } from "../../console-lines.ts";

interface StepRow extends Record<string, SqlStorageValue> {
  name: string;
  status: string;
  exit_code: number | null;
  started_at: number | null;
  finished_at: number | null;
}

export function getJob(sql: SqlStorage, id: string): JobRow | undefined {
  return sql.exec<JobRow>("SELECT * FROM jobs WHERE id = ?", id).toArray()[0];
}

/** The ref and sha of the agent's newest job of this pipeline, if it has one. */
export function lastRefAndSha(sql: SqlStorage, agent: string, pipeline: string): { ref: string; sha: string } | undefined {
  return sql
    .exec<{ ref: string; sha: string }>("SELECT ref, sha FROM jobs WHERE agent = ? AND pipeline = ? ORDER BY created_at DESC, rowid DESC LIMIT 1", agent, pipeline)
    .toArray()[0];
}

/** Whether the agent's job-end is stored: every event it will send for the job is in. */
export function jobEndStored(job: JobRow): boolean {
  return job.end_seq !== null;
}

/** Creates a queued job with its declared steps pending. Superseding older jobs is the deployment's business (lifecycle.ts). */
export function createJob(
  sql: SqlStorage,
  agent: string,
  pipeline: PipelineDecl,
  d: DeliveryInput,
  now: number,
  placement: JobPlacement = { deploymentId: null, batch: 0, released: true },
): string {
  const id = crypto.randomUUID();
  insertJobRow(sql, { id, agent, pipeline, delivery: d, now, placement });
  insertDeclaredSteps(sql, id, pipeline);
  return id;
}

/** The pipeline's jobs not sent yet, on any agent (one query for a whole fleet): a newer deployment supersedes those of its hosts. */
export function unsentQueuedJobs(sql: SqlStorage, pipeline: string): { id: string; agent: string }[] {
  return sql
    .exec<{ id: string; agent: string }>("SELECT id, agent FROM jobs WHERE pipeline = ? AND status = 'queued' AND dispatched_at IS NULL ORDER BY created_at, rowid", pipeline)
    .toArray();
}

/** What a step still running when the job ended becomes. */
export function leftoverRunningStep(status: JobStatus): StepStatus {
  switch (status) {
    case "failed":
      return "failed";
    case "timed_out":
      return "timed_out";
    case "succeeded":
      return "succeeded";
    case "canceled":
    case "interrupted":
    case "superseded":
    case "skipped":
    case "queued":
    case "running":
      return "canceled";
    default:
      return assertNever(status, "job status");
  }
}

/** Who a job that just ended belonged to: its agent and deployment (null only outside one, in tests), and its place in the rollout. */
export interface EndedJob {
  id: string;
  agent: string;
  deploymentId: string | null;
  status: JobStatus;
  batch: number;
  /** Its batch had been released (a job of a later batch can end too: skipped, superseded). */
  released: boolean;
}

/**
 * The job's row at its end: final status + finishedAt; running steps end as fits the status, pending
 * ones are skipped. Only a queued or running job ends (null otherwise: an ended job stays as it
 * ended). Its deployment moves on in deployments/lifecycle.ts endJob, the one way a job ends.
 */
export function writeJobEnd(sql: SqlStorage, id: string, status: JobStatus, now: number): EndedJob | null {
  const row = sql
    .exec<{ agent: string; deployment_id: string | null; batch: number; released_at: number | null }>(
      "UPDATE jobs SET status = ?, finished_at = ? WHERE id = ? AND status IN ('queued', 'running') RETURNING agent, deployment_id, batch, released_at",
      status,
      now,
      id,
    )
    .toArray()[0];
  if (!row) return null;
  sql.exec(
    "UPDATE job_steps SET status = ?, finished_at = ? WHERE job_id = ? AND status = 'running'",
    leftoverRunningStep(status),
    now,
    id,
  );
  sql.exec("UPDATE job_steps SET status = 'skipped' WHERE job_id = ? AND status = 'pending'", id);
  return { id, agent: row.agent, deploymentId: row.deployment_id, status, batch: row.batch, released: row.released_at !== null };
}

/** A queued job about to be canceled before it ran: the request is recorded (then it ends `canceled`). */
export function markCancelRequested(sql: SqlStorage, id: string): void {
  sql.exec("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", id);
}

/** A running job is asked to stop; a repeated request keeps the first one's time (its grace). */
export function requestCancel(sql: SqlStorage, id: string, now: number): void {
  sql.exec("UPDATE jobs SET cancel_requested = 1, cancel_requested_at = COALESCE(cancel_requested_at, ?) WHERE id = ?", now, id);
}

/** The job runs (it was queued); returns its deployment's id when it started now, for the deployment to run too (lifecycle.ts). */
export function markJobRunning(sql: SqlStorage, id: string, now: number): { deploymentId: string | null } | null {
  const row = sql
    .exec<{ deployment_id: string | null }>(
      "UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?) WHERE id = ? AND status = 'queued' RETURNING deployment_id",
      now,
      id,
    )
    .toArray()[0];
  return row ? { deploymentId: row.deployment_id } : null;
}

export function listJobs(sql: SqlStorage, limit: number): JobListItem[] {
  return sql.exec<JobRow>("SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?", limit).toArray().map(toListItem);
}

export function jobView(sql: SqlStorage, target: string, id: string): JobView | null {
  const row = getJob(sql, id);
  if (!row) return null;
  const steps: StepView[] = sql
    .exec<StepRow>("SELECT name, status, exit_code, started_at, finished_at FROM job_steps WHERE job_id = ? ORDER BY position", id)
    .toArray()
    .map((s) => ({
      name: s.name,
      status: stepStatusOf(s.status),
      exitCode: s.exit_code,
      startedAt: isoOrNull(s.started_at),
      finishedAt: isoOrNull(s.finished_at),
    }));
  return { ...toListItem(row), target, steps, logBytes: row.log_bytes, logRows: row.log_rows };
}

export function deleteJob(sql: SqlStorage, id: string): void {
  sql.exec("DELETE FROM job_events WHERE job_id = ?", id);
  sql.exec("DELETE FROM job_notes WHERE job_id = ?", id);
  sql.exec("DELETE FROM job_steps WHERE job_id = ?", id);
  sql.exec("DELETE FROM jobs WHERE id = ?", id);
}

/** Whether the agent runs a job (as far as the DO knows). */
export function agentBusy(sql: SqlStorage, agent: string): boolean {
  return sql.exec("SELECT 1 FROM jobs WHERE agent = ? AND status = 'running' LIMIT 1", agent).toArray().length > 0;
}

export function runningJobIds(sql: SqlStorage, agent: string): string[] {
  return sql.exec<{ id: string }>("SELECT id FROM jobs WHERE agent = ? AND status = 'running'", agent).toArray().map((r) => r.id);
}

/** The agent's oldest queued job: of those already sent to it (`sent`), or of all whose batch is released. */
export function oldestQueuedJob(sql: SqlStorage, agent: string, which: "sent" | "any"): JobRow | undefined {
  const query =
    which === "sent"
      ? "SELECT * FROM jobs WHERE agent = ? AND status = 'queued' AND dispatched_at IS NOT NULL ORDER BY created_at, rowid LIMIT 1"
      : "SELECT * FROM jobs WHERE agent = ? AND status = 'queued' AND released_at IS NOT NULL ORDER BY created_at, rowid LIMIT 1";
  return sql.exec<JobRow>(query, agent).toArray()[0];
}

/** When the job was (last) sent: a job not accepted is sent again a stale period after it (SENT_NOT_ACCEPTED). */
export function markDispatched(sql: SqlStorage, id: string, now: number): void {
  sql.exec("UPDATE jobs SET dispatched_at = ? WHERE id = ?", now, id);
}

/**
 * A job sent to a connected agent that has not accepted it, while the agent runs nothing as far as the
 * DO knows: the agent did not take it (it could not write its id down — a full disk — and dropped it,
 * saying so in its own log), and a connection that stays up brings no hello to send it again. It is
 * sent again a stale period after it was last sent (the alarm: handlers/deadlines.ts), for as long as
 * that lasts. An agent that has it answers `accepted` again, so a copy never runs it twice. A constant
 * SQL fragment over `jobs j JOIN agents a`; the alarm's derivation (alarm.ts DISPATCH) finds the same rows.
 */
export const SENT_NOT_ACCEPTED = `j.status = 'queued' AND j.released_at IS NOT NULL AND j.dispatched_at IS NOT NULL AND a.connected = 1
  AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.agent = j.agent AND r.status = 'running')`;

/** Jobs SENT_NOT_ACCEPTED last sent `staleMs` or more ago: they are sent again. */
export function unacceptedJobs(sql: SqlStorage, staleMs: number, now: number): { id: string; agent: string }[] {
  return sql
    .exec<{ id: string; agent: string }>(
      `SELECT j.id, j.agent FROM jobs j JOIN agents a ON a.name = j.agent WHERE ${SENT_NOT_ACCEPTED} AND j.dispatched_at + ? <= ?`,
      staleMs,
      now,
    )
    .toArray();
}

/**
 * When a running job's time is up, before the grace: the agent ends its main steps by the declared
 * timeout and gives on_failure steps as long again. A constant SQL fragment over `jobs` columns.
 * Every running job has one: markJobRunning sets `started_at`, and a row without it (an older version
 * revived jobs without one) counts from when the job was sent, or else created.
 */
export const JOB_TIME_UP = "COALESCE(started_at, dispatched_at, created_at) + timeout_ms * (CASE WHEN has_on_failure = 1 THEN 2 ELSE 1 END)";

/** Running jobs whose agent has been disconnected for `staleMs` or more. */
export function staleRunningJobs(sql: SqlStorage, staleMs: number, now: number): { id: string; agent: string }[] {
  return sql
    .exec<{ id: string; agent: string }>(
      `SELECT j.id, j.agent FROM jobs j JOIN agents a ON a.name = j.agent
       WHERE j.status = 'running' AND a.connected = 0 AND a.disconnected_at IS NOT NULL AND a.disconnected_at + ? <= ?`,
      staleMs,
      now,
    )
    .toArray();
}

/**
 * When a job whose turn has come waits for an offline agent, in a deployment of several hosts (whose
 * rollout it holds up): since its batch was released or its agent left, whichever is later. A
 * single-host deployment waits for its agent as long as it takes. A constant SQL fragment over
 * `jobs j JOIN agents a`. "Several hosts" is another job in its deployment (EXISTS: one row of the
 * jobs_deployment index), not a count of them all: the alarm's derivation counted a 100-host deployment
 * once per released job.
 */
export const WAITING_SINCE = "max(j.released_at, COALESCE(a.disconnected_at, 0))";
export const WAITING_FOR_OFFLINE_AGENT = `j.status = 'queued' AND j.released_at IS NOT NULL AND a.connected = 0
  AND EXISTS (SELECT 1 FROM jobs k WHERE k.deployment_id = j.deployment_id AND k.id <> j.id)`;

/**
 * Jobs of several-host deployments whose turn came while their agent was offline, `staleMs` or more
 * ago (WAITING_SINCE). `dispatched_at` set: the job was sent and its `accepted` may have been lost
 * with the socket, so the agent may have run it.
 */
export function staleWaitingJobs(sql: SqlStorage, staleMs: number, now: number): { id: string; agent: string; dispatched_at: number | null }[] {
  return sql
    .exec<{ id: string; agent: string; dispatched_at: number | null }>(
      `SELECT j.id, j.agent, j.dispatched_at FROM jobs j JOIN agents a ON a.name = j.agent WHERE ${WAITING_FOR_OFFLINE_AGENT} AND ${WAITING_SINCE} + ? <= ?`,
      staleMs,
      now,
    )
    .toArray();
}

/** The agent's jobs it has not accepted, of pipelines it no longer declares. */
export function undeclaredQueuedJobs(sql: SqlStorage, agent: string, declared: readonly string[]): { id: string; pipeline: string }[] {
  const names = new Set(declared);
  return sql
    .exec<{ id: string; pipeline: string }>("SELECT id, pipeline FROM jobs WHERE agent = ? AND status = 'queued'", agent)
    .toArray()
    .filter((j) => !names.has(j.pipeline));
}

/** Running jobs past their time (JOB_TIME_UP) + `graceMs`. */
export function overdueRunningJobs(sql: SqlStorage, graceMs: number, now: number): { id: string; agent: string; timeout_ms: number; has_on_failure: number }[] {
  return sql
    .exec<{ id: string; agent: string; timeout_ms: number; has_on_failure: number }>(
      `SELECT id, agent, timeout_ms, has_on_failure FROM jobs WHERE status = 'running' AND ${JOB_TIME_UP} + ? <= ?`,
      graceMs,
      now,
    )
    .toArray();
}

/** Running jobs whose cancel was asked for `graceMs` or more ago. */
export function unconfirmedCancels(sql: SqlStorage, graceMs: number, now: number): { id: string; agent: string }[] {
  return sql
    .exec<{ id: string; agent: string }>(
      "SELECT id, agent FROM jobs WHERE status = 'running' AND cancel_requested_at IS NOT NULL AND cancel_requested_at + ? <= ?",
      graceMs,
      now,
    )
    .toArray();
}

/** Jobs finished `retentionMs` or more ago. */
export function expiredJobIds(sql: SqlStorage, retentionMs: number, now: number): string[] {
  return sql.exec<{ id: string }>("SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at + ? <= ?", retentionMs, now).toArray().map((r) => r.id);
}

/** The highest contiguous seq stored (or refused) for the job: what the agent is acked. */
export function setAckedSeq(sql: SqlStorage, id: string, seq: number): void {
  sql.exec("UPDATE jobs SET acked_seq = ? WHERE id = ?", seq, id);
}

/** The seq of the agent's job-end: nothing after it is stored. */
export function setEndSeq(sql: SqlStorage, id: string, seq: number): void {
  sql.exec("UPDATE jobs SET end_seq = ? WHERE id = ?", seq, id);
}

/** Output bytes stored, or past the caps dropped (the log says how many bytes, in how many events). */
export function countOutput(sql: SqlStorage, id: string, bytes: number, how: "stored" | "dropped"): void {
  if (how === "stored") sql.exec("UPDATE jobs SET output_bytes = output_bytes + ? WHERE id = ?", bytes, id);
  else sql.exec("UPDATE jobs SET output_dropped = output_dropped + ?, output_dropped_events = output_dropped_events + 1 WHERE id = ?", bytes, id);
}

/** A step-start or step-end stored (events.ts bounds them by the job's declared steps). */
export function countStepEvent(sql: SqlStorage, id: string): void {
  sql.exec("UPDATE jobs SET step_events = step_events + 1 WHERE id = ?", id);
}

/** The agent's queued and running jobs, oldest first. */
export function unfinishedJobsOf(sql: SqlStorage, agent: string): { id: string; status: string }[] {
  return sql.exec<{ id: string; status: string }>("SELECT id, status FROM jobs WHERE agent = ? AND status IN ('queued', 'running') ORDER BY created_at", agent).toArray();
}

/**
 * A queued job copied its pipeline's declaration when it was created. When the agent's hello declares
 * that pipeline anew (its config changed), the agent's jobs that have not started yet take the new
 * steps and timeout: they will run with the new config, and its steps must not be refused as unknown.
 */
export function refreshQueuedJobs(sql: SqlStorage, agent: string, pipelines: PipelineDecl[]): void {
  for (const p of pipelines) {
    const jobs = sql
      .exec<{ id: string }>("SELECT id FROM jobs WHERE agent = ? AND pipeline = ? AND status = 'queued' AND started_at IS NULL", agent, p.name)
      .toArray();
    for (const { id } of jobs) {
      sql.exec("UPDATE jobs SET timeout_ms = ?, has_on_failure = ? WHERE id = ?", p.timeoutMs, p.onFailure.length > 0 ? 1 : 0, id);
      if (replaceDeclaredSteps(sql, id, p)) logInfo(`[job ${id}] steps refreshed from ${agent}'s new declaration of ${p.name}`);
    }
  }
}

/** The jobs of a deployment, in rollout order: what its rollout is settled from (deployments.ts). */
export type MemberRow = Pick<JobRow, "id" | "agent" | "batch" | "status" | "dispatched_at" | "released_at" | "started_at">;

export function deploymentMembers(sql: SqlStorage, deploymentId: string): MemberRow[] {
  return sql
    .exec<MemberRow>("SELECT id, agent, batch, status, dispatched_at, released_at, started_at FROM jobs WHERE deployment_id = ? ORDER BY batch, rowid", deploymentId)
    .toArray();
}

/** Whether a job of this deployment's batch is still queued or running (the jobs_deployment index: one batch's rows). */
export function batchUnfinished(sql: SqlStorage, deploymentId: string, batch: number): boolean {
  return sql.exec("SELECT 1 FROM jobs WHERE deployment_id = ? AND batch = ? AND status IN ('queued', 'running') LIMIT 1", deploymentId, batch).toArray().length > 0;
}

/** A deployment's next batch may be sent from now. */
export function releaseBatch(sql: SqlStorage, deploymentId: string, batch: number, now: number): void {
  sql.exec("UPDATE jobs SET released_at = ? WHERE deployment_id = ? AND batch = ? AND released_at IS NULL", now, deploymentId, batch);
}

/** A deployment's queued and running jobs. */
export function unfinishedJobsOfDeployment(sql: SqlStorage, deploymentId: string): { id: string; agent: string; status: string }[] {
  return sql.exec<{ id: string; agent: string; status: string }>("SELECT id, agent, status FROM jobs WHERE deployment_id = ? AND status IN ('queued', 'running')", deploymentId).toArray();
}
