/**
 * What the alarm does when deadlines have passed (alarm.ts derives when): a job ends even when its
 * agent never says so — interrupted when the agent stayed away, timed_out when it stayed connected but
 * silent past the job's timeout + grace, canceled when it did not confirm a cancel within the cancel
 * grace (wedged, or gone for good) — and old jobs, delivery records and agents unseen that long go.
 */
import { removeAgent, unseenAgentNames } from "./agent-tokens.ts";
import type { AlarmSettings } from "./alarm.ts";
import { CLOSE_REVOKED, closeAgentSockets, liveSocket, sendFrame } from "./connections.ts";
import { dispatchNext } from "./dispatch.ts";
import { deleteExpiredDeliveries } from "./deliveries.ts";
import { deleteExpiredDeployments, finishJob } from "./deployments.ts";
import { deleteJob, expiredJobIds, overdueRunningJobs, staleRunningJobs, staleWaitingJobs, unconfirmedCancels } from "./jobs.ts";
import { addNote } from "./notes.ts";
import { logInfo } from "../console-lines.ts";

/** "30 days", "2 min", "90 s": durations in notes. */
export function formatDuration(ms: number): string {
  if (ms >= 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000} day${ms === 86_400_000 ? "" : "s"}`;
  return ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`;
}

interface Ended {
  id: string;
  agent: string;
  /** The agent may still be running it: tell it to stop. */
  cancel: boolean;
}

/** Applies every deadline that has passed, then tells the agents concerned and gives them their next job. */
export function runDeadlines(ctx: DurableObjectState, s: AlarmSettings, now: number): void {
  const sql = ctx.storage.sql;
  const pruned: string[] = [];
  const ended = ctx.storage.transactionSync((): Ended[] => {
    const out: Ended[] = [];
    for (const job of staleRunningJobs(sql, s.staleMs, now)) {
      finishJob(sql, job.id, "interrupted", now);
      addNote(sql, job.id, `agent ${job.agent} has been disconnected for more than ${formatDuration(s.staleMs)}: ended interrupted`, now);
    }

    for (const job of staleWaitingJobs(sql, s.staleMs, now)) {
      finishJob(sql, job.id, "interrupted", now);
      // Sent but not confirmed: the `accepted` may have been lost with the socket, so it may have run.
      const why =
        job.dispatched_at === null
          ? `agent ${job.agent} was disconnected for more than ${formatDuration(s.staleMs)} while its turn in the rollout waited: ended interrupted, nothing ran there`
          : `the job was sent to ${job.agent}, which went away before confirming it and stayed away more than ${formatDuration(s.staleMs)}: ended interrupted; it may have run there`;
      addNote(sql, job.id, why, now);
    }

    for (const job of overdueRunningJobs(sql, s.jobGraceMs, now)) {
      finishJob(sql, job.id, "timed_out", now);
      const timeout = `${formatDuration(job.timeout_ms)}${job.has_on_failure === 1 ? ", twice for on_failure steps" : ""}`;
      addNote(sql, job.id, `the agent never reported the end of this job within its timeout (${timeout}) + ${formatDuration(s.jobGraceMs)} grace: ended timed_out`, now);
      out.push({ id: job.id, agent: job.agent, cancel: true });
    }

    for (const job of unconfirmedCancels(sql, s.cancelGraceMs, now)) {
      finishJob(sql, job.id, "canceled", now);
      addNote(sql, job.id, `the agent did not confirm the cancel within ${formatDuration(s.cancelGraceMs)}: ended canceled`, now);
      out.push({ id: job.id, agent: job.agent, cancel: false }); // it had the cancel; it gets it again on hello
    }

    for (const id of expiredJobIds(sql, s.retentionMs, now)) deleteJob(sql, id);
    deleteExpiredDeliveries(sql, s.retentionMs, now);
    deleteExpiredDeployments(sql, s.retentionMs, now);

    // Revoked agents are gone at once (agent-tokens.ts); these were registered but not seen for the
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
  for (const agent of new Set(ended.map((j) => j.agent))) dispatchNext(ctx, sql, agent, { resend: true, now });
}
