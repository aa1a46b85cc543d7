/**
 * How jobs come and go, and nowhere else: a deployment is created with its jobs (superseding the older
 * jobs of its pipeline not sent yet) and, when its hosts declare gates, waits at them (gates.ts) until
 * they open or it ends blocked; a job starts; a job ends. Each writes the job's row (jobs/) and moves
 * its deployment (deployments.ts, which hands the change to reports/) in the caller's transaction, so
 * neither can be seen without the other. Sending jobs and arming the alarm come after, in the DO shell
 * (target.ts).
 */
import type { JobStatus } from "../../../shared/protocol.ts";
import { logInfo } from "../../console-lines.ts";
import { createJob, type EndedJob, markJobRunning, unsentQueuedJobs, writeJobEnd } from "../jobs/jobs.ts";
import { addNote } from "../jobs/notes.ts";
import type { DeploymentSummary, JobSummary } from "../types.ts";
import { blockDeployment, deploymentStarted, getDeployment, insertDeployment, type NewDeployment, openDeployment, reportChange, settleAfterJobEnd, settleDeployment } from "./deployments.ts";
import { type Decision, decideGate, gateOutcome, insertGates, planGates } from "./gates.ts";
import type { GateKind } from "../types.ts";

/**
 * Call inside a transaction. Supersedes the older jobs of this pipeline not sent yet on the same
 * agents, then creates the deployment and its jobs in rollout order, the first batch released.
 */
export function createDeployment(sql: SqlStorage, d: NewDeployment): { deployment: DeploymentSummary; jobs: JobSummary[] } {
  const pipeline = d.members[0]!.pipeline.name;
  const hosts = new Set(d.members.map((m) => m.agent));
  const older = unsentQueuedJobs(sql, pipeline).filter((j) => hosts.has(j.agent));
  for (const old of endJobs(sql, older.map((j) => j.id), "superseded", d.now)) {
    logInfo(`[job ${old}] superseded by a newer ${d.fields.event} (delivery ${d.fields.delivery})`);
  }
  const gates = planGates(d.members);
  const { id, order, batchOf } = insertDeployment(sql, d, gates === null ? null : d.now + gates.timeoutMs);
  const declOf = new Map(d.members.map((m) => [m.agent, m.pipeline]));
  // Waiting at its gates, no batch is released: nothing can be sent to any host.
  const jobs = order.map((agent): JobSummary => {
    const batch = batchOf(agent);
    const jobId = createJob(sql, agent, declOf.get(agent)!, d.fields, d.now, { deploymentId: id, batch, released: gates === null && batch === 0 });
    return { id: jobId, agent, pipeline, status: "queued" };
  });
  if (gates !== null) {
    insertGates(sql, { id, repo: d.fields.repo, sha: d.fields.sha }, gates, d.approvedBy ?? null, d.now);
    // Every gate already passed (its CI concluded before the push; a manual deploy's approval): queued at once, told so.
    if (gateOutcome(sql, id).kind === "open") openDeployment(sql, id, d.now, { told: false });
  }
  reportChange(sql, id, "created", d.now);
  if (gates !== null) moveGates(sql, id, "CI", d.now);
  return { deployment: { id, pipeline, jobs: jobs.map((j) => j.id) }, jobs };
}

/**
 * Call inside a transaction, after a gate of a waiting deployment was decided: it opens (queued, its
 * first batch released), ends blocked, or goes on waiting — and when it now waits for a person only,
 * having waited for CI `before`, that is told (reports: `deployment.waiting`).
 */
export function moveGates(sql: SqlStorage, id: string, before: "CI" | "approval", now: number): void {
  const dep = getDeployment(sql, id);
  if (dep?.status !== "waiting") return;
  const outcome = gateOutcome(sql, id);
  if (outcome.kind === "open") {
    logInfo(`[deployment ${id}] gates passed: queued`);
    openDeployment(sql, id, now);
  } else if (outcome.kind === "blocked") {
    blockDeployment(sql, id, outcome.reason, now);
  } else if (outcome.for === "approval" && before === "CI") {
    logInfo(`[deployment ${id}] waits for approval`);
    reportChange(sql, id, "approval", now);
  }
}

/** Call inside a transaction. Decides one gate of a waiting deployment and moves it on; false when that gate was not waiting. */
export function decideAndMove(sql: SqlStorage, id: string, gate: { kind: GateKind; name: string }, decision: Decision, now: number): boolean {
  const before = gateOutcome(sql, id);
  if (!decideGate(sql, id, gate.kind, gate.name, decision, now)) return false;
  moveGates(sql, id, before.kind === "waiting" ? before.for : "approval", now);
  return true;
}

/**
 * Call inside a transaction. A queued job runs (its agent accepted it, or its events say so); so does its
 * deployment, from its first job. Null when the job was not queued; `deploymentMoved`: its deployment
 * started running with it (and that is reported).
 */
export function startJob(sql: SqlStorage, id: string, now: number): { deploymentMoved: boolean } | null {
  const started = markJobRunning(sql, id, now);
  if (!started) return null;
  return { deploymentMoved: started.deploymentId !== null && deploymentStarted(sql, started.deploymentId, now) };
}

/** A job's end, and whether its deployment may have moved with it (false: it stayed as it was — another job of the batch still runs). */
export interface JobEnd extends EndedJob {
  deploymentMoved: boolean;
}

/**
 * Call inside a transaction. The one way a job ends: its row (and steps), the note saying why when the
 * DO ended it itself, and its deployment moved on — halted, its next batch released, or ended. Only a
 * queued or running job ends; null when the job had already ended (it stays as it ended).
 */
export function endJob(sql: SqlStorage, id: string, status: JobStatus, now: number, note?: string): JobEnd | null {
  const ended = writeJobEnd(sql, id, status, now);
  if (!ended) return null;
  if (note !== undefined) addNote(sql, id, note, now);
  const { deploymentId } = ended;
  return { ...ended, deploymentMoved: deploymentId !== null && settleAfterJobEnd(sql, { ...ended, deploymentId }, now) };
}

/**
 * Call inside a transaction. Several jobs end alike, as endJob ends each — a push superseding a fleet's
 * jobs not sent yet — and each deployment they belong to is settled once, after all of them (settling
 * reads all its jobs: once per job made a 100-host push read 100 × 100 rows). Returns the ids that ended.
 */
export function endJobs(sql: SqlStorage, ids: readonly string[], status: JobStatus, now: number): string[] {
  const ended: string[] = [];
  const deployments = new Set<string>();
  for (const id of ids) {
    const job = writeJobEnd(sql, id, status, now);
    if (!job) continue;
    ended.push(id);
    if (job.deploymentId !== null) deployments.add(job.deploymentId);
  }
  for (const id of deployments) settleDeployment(sql, id, now);
  return ended;
}
