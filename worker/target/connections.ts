/** Agent sockets: identity in the tag + attachment (re-validated on read), and sending frames. */
import { NAME_PATTERN, type WorkerMessage } from "../../shared/protocol.ts";
import { Reader } from "../../shared/reader.ts";
import { getAgent } from "./agents.ts";

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
