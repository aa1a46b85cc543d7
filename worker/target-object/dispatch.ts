/** Sending jobs to agents: one job at a time per agent, re-sent until the agent accepts it. */
import { liveSocket, sendFrame } from "./connections.ts";
import { toJobFrame } from "./job-record.ts";
import { agentBusy, markDispatched, oldestQueuedJob } from "./jobs.ts";
import { logInfo } from "../console-lines.ts";

/**
 * Gives an idle, connected agent its oldest queued job; returns its id when one was sent, and says
 * nothing about it (the caller does). `resend` (after a reconnect) sends again a job that was
 * dispatched but never accepted; otherwise such a job keeps the agent busy.
 */
export function dispatch(ctx: DurableObjectState, sql: SqlStorage, agent: string, opts: { resend: boolean; now: number }): string | null {
  const ws = liveSocket(ctx, sql, agent);
  if (!ws) return null;
  if (agentBusy(sql, agent)) return null;
  const pending = oldestQueuedJob(sql, agent, "sent");
  if (pending) {
    if (opts.resend) {
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

/**
 * Sends every connected, idle agent its oldest released job. Run by the DO shell after each entry
 * point that may have released a rollout's next batch, so no path has to remember to.
 */
export function dispatchReleased(ctx: DurableObjectState, sql: SqlStorage, now: number): void {
  const agents = sql
    .exec<{ agent: string }>(
      `SELECT DISTINCT j.agent FROM jobs j JOIN agents a ON a.name = j.agent
       WHERE j.status = 'queued' AND j.released_at IS NOT NULL AND j.dispatched_at IS NULL AND a.connected = 1`,
    )
    .toArray();
  for (const { agent } of agents) dispatchNext(ctx, sql, agent, { resend: false, now });
}

/** dispatch, and a log line for the job sent. (A webhook delivery says it in its own line per job instead.) */
export function dispatchNext(ctx: DurableObjectState, sql: SqlStorage, agent: string, opts: { resend: boolean; now: number }): void {
  const id = dispatch(ctx, sql, agent, opts);
  if (id !== null) logInfo(`[job ${id}] sent to ${agent}`);
}
