/**
 * The DO's RPCs for /api/targets/:target/agents that change them: register, rotate, revoke. Plain functions
 * behind the shell (target.ts), which re-derives the alarm after those that change state.
 */
import { insertToken, MAX_AGENTS_PER_TARGET, newToken, removeAgent, type Removed, replaceToken } from "./agent-tokens.ts";
import { CLOSE_REVOKED, CLOSE_ROTATED, closeAndForget, liveSocket, sendFrame } from "./connections.ts";
import type { TargetContext } from "./target-context.ts";
import { logInfo } from "../console-lines.ts";

export type RegisterResult = { ok: true; name: string; token: string } | { ok: false; status: 409; error: string };
export type RotateResult = { name: string; token: string } | null;
export type RevokeResult = ({ ok: true; name: string } & Removed) | { ok: false };

/** POST …/agents — a new agent name and its token (shown once; only its hash is kept). */
export async function registerAgent(ctx: DurableObjectState, target: string, name: string): Promise<RegisterResult> {
  const { token, hashHex } = await newToken();
  const outcome = ctx.storage.transactionSync(() => insertToken(ctx.storage.sql, name, hashHex, Date.now()));
  if (!outcome.ok) {
    const error =
      outcome.why === "exists"
        ? `agent ${name} is already registered in target ${target} (rotate its token with POST …/agents/${name}/token)`
        : outcome.why === "case"
          ? `agent ${name} differs only in case from agent ${outcome.existing}, already registered in target ${target}: agent names are compared without case`
          : `target ${target} has ${MAX_AGENTS_PER_TARGET} agents, the limit: revoke one first (DELETE …/agents/:name)`;
    return { ok: false, status: 409, error };
  }
  logInfo(`[agent ${name}] registered in target ${target}`);
  return { ok: true, name, token };
}

/** POST …/agents/:name/token — a new token; the old one stops working and its socket is closed. Null: no such agent. */
export async function rotateAgentToken(ctx: DurableObjectState, target: string, name: string): Promise<RotateResult> {
  const { token, hashHex } = await newToken();
  const now = Date.now();
  if (!replaceToken(ctx.storage.sql, name, hashHex, now)) return null;
  closeAndForget(ctx, name, CLOSE_ROTATED, "token rotated", now);
  logInfo(`[agent ${name}] token rotated in target ${target}`);
  return { name, token };
}

/** DELETE …/agents/:name — token and row gone, socket closed, its unfinished jobs ended. */
export function revokeAgent(c: TargetContext, name: string): RevokeResult {
  const sql = c.ctx.storage.sql;
  const ws = liveSocket(c.ctx, sql, name);
  const removed = c.ctx.storage.transactionSync(() => removeAgent(sql, name, "was revoked", c.now));
  if (!removed) return { ok: false };
  if (ws) for (const id of removed.interrupted) sendFrame(ws, { type: "cancel", jobId: id });
  closeAndForget(c.ctx, name, CLOSE_REVOKED, "agent revoked", c.now);
  logInfo(`[agent ${name}] revoked in target ${c.target}: ${removed.canceled.length} queued job(s) canceled, ${removed.interrupted.length} running job(s) interrupted`);
  return { ok: true, name, ...removed };
}
