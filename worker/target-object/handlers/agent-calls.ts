/**
 * The DO's RPCs for /api/targets/:target/agents that change them: register, rotate, revoke. Each
 * returns its answer and what it changed; the shell (target.ts) sends jobs and arms the alarm after.
 */
import { agentKnown, forgetAgent, insertToken, MAX_AGENTS_PER_TARGET, newToken, replaceToken } from "../agents/agent-tokens.ts";
import { CLOSE_REVOKED, CLOSE_ROTATED, closeAndForget, liveSocket, sendFrame } from "../agents/connections.ts";
import { endJob } from "../deployments/lifecycle.ts";
import { unfinishedJobsOf } from "../jobs/jobs.ts";
import type { Handled, TargetContext } from "./target-context.ts";
import { logInfo } from "../../console-lines.ts";

export type RegisterResult = { ok: true; name: string; token: string } | { ok: false; status: 409; error: string };
export type RotateResult = { name: string; token: string } | null;
export type RevokeResult = ({ ok: true; name: string } & Removed) | { ok: false };

export interface Removed {
  canceled: string[];
  interrupted: string[];
}

/**
 * Call inside a transaction. Removes an agent (revoked, or pruned by the alarm: deadlines.ts): its
 * queued jobs end `canceled` and a running one `interrupted`, each with a note saying why, then its
 * token and row go (agents/agent-tokens.ts forgetAgent). Null when the name is neither registered nor known.
 */
export function removeAgent(sql: SqlStorage, name: string, why: string, now: number): Removed | null {
  if (!agentKnown(sql, name)) return null;
  const removed: Removed = { canceled: [], interrupted: [] };
  for (const job of unfinishedJobsOf(sql, name)) {
    const status = job.status === "queued" ? "canceled" : "interrupted";
    endJob(sql, job.id, status, now, `agent ${name} ${why}: ended ${status}`);
    (status === "canceled" ? removed.canceled : removed.interrupted).push(job.id);
  }
  forgetAgent(sql, name);
  return removed;
}

/** POST …/agents — a new agent name and its token (shown once; only its hash is kept). */
export async function registerAgent(ctx: DurableObjectState, target: string, name: string): Promise<Handled<RegisterResult>> {
  const { token, hashHex } = await newToken();
  const outcome = ctx.storage.transactionSync(() => insertToken(ctx.storage.sql, name, hashHex, Date.now()));
  if (!outcome.ok) {
    const error =
      outcome.why === "exists"
        ? `agent ${name} is already registered in target ${target} (rotate its token with POST …/agents/${name}/token)`
        : outcome.why === "case"
          ? `agent ${name} differs only in case from agent ${outcome.existing}, already registered in target ${target}: agent names are compared without case`
          : `target ${target} has ${MAX_AGENTS_PER_TARGET} agents, the limit: revoke one first (DELETE …/agents/:name)`;
    return { result: { ok: false, status: 409, error }, changed: null };
  }
  logInfo(`[agent ${name}] registered in target ${target}`);
  // A token never used is pruned after the retention period: a new deadline.
  return { result: { ok: true, name, token }, changed: { resend: [] } };
}

/** POST …/agents/:name/token — a new token; the old one stops working and its socket is closed. Null: no such agent. */
export async function rotateAgentToken(ctx: DurableObjectState, target: string, name: string): Promise<Handled<RotateResult>> {
  const { token, hashHex } = await newToken();
  const now = Date.now();
  if (!replaceToken(ctx.storage.sql, name, hashHex, now)) return { result: null, changed: null };
  closeAndForget(ctx, name, CLOSE_ROTATED, "token rotated", now);
  logInfo(`[agent ${name}] token rotated in target ${target}`);
  // Its socket closed: a running job's stale deadline starts.
  return { result: { name, token }, changed: { resend: [] } };
}

/** DELETE …/agents/:name — token and row gone, socket closed, its unfinished jobs ended (a rollout they were in moves on). */
export function revokeAgent(c: TargetContext, name: string): Handled<RevokeResult> {
  const sql = c.ctx.storage.sql;
  const ws = liveSocket(c.ctx, sql, name);
  const removed = c.ctx.storage.transactionSync(() => removeAgent(sql, name, "was revoked", c.now));
  if (!removed) return { result: { ok: false }, changed: null };
  if (ws) for (const id of removed.interrupted) sendFrame(ws, { type: "cancel", jobId: id });
  closeAndForget(c.ctx, name, CLOSE_REVOKED, "agent revoked", c.now);
  logInfo(`[agent ${name}] revoked in target ${c.target}: ${removed.canceled.length} queued job(s) canceled, ${removed.interrupted.length} running job(s) interrupted`);
  return { result: { ok: true, name, ...removed }, changed: { resend: [] } };
}
