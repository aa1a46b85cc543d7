/** Agent sockets: identity in the tag + attachment (re-validated on read), and sending frames. */
import { formatDuration } from "../../duration-text.ts";
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

/**
 * Attachments read while this instance lives: a socket's is written once, at its upgrade, and read on
 * every frame it brings (measured: deserializing and checking it was ~10 % of a frame's time in a fleet
 * of 100). Weak: a socket gone is dropped; after hibernation the map starts empty and reads again.
 */
const attachments = new WeakMap<WebSocket, Attachment>();

/** The attachment survives hibernation as structured data; read it back defensively. */
export function readAttachment(ws: WebSocket): Attachment | null {
  const known = attachments.get(ws);
  if (known !== undefined) return known;
  try {
    const r = new Reader(ws.deserializeAttachment(), "attachment");
    const att: Attachment = {
      agent: r.field("agent").string({ pattern: NAME_PATTERN }),
      connId: r.field("connId").string({ max: 64 }),
      connectedAt: r.field("connectedAt").int({ min: 0 }),
    };
    attachments.set(ws, att);
    return att;
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
/** Nothing heard on the socket, not even a heartbeat, for longer than AGENT_STALE_SECONDS (a silent partition). */
export const CLOSE_SILENT = 4010;

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
 * agent whose live socket is missing is recorded as disconnected now (its stale deadline starts).
 *
 * With `staleMs` (the alarm's look), a socket that is there must also have been heard from: a frame
 * (`last_seen_at`) or a heartbeat the runtime answered without waking the object
 * (getWebSocketAutoResponseTimestamp). A network that drops packets without closing anything (a NAT
 * that forgot the flow, a partition) leaves the socket open on this side for as long as TCP takes to
 * give up; one silent past `staleMs` is closed and the agent recorded as disconnected from when it was
 * last heard, so its running job goes stale as an absent agent's does. One heard from counts as seen
 * then. Without `staleMs` (the object waking: after a restart, or after hibernating, when its sockets
 * outlive the instance) a socket that is there is left as it was: being there says nothing of whether
 * anything came through it, and an object evicted between two looks would otherwise count a silent
 * socket as heard on every wake — its agent's job would never go stale.
 * Returns the agents found gone, and logs each.
 */
export function reconcileConnections(ctx: DurableObjectState, sql: SqlStorage, now: number, staleMs: number | null = null): string[] {
  const gone: string[] = [];
  for (const name of connectedAgentNames(sql)) {
    const ws = liveSocket(ctx, sql, name);
    if (ws && staleMs === null) continue;
    if (ws && staleMs !== null) {
      const row = getAgent(sql, name);
      const pinged = ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
      const heard = Math.max(row?.last_seen_at ?? 0, row?.connected_at ?? 0, pinged);
      if (now - heard <= staleMs) {
        touchAgent(sql, name, heard);
        continue;
      }
      try {
        ws.close(CLOSE_SILENT, "nothing heard, not even a heartbeat");
      } catch {
        // already closing
      }
      markGone(sql, name, heard);
      gone.push(name);
      logInfo(`[agent ${name}] disconnected (nothing heard from it, not even a heartbeat, for more than ${formatDuration(staleMs)}: its connection was closed)`);
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
