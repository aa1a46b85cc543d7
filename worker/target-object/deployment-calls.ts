/** The DO's RPC for POST …/deployments/:id/cancel (the views are plain reads: deployments.ts). */
import { liveSocket, sendFrame } from "./connections.ts";
import { dispatchNext } from "./dispatch.ts";
import { deploymentStatusOf, finishJob, getDeployment, isFinalDeployment } from "./deployments.ts";
import { markCancelRequested, requestCancel } from "./jobs.ts";
import type { TargetContext } from "./target-context.ts";
import type { DeploymentCancelResult } from "./types.ts";
import { logInfo } from "../console-lines.ts";

/**
 * Cancels a deployment mid-rollout: its jobs not started end `canceled` here (not `skipped`: nobody's
 * failure stopped them), running ones are asked to stop like a job's cancel (jobs.ts requestCancel, with
 * its grace), and no later batch is released. It ends `canceled` when its last running job has ended.
 */
export function cancelDeployment(c: TargetContext, id: string): DeploymentCancelResult {
  const sql = c.ctx.storage.sql;
  const dep = getDeployment(sql, id);
  if (!dep) return { outcome: "not-found" };
  if (isFinalDeployment(dep.status)) return { outcome: "already-finished", status: deploymentStatusOf(dep.status) };
  const { queued, running } = c.ctx.storage.transactionSync(() => {
    sql.exec("UPDATE deployments SET cancel_requested = 1 WHERE id = ?", id);
    const jobs = sql.exec<{ id: string; agent: string; status: string }>("SELECT id, agent, status FROM jobs WHERE deployment_id = ? AND status IN ('queued', 'running')", id).toArray();
    const q = jobs.filter((j) => j.status === "queued");
    const r = jobs.filter((j) => j.status === "running");
    for (const j of r) requestCancel(sql, j.id, c.now);
    for (const j of q) {
      markCancelRequested(sql, j.id);
      finishJob(sql, j.id, "canceled", c.now);
    }
    return { queued: q, running: r };
  });
  for (const j of running) {
    const ws = liveSocket(c.ctx, sql, j.agent);
    const sent = ws !== null && sendFrame(ws, { type: "cancel", jobId: j.id });
    logInfo(`[deployment ${id}] [job ${j.id}] cancel requested${sent ? "" : ` (agent ${j.agent} offline: sent when it reconnects)`}`);
  }
  logInfo(`[deployment ${id}] canceled: ${queued.length} job(s) not started canceled, ${running.length} running asked to stop`);
  // As for a job's cancel (job-calls.ts): a job canceled on its way is answered with `cancel` when accepted; send each agent its next.
  for (const agent of new Set(queued.map((j) => j.agent))) dispatchNext(c.ctx, sql, agent, { resend: true, now: c.now });
  const now = getDeployment(sql, id);
  return { outcome: "cancel-requested", id, status: deploymentStatusOf(now?.status ?? dep.status) };
}
