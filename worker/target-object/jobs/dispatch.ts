/**
 * Sending jobs to agents: one job at a time per agent, re-sent until the agent accepts it. Only the DO
 * shell (target.ts sendJobs) calls these, after each entry point: no handler sends a job itself.
 */
import { liveSocket, sendFrame } from "../agents/connections.ts";
import { toJobFrame } from "./job-record.ts";
import { agentBusy, markDispatched, oldestQueuedJob } from "./jobs.ts";
import { logInfo } from "../../console-lines.ts";

/**
 * Gives an idle, connected agent its oldest released job; returns its id when one was sent. `resend`
 * (the agent is idle as far as the DO knows: it said hello, or ended a job) sends again a job that was
 * sent but never accepted; otherwise such a job keeps the agent busy.
 */
export function sendNextJob(ctx: DurableObjectState, sql: SqlStorage, agent: string, opts: { resend: boolean; now: number }): string | null {
  const ws = liveSocket(ctx, sql, agent);
  if (!ws) return null;
  if (agentBusy(sql, agent)) return null;
  const pending = oldestQueuedJob(sql, agent, "sent");
  if (pending) {
    if (opts.resend) {
      markDispatched(sql, pending.id, opts.now);
      sendFrame(ws, toJobFrame(pending));
      logInfo(`[job ${pending.id}] re-sent to ${agent} (not accepted yet)`);
    }
    return null;
  }
  const next = oldestQueuedJob(sql, agent, "any");
  if (!next) return null;
  markDispatched(sql, next.id, opts.now);
  return sendFrame(ws, toJobFrame(next)) ? next.id : null;
}

/** Connected agents with a released job not sent yet (a rollout's next batch, a new push's first). */
export function agentsWithUnsentJobs(sql: SqlStorage): string[] {
  return sql
    .exec<{ agent: string }>(
      `SELECT DISTINCT j.agent FROM jobs j JOIN agents a ON a.name = j.agent
       WHERE j.status = 'queued' AND j.released_at IS NOT NULL AND j.dispatched_at IS NULL AND a.connected = 1`,
    )
    .toArray()
    .map((r) => r.agent);
}
