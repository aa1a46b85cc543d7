/** The agent WebSocket upgrade (GET /agent, forwarded by the worker): only the token registered for this agent name opens it. */
import { NAME_HINT, NAME_PATTERN } from "../../../shared/patterns.ts";
import { bearerToken } from "../../http/bearer-token.ts";
import { AGENT_TOKEN_REFUSED, sha256, tokenMatches } from "../agents/agent-tokens.ts";
import { recordNewConnection } from "../agents/agents.ts";
import { type Attachment, CLOSE_REPLACED } from "../agents/connections.ts";
import { logInfo, logWarn } from "../../console-lines.ts";

/** The upgrade's answer; `opened` when a socket was accepted (a deadline may have moved). */
export async function openAgentSocket(ctx: DurableObjectState, target: string, request: Request): Promise<{ response: Response; opened: boolean }> {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    return { response: Response.json({ error: "expected a WebSocket upgrade" }, { status: 426 }), opened: false };
  }
  const agent = new URL(request.url).searchParams.get("agent") ?? "";
  if (!NAME_PATTERN.test(agent)) return { response: Response.json({ error: `agent name ${NAME_HINT}` }, { status: 400 }), opened: false };
  const given = bearerToken(request.headers.get("Authorization"));
  const hash = await sha256(given ?? "");
  // Read after the await: a rotation or revocation that landed meanwhile counts.
  if (given === null || !tokenMatches(ctx.storage.sql, agent, hash)) {
    logWarn(`[agent ${agent}] refused in target ${target}: ${AGENT_TOKEN_REFUSED}`);
    const headers = { "WWW-Authenticate": 'Bearer realm="hookrelay"' };
    return { response: Response.json({ error: AGENT_TOKEN_REFUSED }, { status: 401, headers }), opened: false };
  }

  const now = Date.now();
  for (const old of ctx.getWebSockets(agent)) {
    try {
      old.close(CLOSE_REPLACED, "replaced by a newer connection");
    } catch {
      // already closing
    }
  }
  const { 0: client, 1: server } = new WebSocketPair();
  const attachment: Attachment = { agent, connId: crypto.randomUUID(), connectedAt: now };
  ctx.acceptWebSocket(server, [agent]);
  server.serializeAttachment(attachment);
  // The live socket it replaces counts as gone from now: its running job's stale deadline starts,
  // whether or not this one ever says hello.
  recordNewConnection(ctx.storage.sql, agent, attachment.connId, now);
  logInfo(`[agent ${agent}] connected to target ${target}`);
  return { response: new Response(null, { status: 101, webSocket: client }), opened: true };
}
