/**
 * The `deployments` table: one per matched pipeline per push (or POST …/deploy), with one job per
 * agent declaring the pipeline. A deployment's rollout (rollout-plan.ts) puts its jobs in batches;
 * a job is sent only once its batch is released, and the next batch is released when every job of
 * the current one has ended. A failed, timed-out or interrupted job halts the rollout (when it
 * halts on failure), and a canceled one always does: the jobs not sent yet end `skipped`.
 *
 * A deployment moves only when one of its jobs starts or ends (lifecycle.ts, the one way either
 * happens), in the same transaction, so a rollout can never be left between two batches by an
 * eviction or a restart. Each change is handed to reports/ here. Sending the released jobs is the DO
 * shell's business (target.ts), after each entry point.
 */
import { FINAL_JOB_STATUSES, type JobStatus, type PipelineDecl } from "../../../shared/protocol.ts";
import { jobStatusOf, storedStatus } from "../jobs/job-record.ts";
import { Reader } from "../../../shared/reader.ts";
import { batchUnfinished, deploymentMembers, type EndedJob, jobView, type MemberRow, releaseBatch, writeJobEnd } from "../jobs/jobs.ts";
import { addNote } from "../jobs/notes.ts";
import { channelStateText, deleteReportsOf, queueReports, readReportSetup, reportingOn, reportViews } from "../reports/report-outbox.ts";
import { planRollout } from "./rollout-plan.ts";
import { DEPLOYMENT_STATUSES, type DeploymentStatus, FINAL_DEPLOYMENT_STATUSES, type RolloutPlan } from "../types.ts";
import { type DeliveryInput, type DeploymentJobView, type DeploymentListItem, type DeploymentView, isoOrNull } from "../types.ts";
import { logError, logInfo, logWarn } from "../../console-lines.ts";
import { deleteGatesOf, gateOutcome, gateViews } from "./gates.ts";
import type { DeploymentChange } from "../reports/report-record.ts";
import { logText } from "../../log-text.ts";
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
  /** A manual deploy: the admin who asked is its approval (gates.ts). */
  approvedBy?: string;
}

/**
 * Call inside a transaction (lifecycle.ts createDeployment): the deployment's row, queued, with its
 * rollout planned and GitHub's environment chosen. Returns its id, its hosts in rollout order and each
 * one's batch; the jobs are the caller's to create.
 */
export function insertDeployment(
  sql: SqlStorage,
  d: NewDeployment,
  waitUntil: number | null,
): { id: string; order: string[]; batchOf: (agent: string) => number } {
  const pipeline = d.members[0]!.pipeline.name;
  const { plan, order, batchOf } = planRollout(d.members.map((m) => ({ agent: m.agent, rollout: m.pipeline.rollout })));
  const id = crypto.randomUUID();
  const f = d.fields;
  const declOf = new Map(d.members.map((m) => [m.agent, m.pipeline]));
  const env = chooseEnvironment(order.map((agent) => ({ agent, pipeline: declOf.get(agent)! })));
  sql.exec(
    `INSERT INTO deployments (id, pipeline, delivery, hook_id, event, repo, ref, sha, before, pusher, message, status, rollout, batch_hosts, halt_on_failure,
                              created_at, environment, environment_url, production_environment, transient_environment, environment_disagreements, wait_until)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    id, pipeline, f.delivery, f.hookId, f.event, f.repo, f.ref, f.sha, f.before, f.pusher, d.message, waitUntil === null ? "queued" : "waiting",
    JSON.stringify(plan), plan.batchHosts, plan.haltOnFailure ? 1 : 0, d.now, env.environment, env.environmentUrl,
    env.production === null ? null : env.production ? 1 : 0, env.transient ? 1 : 0,
    env.disagreements.length > 0 ? JSON.stringify(env.disagreements) : null, waitUntil,
  );
  if (env.disagreements.length > 0) {
    logWarn(`[deployment ${id}] its hosts disagree on GitHub's ${logText(describeDisagreements(env.disagreements))}: the target's defaults are used for those`);
  }
  return { id, order, batchOf };
}

/** Hands the deployment's change to reports/ (in the transaction that made it): what GitHub and the chats will be told. */
export function reportChange(sql: SqlStorage, id: string, change: DeploymentChange, now: number): void {
  const setup = readReportSetup(sql);
  if (!reportingOn(setup)) return;
  const row = getDeployment(sql, id);
  if (!row) return;
  const env = environmentView(row, setup.target);
  const reason = row.status === "blocked" ? row.blocked_reason : row.status === "waiting" ? `waiting for ${change === "approval" ? "approval" : waitingFor(sql, id)}` : null;
  queueReports(sql, setup, { ...row, reason, githubEnvironment: { name: env.name, production: env.production, transient: env.transient } }, change, now);
}

/** What a waiting deployment waits for, as GitHub's status says it. */
function waitingFor(sql: SqlStorage, id: string): string {
  const outcome = gateOutcome(sql, id);
  return outcome.kind === "waiting" ? outcome.for : "gates";
}

/** Its gates all passed: the deployment is queued and its first batch released (settle). `told`: reported as a change (not when it is new). */
export function openDeployment(sql: SqlStorage, id: string, now: number, opts: { told: boolean } = { told: true }): void {
  if (sql.exec("UPDATE deployments SET status = 'queued', wait_until = NULL WHERE id = ? AND status = 'waiting'", id).rowsWritten === 0) return;
  if (opts.told) reportChange(sql, id, "opened", now);
  settleDeployment(sql, id, now);
}

/**
 * A gate failed, was rejected or timed out: the deployment ends `blocked` with the reason, and its jobs
 * (none was ever sent) end `skipped`, each with a note. Its own end, as a halt is (no second settle).
 */
export function blockDeployment(sql: SqlStorage, id: string, reason: string, now: number): void {
  const blocked = sql.exec(
    "UPDATE deployments SET status = 'blocked', blocked_reason = ?, finished_at = ?, wait_until = NULL WHERE id = ? AND status = 'waiting'",
    reason,
    now,
    id,
  ).rowsWritten;
  if (blocked === 0) return;
  for (const j of deploymentMembers(sql, id)) {
    if (!writeJobEnd(sql, j.id, "skipped", now)) continue;
    addNote(sql, j.id, `the deployment was blocked: ${reason}; nothing ran on ${j.agent}`, now);
  }
  logInfo(`[deployment ${id}] blocked: ${logText(reason)}`);
  reportChange(sql, id, "ended", now);
}

/** Whether any of these deployments waits at its gates. */
export function anyWaiting(sql: SqlStorage, ids: readonly string[]): boolean {
  return ids.some((id) => sql.exec("SELECT 1 FROM deployments WHERE id = ? AND status = 'waiting'", id).toArray().length > 0);
}

/** Waiting deployments past their gate timeout. */
export function expiredWaits(sql: SqlStorage, now: number): { id: string; waitedMs: number }[] {
  return sql
    .exec<{ id: string; created_at: number; wait_until: number }>("SELECT id, created_at, wait_until FROM deployments WHERE status = 'waiting' AND wait_until <= ?", now)
    .toArray()
    .map((r) => ({ id: r.id, waitedMs: r.wait_until - r.created_at }));
}

/** Its first job started: the deployment runs (once); true when it did now. */
export function deploymentStarted(sql: SqlStorage, id: string, now: number): boolean {
  const started = sql.exec("UPDATE deployments SET status = 'running', started_at = COALESCE(started_at, ?) WHERE id = ? AND status = 'queued' RETURNING id", now, id).toArray()[0];
  if (started) reportChange(sql, id, "running", now);
  return started !== undefined;
}

/** A cancel was asked for: no later batch is released, and it ends `canceled` (cancelDeployment in handlers/). */
export function markDeploymentCancelRequested(sql: SqlStorage, id: string): void {
  sql.exec("UPDATE deployments SET cancel_requested = 1 WHERE id = ?", id);
}

/** How the job's deployment ended, or null while it has not (or the job has none). */
export function settledDeploymentStatus(sql: SqlStorage, jobId: string): DeploymentStatus | null {
  const row = sql.exec<{ status: string }>("SELECT d.status FROM deployments d JOIN jobs j ON j.deployment_id = d.id WHERE j.id = ?", jobId).toArray()[0];
  return row && isFinalDeployment(row.status) ? deploymentStatusOf(row.status) : null;
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
 * After one of its jobs ended (lifecycle.ts endJob): settles its deployment, or finds at one index
 * lookup that there is nothing to settle — and says which (true: settled; false: it stayed as it was).
 * A job of a released batch that ends without halting anything (not canceled, not failing) while
 * another job of its batch is still queued or running leaves the deployment as it was: nothing ends,
 * no batch is released (the open batch is not done), nothing is skipped (a halting job's own end
 * skipped every job not sent yet, and none is released after it). settleDeployment would read every
 * job of the deployment to find that out: a 100-host rollout read 100 rows on each of a batch's ten
 * ends. Only a batch's last end (or a halting one) settles in full.
 */
export function settleAfterJobEnd(sql: SqlStorage, job: EndedJob & { deploymentId: string }, now: number): boolean {
  const halts = job.status === "canceled" || FAILING.includes(job.status);
  if (job.released && !halts && batchUnfinished(sql, job.deploymentId, job.batch)) return false;
  settleDeployment(sql, job.deploymentId, now);
  return true;
}

/**
 * Moves a deployment on after one of its jobs ended (lifecycle.ts endJob, via settleAfterJobEnd): halts (the jobs not sent yet end `skipped`),
 * releases the next batch once every job of the current one has ended, or records how it ended.
 * Idempotent; a deployment already ended stays as it is.
 */
export function settleDeployment(sql: SqlStorage, id: string, now: number): void {
  const dep = getDeployment(sql, id);
  if (!dep || isFinalDeployment(dep.status)) return;
  // Each pass ends or releases at least one job, so this ends; the bound is a guard, not a limit.
  for (let pass = 0; pass <= 1000; pass++) {
    const jobs = deploymentMembers(sql, id);
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
      reportChange(sql, id, "ended", now);
      return;
    }
    // Canceled: its queued jobs ended at the request; running ones end on their own.
    if (dep.cancel_requested === 1) return;
    // Waiting at its gates: no batch is released until they open (openDeployment).
    if (dep.status === "waiting") return;
    const halting = haltingJob(dep, jobs);
    if (halting) {
      // Jobs already sent (their batch is running) are the agent's now; the rest never start.
      const unsent = jobs.filter((j) => j.status === "queued" && j.dispatched_at === null);
      if (unsent.length === 0) return;
      for (const j of unsent) {
        // The deployment's own halt: its row alone (this pass settles the deployment; no second settle).
        writeJobEnd(sql, j.id, "skipped", now);
        addNote(sql, j.id, `the rollout halted: ${halting.agent}'s job ${halting.id} ended ${halting.status}; nothing ran on ${j.agent}`, now);
      }
      continue;
    }
    const released = jobs.filter((j) => j.released_at !== null).map((j) => j.batch);
    const open = released.length > 0 ? Math.max(...released) : -1;
    if (jobs.some((j) => j.batch <= open && !isFinalJob(j.status))) return;
    const later = jobs.filter((j) => j.batch > open).map((j) => j.batch);
    if (later.length === 0) return;
    const next = Math.min(...later);
    releaseBatch(sql, id, next, now);
    // A batch with a job to run holds the rollout until its own last end; one whose jobs all ended
    // already (skipped while it waited) is settled by the next pass.
    if (batchUnfinished(sql, id, next)) return;
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
    blockedReason: row.blocked_reason,
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
    ...toDeploymentItem(target, row), jobs, gates: gateViews(sql, id), waitingUntil: row.status === "waiting" ? isoOrNull(row.wait_until) : null,
    environment: environmentView(row, target), reports: reportViews(sql, id),
    reporting: { github: channelStateText(setup.github), notifications: channelStateText(setup.notify) },
  };
}

/** Finished deployments older than `retentionMs` go, with their reports (their jobs go by their own finish times, which are no later). */
export function deleteExpiredDeployments(sql: SqlStorage, retentionMs: number, now: number): void {
  const expired = sql.exec<{ id: string }>("SELECT id FROM deployments WHERE finished_at IS NOT NULL AND finished_at + ? <= ?", retentionMs, now).toArray();
  for (const { id } of expired) {
    deleteReportsOf(sql, id);
    deleteGatesOf(sql, id);
    sql.exec("DELETE FROM deployments WHERE id = ?", id);
  }
}
