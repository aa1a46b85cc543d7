/** Sending jobs to agents: one job at a time per agent, re-sent until the agent accepts it. */
import { liveSocket, sendFrame } from "./connections.ts";
import { toJobFrame } from "./job-record.ts";
import { agentBusy, markDispatched, oldestQueuedJob } from "./jobs.ts";

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
      console.log(`[job ${pending.id}] re-sent to ${agent} (not accepted yet)`);
    }
    return null;
  }
  const next = oldestQueuedJob(sql, agent, "any");
  if (!next) return null;
  markDispatched(sql, next.id, opts.now);
  return sendFrame(ws, toJobFrame(next)) ? next.id : null;
}

/** dispatch, and a log line for the job sent. (A webhook delivery says it in its own line per job instead.) */
export function dispatchNext(ctx: DurableObjectState, sql: SqlStorage, agent: string, opts: { resend: boolean; now: number }): void {
  const id = dispatch(ctx, sql, agent, opts);
  if (id !== null) console.log(`[job ${id}] sent to ${agent}`);
}
