/**
 * The DO's RPCs for webhooks and /api/targets/:target/jobs: a delivery, a deploy, a cancel, a job's
 * log. Plain functions behind the shell (target.ts), which re-derives the alarm after those that
 * change state.
 */
import { FINAL_JOB_STATUSES } from "../../shared/protocol.ts";
import { liveSocket, sendFrame } from "./connections.ts";
import { acceptDelivery } from "./deliveries.ts";
import { dispatch, dispatchNext } from "./dispatch.ts";
import { jobStatusOf } from "./job-record.ts";
import { finishJob } from "./deployments.ts";
import { getJob, markCancelRequested, requestCancel } from "./jobs.ts";
import { type LogCursor, type LogPage, logStream, readLogPage } from "./log-reader.ts";
import { type DeployRequest, type DeployResult, planDeploy, writeDeploy } from "./manual-deploy.ts";
import type { TargetContext } from "./target-context.ts";
import type { CancelResult, DeliveryAnswer, WebhookDelivery } from "./types.ts";
import { logInfo } from "../console-lines.ts";

/** A verified push: the jobs and the answer stored together, then the jobs sent. `created`: not a redelivery. */
export function receiveDelivery(c: TargetContext, d: WebhookDelivery): { answer: DeliveryAnswer; created: boolean } {
  const sql = c.ctx.storage.sql;
  const { answer, duplicate } = c.ctx.storage.transactionSync(() => acceptDelivery(sql, d, c.now));
  if (duplicate) {
    logInfo(`[delivery ${d.delivery}] seen before: same answer, no new job`);
    return { answer, created: false };
  }
  if (answer.body.ignored) logInfo(`[delivery ${d.delivery}] ignored: ${answer.body.ignored}`);
  return { answer, created: true };
}

/**
 * The jobs of a delivery go out after its answer (the shell calls this once the answer has left):
 * GitHub's answer never waits for a send, an agent's `accepted`, or a console line. Only the first
 * batch of each deployment is released. Should the DO go away in between, the jobs are still queued
 * and released: the alarm the shell armed for them, or the agent's next hello, sends them.
 */
export function dispatchDelivery(c: TargetContext, deliveryId: string, answer: DeliveryAnswer): void {
  const sql = c.ctx.storage.sql;
  const sent = new Set<string>();
  for (const agent of new Set(answer.body.jobs.map((j) => j.agent))) {
    const id = dispatch(c.ctx, sql, agent, { resend: false, now: c.now });
    if (id !== null) sent.add(id);
  }
  // One line per deployment: each host's job, and whether it went out or waits (for its batch, or its agent).
  const agentOf = new Map(answer.body.jobs.map((j) => [j.id, j.agent]));
  for (const dep of answer.body.deployments ?? []) {
    const hosts = dep.jobs.map((id) => `${agentOf.get(id)} job ${id}${sent.has(id) ? " sent" : " queued"}`);
    logInfo(`[delivery ${deliveryId}] [deployment ${dep.id}] ${dep.pipeline}: ${hosts.join(", ")}`);
  }
}

/** POST …/deploy — queue the pipeline again (newest ref/sha unless given). */
export function deploy(c: TargetContext, req: DeployRequest): DeployResult {
  const sql = c.ctx.storage.sql;
  // Planned in full first, so a refusal for one agent leaves no job for another.
  const result = c.ctx.storage.transactionSync((): DeployResult => {
    const plan = planDeploy(sql, req);
    return plan.ok ? writeDeploy(sql, plan, c.now) : plan;
  });
  if (!result.ok) return result;
  for (const job of result.jobs) logInfo(`[delivery ${result.delivery}] [job ${job.id}] deploy requested for ${job.agent}/${job.pipeline}`);
  // Only the first batch is released; dispatch sends nothing else.
  for (const agent of new Set(result.jobs.map((j) => j.agent))) dispatchNext(c.ctx, sql, agent, { resend: false, now: c.now });
  return result;
}

/**
 * A queued job is canceled here; a running one is asked to stop (now, or when its agent
 * reconnects), and ends canceled after the cancel grace if its agent never confirms (deadlines.ts).
 */
export function cancelJob(c: TargetContext, id: string): CancelResult {
  const sql = c.ctx.storage.sql;
  const job = getJob(sql, id);
  if (!job) return { outcome: "not-found" };
  const status = jobStatusOf(job.status);
  if (status === "queued") {
    c.ctx.storage.transactionSync(() => {
      markCancelRequested(sql, id);
      finishJob(sql, id, "canceled", c.now);
    });
    logInfo(`[job ${id}] canceled while queued`);
    // The agent's next job goes out now. If the canceled one was already on its way, the agent's
    // `accepted` gets a `cancel`, and a job it could not take meanwhile is re-sent after that job-end.
    dispatchNext(c.ctx, sql, job.agent, { resend: true, now: c.now });
    return { outcome: "canceled", id, status: "canceled" };
  }
  if (status !== "running") return { outcome: "already-finished", status };
  // A repeated cancel sends the frame again but keeps the first request's grace.
  requestCancel(sql, id, c.now);
  const ws = liveSocket(c.ctx, sql, job.agent);
  const sent = ws !== null && sendFrame(ws, { type: "cancel", jobId: id });
  logInfo(`[job ${id}] cancel requested${sent ? "" : ` (agent ${job.agent} offline: sent when it reconnects)`}`);
  return { outcome: "cancel-requested", id, status };
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
