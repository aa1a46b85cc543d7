/** Agent sockets: identity in the tag + attachment (re-validated on read), and sending frames. */
import { type WorkerMessage } from "../../../shared/protocol.ts";
import { NAME_PATTERN } from "../../../shared/patterns.ts";
import { Reader } from "../../../shared/reader.ts";
import { connectedAgentNames, getAgent, markGone, recordDisconnect, touchAgent } from "./agents.ts";
import { logInfo } from "../../console-lines.ts";

export interface Attachment {
  agent: string;
  connId: string;
  connectedAt: number;
}

/** The attachment survives hibernation as structured data; read it back defensively. */
export function readAttachment(ws: WebSocket): Attachment | null {
  try {
    const r = new Reader(ws.deserializeAttachment(), "attachment");
    return {
      agent: r.field("agent").string({ pattern: NAME_PATTERN }),
      connId: r.field("connId").string({ max: 64 }),
      connectedAt: r.field("connectedAt").int({ min: 0 }),
    };
  } catch {
    return null;
  }
}

export function sendFrame(ws: WebSocket, message: WorkerMessage): boolean {
  try {
    ws.send(JSON.stringify(message));
    return true;
  } catch {
    return false; // closed or closing: the agent resyncs from stored state when it reconnects
  }
}

export function sendError(ws: WebSocket, code: string, message: string): void {
  sendFrame(ws, { type: "error", code, message } satisfies WorkerMessage);
}

/** The agent's live (hello'd) socket, if it has one. */
export function liveSocket(ctx: DurableObjectState, sql: SqlStorage, agent: string): WebSocket | null {
  const row = getAgent(sql, agent);
  if (!row || row.connected !== 1 || row.conn_id === null) return null;
  for (const ws of ctx.getWebSockets(agent)) {
    if (readAttachment(ws)?.connId === row.conn_id) return ws;
  }
  return null;
}

/** Close codes the DO sends (4000, replaced by a newer connection, is the agent's CLOSE_REPLACED). */
export const CLOSE_REPLACED = 4000;
export const CLOSE_ROTATED = 4001;
export const CLOSE_REVOKED = 4003;
export const CLOSE_LIMIT = 4008;

/** Closes every socket tagged `agent`; returns the identities of those it closed. */
export function closeAgentSockets(ctx: DurableObjectState, agent: string, code: number, reason: string): Attachment[] {
  const closed: Attachment[] = [];
  for (const ws of ctx.getWebSockets(agent)) {
    const att = readAttachment(ws);
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
    if (att) closed.push(att);
  }
  return closed;
}

const RESERVED_CLOSE_CODES = new Set([1005, 1006, 1015]);

/** Completes the close handshake the peer started; reserved codes mean there is no peer to answer. */
export function completeClose(ws: WebSocket, code: number, reason: string): void {
  if (RESERVED_CLOSE_CODES.has(code)) return;
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}

/**
 * Makes the `agents` rows agree with the sockets the runtime really holds. A worker restart (a code
 * update, a crash, `wrangler dev` killed) drops every socket without a close event, so a row can say
 * `connected` for an agent that is gone — and a connected agent's running job never goes stale. An
 * agent whose live socket is missing is recorded as disconnected now (its stale deadline starts); one
 * whose socket is there counts as seen now. Returns the agents found gone, and logs each.
 */
export function reconcileConnections(ctx: DurableObjectState, sql: SqlStorage, now: number): string[] {
  const gone: string[] = [];
  for (const name of connectedAgentNames(sql)) {
    if (liveSocket(ctx, sql, name)) {
      touchAgent(sql, name, now);
      continue;
    }
    markGone(sql, name, now);
    gone.push(name);
    logInfo(`[agent ${name}] disconnected (its socket is gone: the worker restarted)`);
  }
  return gone;
}

/** A socket closed or failed: if it was its agent's live one, the agent is disconnected from now (logged). Returns whether it was. */
export function socketGone(sql: SqlStorage, ws: WebSocket, why: string, now: number): boolean {
  const att = readAttachment(ws);
  if (!att || !recordDisconnect(sql, att.agent, att.connId, now)) return false;
  logInfo(`[agent ${att.agent}] disconnected (${why})`);
  return true;
}

/** Closes every socket of `agent` and records the live one as gone now (its close event may never come). */
export function closeAndForget(ctx: DurableObjectState, agent: string, code: number, reason: string, now: number): void {
  for (const att of closeAgentSockets(ctx, agent, code, reason)) recordDisconnect(ctx.storage.sql, agent, att.connId, now);
}
