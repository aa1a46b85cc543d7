/** The DO's RPCs for POST …/deployments/:id/cancel, /approve and /reject (the views are plain reads: deployments.ts). */
import { liveSocket, sendFrame } from "../agents/connections.ts";
import { deploymentStatusOf, getDeployment, isFinalDeployment, markDeploymentCancelRequested } from "../deployments/deployments.ts";
import { decideAndMove, endJob } from "../deployments/lifecycle.ts";
import { APPROVAL, gateViews } from "../deployments/gates.ts";
import { markCancelRequested, requestCancel, unfinishedJobsOfDeployment } from "../jobs/jobs.ts";
import type { Handled, TargetContext } from "./target-context.ts";
import type { ApprovalResult, DeploymentCancelResult } from "../types.ts";
import { logInfo } from "../../console-lines.ts";
import { logText } from "../../log-text.ts";

/**
 * Cancels a deployment mid-rollout: its jobs not started end `canceled` here (not `skipped`: nobody's
 * failure stopped them), running ones are asked to stop like a job's cancel (jobs.ts requestCancel, with
 * its grace), and no later batch is released. It ends `canceled` when its last running job has ended.
 */
export function cancelDeployment(c: TargetContext, id: string): Handled<DeploymentCancelResult> {
  const sql = c.ctx.storage.sql;
  const dep = getDeployment(sql, id);
  if (!dep) return { result: { outcome: "not-found" }, changed: null };
  if (isFinalDeployment(dep.status)) return { result: { outcome: "already-finished", status: deploymentStatusOf(dep.status) }, changed: null };
  const { queued, running } = c.ctx.storage.transactionSync(() => {
    markDeploymentCancelRequested(sql, id);
    const jobs = unfinishedJobsOfDeployment(sql, id);
    const q = jobs.filter((j) => j.status === "queued");
    const r = jobs.filter((j) => j.status === "running");
    for (const j of r) requestCancel(sql, j.id, c.now);
    for (const j of q) {
      markCancelRequested(sql, j.id);
      endJob(sql, j.id, "canceled", c.now);
    }
    return { queued: q, running: r };
  });
  for (const j of running) {
    const ws = liveSocket(c.ctx, sql, j.agent);
    const sent = ws !== null && sendFrame(ws, { type: "cancel", jobId: j.id });
    logInfo(`[deployment ${id}] [job ${j.id}] cancel requested${sent ? "" : ` (agent ${j.agent} offline: sent when it reconnects)`}`);
  }
  logInfo(`[deployment ${id}] canceled: ${queued.length} job(s) not started canceled, ${running.length} running asked to stop`);
  const now = getDeployment(sql, id);
  // As for a job's cancel (job-calls.ts): a job canceled on its way is answered with `cancel` when accepted; each agent gets its next.
  return { result: { outcome: "cancel-requested", id, status: deploymentStatusOf(now?.status ?? dep.status) }, changed: { resend: [...new Set(queued.map((j) => j.agent))] } };
}

/**
 * A person's approval or rejection of a deployment waiting for it (POST …/approve, …/reject), recorded
 * with the time and the note. Approved: it is queued once its CI gates have passed too; rejected: it ends
 * `blocked` ("rejected by admin: <note>"), nothing run.
 */
export function decideApproval(c: TargetContext, id: string, approve: boolean, note: string | null): Handled<ApprovalResult> {
  const sql = c.ctx.storage.sql;
  const dep = getDeployment(sql, id);
  if (!dep) return { result: { outcome: "not-found" }, changed: null };
  const decided = c.ctx.storage.transactionSync(() =>
    dep.status === "waiting" &&
    decideAndMove(sql, id, { kind: "approval", name: APPROVAL }, { state: approve ? "passed" : "failed", url: null, by: "admin", note }, c.now),
  );
  if (!decided) return { result: { outcome: "not-waiting", status: deploymentStatusOf(dep.status) }, changed: null };
  const after = getDeployment(sql, id);
  logInfo(`[deployment ${id}] ${approve ? "approved" : "rejected"} by admin${note ? `: ${logText(note)}` : ""}`);
  return { result: { outcome: "decided", id, status: deploymentStatusOf(after?.status ?? dep.status), gates: gateViews(sql, id) }, changed: { resend: [] } };
}
