/**
 * What the alarm does when deadlines have passed (alarm.ts derives when): a job ends even when its
 * agent never says so — interrupted when the agent stayed away, timed_out when it stayed connected but
 * silent past the job's timeout + grace, canceled when it did not confirm a cancel within the cancel
 * grace (wedged, or gone for good); a job a connected agent has not accepted is sent again; and old
 * jobs, delivery records and agents unseen that long go.
 */
import { unseenAgentNames } from "../agents/agent-tokens.ts";
import { CLOSE_REVOKED, closeAgentSockets, liveSocket, sendFrame } from "../agents/connections.ts";
import type { AlarmSettings } from "../deadline-settings.ts";
import { deleteExpiredDeliveries } from "../deployments/deliveries.ts";
import { deleteExpiredConclusions } from "../deployments/conclusions.ts";
import { blockDeployment, deleteExpiredDeployments, expiredWaits } from "../deployments/deployments.ts";
import { failOpenGates, timeoutReason } from "../deployments/gates.ts";
import { endJob } from "../deployments/lifecycle.ts";
import { deleteJob, expiredJobIds, markDispatched, overdueRunningJobs, staleRunningJobs, staleWaitingJobs, unacceptedJobs, unconfirmedCancels } from "../jobs/jobs.ts";
import { removeAgent } from "./agent-calls.ts";
import type { Changed } from "./target-context.ts";
import { logInfo } from "../../console-lines.ts";
import { formatDuration } from "../../duration-text.ts";

interface Ended {
  id: string;
  agent: string;
  /** The agent may still be running it: tell it to stop. */
  cancel: boolean;
}

/**
 * Applies every deadline that has passed and tells the agents concerned; returns them, for the shell
 * to send each its next job (target.ts).
 */
export function runDeadlines(ctx: DurableObjectState, s: AlarmSettings, now: number): Changed {
  const sql = ctx.storage.sql;
  const pruned: string[] = [];
  const again: string[] = [];
  const ended = ctx.storage.transactionSync((): Ended[] => {
    const out: Ended[] = [];
    for (const job of staleRunningJobs(sql, s.staleMs, now)) {
      endJob(sql, job.id, "interrupted", now, `agent ${job.agent} has been disconnected for more than ${formatDuration(s.staleMs)}: ended interrupted`);
    }

    for (const job of staleWaitingJobs(sql, s.staleMs, now)) {
      // Sent but not confirmed: the `accepted` may have been lost with the socket, so it may have run.
      const why =
        job.dispatched_at === null
          ? `agent ${job.agent} was disconnected for more than ${formatDuration(s.staleMs)} while its turn in the rollout waited: ended interrupted, nothing ran there`
          : `the job was sent to ${job.agent}, which went away before confirming it and stayed away more than ${formatDuration(s.staleMs)}: ended interrupted; it may have run there`;
      endJob(sql, job.id, "interrupted", now, why);
    }

    // Sent a stale period ago to an agent that stayed connected and never accepted it: sent again (the
    // shell's sendJobs; marked sent now here too, so a socket gone meanwhile cannot make the alarm spin).
    for (const job of unacceptedJobs(sql, s.staleMs, now)) {
      markDispatched(sql, job.id, now);
      again.push(job.agent);
    }

    for (const job of overdueRunningJobs(sql, s.jobGraceMs, now)) {
      const timeout = `${formatDuration(job.timeout_ms)}${job.has_on_failure === 1 ? ", twice for on_failure steps" : ""}`;
      endJob(sql, job.id, "timed_out", now, `the agent never reported the end of this job within its timeout (${timeout}) + ${formatDuration(s.jobGraceMs)} grace: ended timed_out`);
      out.push({ id: job.id, agent: job.agent, cancel: true });
    }

    for (const job of unconfirmedCancels(sql, s.cancelGraceMs, now)) {
      endJob(sql, job.id, "canceled", now, `the agent did not confirm the cancel within ${formatDuration(s.cancelGraceMs)}: ended canceled`);
      out.push({ id: job.id, agent: job.agent, cancel: false }); // it had the cancel; it gets it again on hello
    }

    // A deployment that waited at its gates past their timeout ends blocked (nothing was sent).
    for (const dep of expiredWaits(sql, now)) {
      const reason = timeoutReason(sql, dep.id, dep.waitedMs);
      failOpenGates(sql, dep.id, now);
      blockDeployment(sql, dep.id, reason, now);
    }

    for (const id of expiredJobIds(sql, s.retentionMs, now)) deleteJob(sql, id);
    deleteExpiredConclusions(sql, s.retentionMs, now);
    deleteExpiredDeliveries(sql, s.retentionMs, now);
    deleteExpiredDeployments(sql, s.retentionMs, now);

    // Revoked agents are gone at once (agent-calls.ts); these were registered but not seen for the
    // retention period: a decommissioned host keeps no token that still opens a socket.
    for (const name of unseenAgentNames(sql, s.retentionMs, now)) {
      if (removeAgent(sql, name, `was not seen for ${formatDuration(s.retentionMs)} and was removed`, now)) pruned.push(name);
    }
    return out;
  });
  for (const name of pruned) {
    closeAgentSockets(ctx, name, CLOSE_REVOKED, "agent pruned");
    logInfo(`[agent ${name}] not seen for ${formatDuration(s.retentionMs)}: removed (token and pipelines)`);
  }

  for (const job of ended) {
    const ws = job.cancel ? liveSocket(ctx, sql, job.agent) : null;
    if (ws) sendFrame(ws, { type: "cancel", jobId: job.id });
  }
  // These agents are idle as far as the DO knows. One still running the job does not accept the next;
  // that one is sent again after the late job-end (agent-frames.ts).
  return { resend: [...new Set([...ended.map((j) => j.agent), ...again])] };
}
