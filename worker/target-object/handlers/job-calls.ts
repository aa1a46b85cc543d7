/**
 * The DO's RPCs for webhooks and /api/targets/:target/jobs: a delivery, a deploy, a cancel, a job's
 * log. Those that change state return what they changed; the shell (target.ts) sends the jobs and
 * arms the alarm after.
 */
import { answerLine, recordSeenDelivery } from "../deployments/github-events.ts";
import { FINAL_JOB_STATUSES } from "../../../shared/protocol.ts";
import { liveSocket, sendFrame } from "../agents/connections.ts";
import { acceptConclusion, acceptDelivery } from "../deployments/deliveries.ts";
import { endJob } from "../deployments/lifecycle.ts";
import { jobStatusOf } from "../jobs/job-record.ts";
import { getJob, markCancelRequested, requestCancel } from "../jobs/jobs.ts";
import { type LogCursor, type LogPage, logStream, readLogPage } from "../jobs/log-reader.ts";
import { type DeployRequest, type DeployResult, planDeploy, writeDeploy } from "../deployments/manual-deploy.ts";
import type { Handled, TargetContext } from "./target-context.ts";
import type { CancelResult, ConclusionDelivery, DeliveryAnswer, WebhookDelivery } from "../types.ts";
import { logInfo } from "../../console-lines.ts";

/** A verified push: the jobs and the answer stored together, then the jobs sent. `created`: not a redelivery. */
export function receiveDelivery(c: TargetContext, d: WebhookDelivery): { answer: DeliveryAnswer; created: boolean } {
  const sql = c.ctx.storage.sql;
  const { answer, duplicate } = c.ctx.storage.transactionSync(() => {
    const accepted = acceptDelivery(sql, d, c.now);
    recordSeenDelivery(sql, { event: d.event, delivery: d.delivery, status: accepted.answer.status, answer: answerLine(accepted.answer.status, accepted.answer.body), refused: false }, c.now);
    return accepted;
  });
  if (duplicate) {
    logInfo(`[delivery ${d.delivery}] seen before: same answer, no new job`);
    return { answer, created: false };
  }
  if (answer.body.ignored) logInfo(`[delivery ${d.delivery}] ignored: ${answer.body.ignored}`);
  return { answer, created: true };
}

/**
 * A CI run's conclusion (workflow_run, check_run): kept, and the gates it decides moved on — a
 * deployment opened (its first batch released), blocked, or made again by a passing re-run.
 */
export function receiveConclusion(c: TargetContext, d: ConclusionDelivery): Handled<DeliveryAnswer> {
  const sql = c.ctx.storage.sql;
  const { answer, duplicate } = c.ctx.storage.transactionSync(() => {
    const accepted = acceptConclusion(sql, d, c.now);
    const event = d.run.kind === "workflow" ? "workflow_run" : "check_run";
    recordSeenDelivery(sql, { event, delivery: d.delivery, status: accepted.answer.status, answer: answerLine(accepted.answer.status, accepted.answer.body), refused: false }, c.now);
    return accepted;
  });
  if (duplicate) {
    logInfo(`[delivery ${d.delivery}] seen before: same answer`);
    return { result: answer, changed: null };
  }
  if (answer.body.ignored) logInfo(`[delivery ${d.delivery}] ignored: ${answer.body.ignored}`);
  for (const g of answer.body.gates ?? []) logInfo(`[delivery ${d.delivery}] [deployment ${g.deployment}] ${g.gate} ${g.state}`);
  return { result: answer, changed: { resend: [] } };
}

/**
 * The delivery's line per deployment once its jobs have gone out (the shell sends them after the answer
 * has left: target.ts): each host's job, and whether it went out or waits (for its batch, or its agent).
 */
export function logDeliverySent(deliveryId: string, answer: DeliveryAnswer, sent: ReadonlySet<string>): void {
  const agentOf = new Map(answer.body.jobs.map((j) => [j.id, j.agent]));
  for (const dep of answer.body.deployments ?? []) {
    const hosts = dep.jobs.map((id) => `${agentOf.get(id)} job ${id}${sent.has(id) ? " sent" : " queued"}`);
    logInfo(`[delivery ${deliveryId}] [deployment ${dep.id}] ${dep.pipeline}: ${hosts.join(", ")}`);
  }
}

/** POST …/deploy — queue the pipeline again (newest ref/sha unless given). Only the first batch is released. */
export function deploy(c: TargetContext, req: DeployRequest): Handled<DeployResult> {
  const sql = c.ctx.storage.sql;
  // Planned in full first, so a refusal for one agent leaves no job for another.
  const result = c.ctx.storage.transactionSync((): DeployResult => {
    const plan = planDeploy(sql, req);
    return plan.ok ? writeDeploy(sql, plan, c.now) : plan;
  });
  if (!result.ok) return { result, changed: null };
  for (const job of result.jobs) logInfo(`[delivery ${result.delivery}] [job ${job.id}] deploy requested for ${job.agent}/${job.pipeline}`);
  return { result, changed: { resend: [] } };
}

/**
 * A queued job is canceled here; a running one is asked to stop (now, or when its agent
 * reconnects), and ends canceled after the cancel grace if its agent never confirms (deadlines.ts).
 */
export function cancelJob(c: TargetContext, id: string): Handled<CancelResult> {
  const sql = c.ctx.storage.sql;
  const job = getJob(sql, id);
  if (!job) return { result: { outcome: "not-found" }, changed: null };
  const status = jobStatusOf(job.status);
  if (status === "queued") {
    c.ctx.storage.transactionSync(() => {
      markCancelRequested(sql, id);
      endJob(sql, id, "canceled", c.now);
    });
    logInfo(`[job ${id}] canceled while queued`);
    // The agent's next job goes out now. If the canceled one was already on its way, the agent's
    // `accepted` gets a `cancel`, and a job it could not take meanwhile is re-sent after that job-end.
    return { result: { outcome: "canceled", id, status: "canceled" }, changed: { resend: [job.agent] } };
  }
  if (status !== "running") return { result: { outcome: "already-finished", status }, changed: null };
  // A repeated cancel sends the frame again but keeps the first request's grace.
  requestCancel(sql, id, c.now);
  const ws = liveSocket(c.ctx, sql, job.agent);
  const sent = ws !== null && sendFrame(ws, { type: "cancel", jobId: id });
  logInfo(`[job ${id}] cancel requested${sent ? "" : ` (agent ${job.agent} offline: sent when it reconnects)`}`);
  // The cancel grace is a new deadline.
  return { result: { outcome: "cancel-requested", id, status }, changed: { resend: [] } };
}

/** The job's log (null if no such job); `step` → that step's raw output only. */
export function jobLog(sql: SqlStorage, id: string, step: string | null): ReadableStream<Uint8Array> | null {
  const job = getJob(sql, id);
  if (!job) return null;
  return logStream(sql, id, step, { bytes: job.output_dropped, events: job.output_dropped_events });
}

/** For `?follow=1`: the next page of the log after `after`, and whether the job has ended. */
export function logPage(sql: SqlStorage, id: string, step: string | null, after: LogCursor, atLineStart: boolean): (LogPage & { ended: boolean }) | null {
  const job = getJob(sql, id);
  if (!job) return null;
  const page = readLogPage(sql, id, step, after, atLineStart);
  // A final status is final: the agent's job-end is in, or the DO ended the job itself (it never ran,
  // or a deadline passed — then the note saying so is in the page). A late event stays in the plain log.
  return { ...page, ended: FINAL_JOB_STATUSES.includes(jobStatusOf(job.status)) };
}
