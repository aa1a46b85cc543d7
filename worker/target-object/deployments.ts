/**
 * The `deployments` table: one per matched pipeline per push (or POST …/deploy), with one job per
 * agent declaring the pipeline. A deployment's rollout (rollout-plan.ts) puts its jobs in batches;
 * a job is sent only once its batch is released, and the next batch is released when every job of
 * the current one has ended. A failed, timed-out or interrupted job halts the rollout (when it
 * halts on failure), and a canceled one always does: the jobs not sent yet end `skipped`.
 *
 * Everything moves in finishJob: every way a job ends goes through it, in the same transaction as
 * the end itself, so a rollout can never be left between two batches by an eviction or a restart.
 * Sending the released jobs is the DO shell's business (dispatchReleased, after each entry point).
 */
import { FINAL_JOB_STATUSES, type JobStatus, type PipelineDecl } from "../../shared/protocol.ts";
import { type JobRow, jobStatusOf, storedStatus } from "./job-record.ts";
import { Reader } from "../../shared/reader.ts";
import { createJob, endJobRow, jobView, unsentQueuedJobIds } from "./jobs.ts";
import { addNote } from "./notes.ts";
import { channelStateText, queueReports, readReportSetup, reportViews } from "./report-outbox.ts";
import { planRollout, type RolloutPlan } from "./rollout-plan.ts";
import { DEPLOYMENT_STATUSES, type DeploymentStatus, FINAL_DEPLOYMENT_STATUSES } from "./types.ts";
import { type DeliveryInput, type DeploymentJobView, type DeploymentListItem, type DeploymentSummary, type DeploymentView, isoOrNull, type JobSummary } from "./types.ts";
import { logError, logInfo, logWarn } from "../console-lines.ts";
import { logText } from "../log-text.ts";
import { chooseEnvironment, describeDisagreements, environmentView } from "./environment-choice.ts";
import type { DeploymentRow } from "./deployment-row.ts";


/** Job statuses that fail a deployment (and halt its rollout when it halts on failure). */
const FAILING: readonly JobStatus[] = ["failed", "timed_out", "interrupted"];

export function deploymentStatusOf(value: string): DeploymentStatus {
  return storedStatus(DEPLOYMENT_STATUSES, value, "deployment");
}

export function isFinalDeployment(status: string): boolean {
  return FINAL_DEPLOYMENT_STATUSES.includes(deploymentStatusOf(status));
}

function isFinalJob(status: string): boolean {
  return FINAL_JOB_STATUSES.includes(jobStatusOf(status));
}

export function getDeployment(sql: SqlStorage, id: string): DeploymentRow | undefined {
  return sql.exec<DeploymentRow>("SELECT * FROM deployments WHERE id = ?", id).toArray()[0];
}

/** One host of a new deployment: the agent and its own declaration of the pipeline. */
export interface NewMember {
  agent: string;
  pipeline: PipelineDecl;
}

export interface NewDeployment {
  members: NewMember[];
  fields: DeliveryInput;
  /** The head commit's first line ("" when there is none). */
  message: string;
  now: number;
}

/**
 * Call inside a transaction. Supersedes the older jobs of this pipeline not sent yet on the same
 * agents, then creates the deployment and its jobs in rollout order, the first batch released.
 */
export function createDeployment(sql: SqlStorage, d: NewDeployment): { deployment: DeploymentSummary; jobs: JobSummary[] } {
  const pipeline = d.members[0]!.pipeline.name;
  for (const { agent } of d.members) {
    for (const old of unsentQueuedJobIds(sql, agent, pipeline)) {
      finishJob(sql, old, "superseded", d.now);
      logInfo(`[job ${old}] superseded by a newer ${d.fields.event} (delivery ${d.fields.delivery})`);
    }
  }
  const { plan, order, batchOf } = planRollout(d.members.map((m) => ({ agent: m.agent, rollout: m.pipeline.rollout })));
  const id = crypto.randomUUID();
  const f = d.fields;
  const declOf = new Map(d.members.map((m) => [m.agent, m.pipeline]));
  const env = chooseEnvironment(order.map((agent) => ({ agent, pipeline: declOf.get(agent)! })));
  sql.exec(
    `INSERT INTO deployments (id, pipeline, delivery, hook_id, event, repo, ref, sha, before, pusher, message, status, rollout, batch_hosts, halt_on_failure,
                              created_at, environment, environment_url, production_environment, transient_environment, environment_disagreements)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    id, pipeline, f.delivery, f.hookId, f.event, f.repo, f.ref, f.sha, f.before, f.pusher, d.message,
    JSON.stringify(plan), plan.batchHosts, plan.haltOnFailure ? 1 : 0, d.now, env.environment, env.environmentUrl,
    env.production === null ? null : env.production ? 1 : 0, env.transient ? 1 : 0,
    env.disagreements.length > 0 ? JSON.stringify(env.disagreements) : null,
  );
  if (env.disagreements.length > 0) {
    logWarn(`[deployment ${id}] its hosts disagree on GitHub's ${logText(describeDisagreements(env.disagreements))}: the target's defaults are used for those`);
  }
  const jobs = order.map((agent): JobSummary => {
    const batch = batchOf(agent);
    const jobId = createJob(sql, agent, declOf.get(agent)!, f, d.now, { deploymentId: id, batch, released: batch === 0 });
    return { id: jobId, agent, pipeline, status: "queued" };
  });
  queueReports(sql, id, "created", d.now);
  return { deployment: { id, pipeline, jobs: jobs.map((j) => j.id) }, jobs };
}

/** How the job's deployment ended, or null while it has not (or the job has none). */
export function settledDeploymentStatus(sql: SqlStorage, jobId: string): DeploymentStatus | null {
  const row = sql.exec<{ status: string }>("SELECT d.status FROM deployments d JOIN jobs j ON j.deployment_id = d.id WHERE j.id = ?", jobId).toArray()[0];
  return row && isFinalDeployment(row.status) ? deploymentStatusOf(row.status) : null;
}

/** Ends a job (its row: jobs.ts endJobRow) and moves its deployment on. Every way a job ends comes here. */
export function finishJob(sql: SqlStorage, id: string, status: JobStatus, now: number): void {
  endJobRow(sql, id, status, now);
  const row = sql.exec<{ deployment_id: string | null }>("SELECT deployment_id FROM jobs WHERE id = ?", id).toArray()[0];
  if (row?.deployment_id) settleDeployment(sql, row.deployment_id, now);
}

type MemberRow = Pick<JobRow, "id" | "agent" | "batch" | "status" | "dispatched_at" | "released_at" | "started_at">;

function members(sql: SqlStorage, deploymentId: string): MemberRow[] {
  return sql
    .exec<MemberRow>("SELECT id, agent, batch, status, dispatched_at, released_at, started_at FROM jobs WHERE deployment_id = ? ORDER BY batch, rowid", deploymentId)
    .toArray();
}

/** The job whose end halts the rollout, if one has: canceled always, failing when the deployment halts on failure. */
function haltingJob(dep: DeploymentRow, jobs: MemberRow[]): MemberRow | undefined {
  return jobs.find((j) => j.status === "canceled" || (dep.halt_on_failure === 1 && FAILING.includes(jobStatusOf(j.status))));
}

/** What a deployment whose jobs have all ended ended as. */
function finalStatus(dep: DeploymentRow, jobs: MemberRow[]): DeploymentStatus {
  const has = (...statuses: JobStatus[]) => jobs.some((j) => statuses.includes(jobStatusOf(j.status)));
  if (dep.cancel_requested === 1) return "canceled";
  if (has(...FAILING)) return "failed";
  if (has("canceled")) return "canceled";
  if (has("superseded")) return "superseded";
  // Every host deployed, or (skipped) stopped declaring the pipeline; none at all deployed is no success.
  return has("succeeded") ? "succeeded" : "canceled";
}

/**
 * Moves a deployment on after one of its jobs ended: halts (the jobs not sent yet end `skipped`),
 * releases the next batch once every job of the current one has ended, or records how it ended.
 * Idempotent; a deployment already ended stays as it is.
 */
export function settleDeployment(sql: SqlStorage, id: string, now: number): void {
  const dep = getDeployment(sql, id);
  if (!dep || isFinalDeployment(dep.status)) return;
  // Each pass ends or releases at least one job, so this ends; the bound is a guard, not a limit.
  for (let pass = 0; pass <= 1000; pass++) {
    const jobs = members(sql, id);
    if (jobs.length === 0) return;
    if (jobs.every((j) => isFinalJob(j.status))) {
      const started = jobs.map((j) => j.started_at).filter((t): t is number => t !== null);
      sql.exec(
        "UPDATE deployments SET status = ?, finished_at = ?, started_at = COALESCE(started_at, ?) WHERE id = ?",
        finalStatus(dep, jobs),
        now,
        started.length > 0 ? Math.min(...started) : null,
        id,
      );
      queueReports(sql, id, "ended", now);
      return;
    }
    // Canceled: its queued jobs ended at the request; running ones end on their own.
    if (dep.cancel_requested === 1) return;
    const halting = haltingJob(dep, jobs);
    if (halting) {
      // Jobs already sent (their batch is running) are the agent's now; the rest never start.
      const unsent = jobs.filter((j) => j.status === "queued" && j.dispatched_at === null);
      if (unsent.length === 0) return;
      for (const j of unsent) {
        endJobRow(sql, j.id, "skipped", now);
        addNote(sql, j.id, `the rollout halted: ${halting.agent}'s job ${halting.id} ended ${halting.status}; nothing ran on ${j.agent}`, now);
      }
      continue;
    }
    const released = jobs.filter((j) => j.released_at !== null).map((j) => j.batch);
    const open = released.length > 0 ? Math.max(...released) : -1;
    if (jobs.some((j) => j.batch <= open && !isFinalJob(j.status))) return;
    const later = jobs.filter((j) => j.batch > open).map((j) => j.batch);
    if (later.length === 0) return;
    sql.exec("UPDATE jobs SET released_at = ? WHERE deployment_id = ? AND batch = ? AND released_at IS NULL", now, id, Math.min(...later));
  }
  logError(`[deployment ${id}] settle did not converge`);
}

/** The rollout plan we stored as JSON; still read back through a Reader, never cast. */
function storedPlan(row: DeploymentRow): RolloutPlan {
  const r = new Reader(JSON.parse(row.rollout), "rollout");
  const batch = r.field("batch");
  return {
    batch: typeof batch.value === "number" ? batch.int() : batch.string(),
    hosts: r.field("hosts").int(),
    batchHosts: r.field("batchHosts").int(),
    batches: r.field("batches").int(),
    haltOnFailure: r.field("haltOnFailure").boolean(),
    note: r.field("note").optionalString() ?? null,
  };
}

function toDeploymentItem(target: string, row: DeploymentRow): DeploymentListItem {
  return {
    id: row.id,
    target,
    pipeline: row.pipeline,
    repo: row.repo,
    ref: row.ref,
    sha: row.sha,
    before: row.before,
    pusher: row.pusher,
    message: row.message,
    delivery: row.delivery,
    event: row.event,
    status: deploymentStatusOf(row.status),
    rollout: storedPlan(row),
    createdAt: isoOrNull(row.created_at),
    startedAt: isoOrNull(row.started_at),
    finishedAt: isoOrNull(row.finished_at),
  };
}

export function listDeployments(sql: SqlStorage, target: string, limit: number): DeploymentListItem[] {
  return sql
    .exec<DeploymentRow>("SELECT * FROM deployments ORDER BY created_at DESC, rowid DESC LIMIT ?", limit)
    .toArray()
    .map((row) => toDeploymentItem(target, row));
}

/** The deployment with its jobs in rollout order, each with its steps; null if there is none. */
export function deploymentView(sql: SqlStorage, target: string, id: string): DeploymentView | null {
  const row = getDeployment(sql, id);
  if (!row) return null;
  const jobs = sql
    .exec<{ id: string; batch: number }>("SELECT id, batch FROM jobs WHERE deployment_id = ? ORDER BY batch, rowid", id)
    .toArray()
    .flatMap(({ id: jobId, batch }): DeploymentJobView[] => {
      const job = jobView(sql, target, jobId);
      if (!job) return [];
      const { id: _id, agent, status, createdAt, startedAt, finishedAt, steps } = job;
      return [{ id: jobId, agent, batch: batch + 1, status, createdAt, startedAt, finishedAt, steps }];
    });
  const setup = readReportSetup(sql);
  return {
    ...toDeploymentItem(target, row), jobs, environment: environmentView(row, target), reports: reportViews(sql, id),
    reporting: { github: channelStateText(setup.github), notifications: channelStateText(setup.notify) },
  };
}

/** Finished deployments older than `retentionMs` go (their jobs go by their own finish times, which are no later). */
export function deleteExpiredDeployments(sql: SqlStorage, retentionMs: number, now: number): void {
  sql.exec("DELETE FROM reports WHERE deployment_id IN (SELECT id FROM deployments WHERE finished_at IS NOT NULL AND finished_at + ? <= ?)", retentionMs, now);
  sql.exec("DELETE FROM deployments WHERE finished_at IS NOT NULL AND finished_at + ? <= ?", retentionMs, now);
}
