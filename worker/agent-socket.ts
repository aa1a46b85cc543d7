/**
 * GET /agent?target=T&agent=NAME — an agent's WebSocket. The names are checked here; the token is
 * checked by the target's DO against the hash it keeps for that agent name (agent-tokens.ts).
 */
import { Hono } from "hono";
import { NAME_HINT, NAME_PATTERN } from "../shared/patterns.ts";
import type { AppEnv } from "./http/app-env.ts";
import { bearerToken } from "./http/bearer-token.ts";
import { AGENT_TOKEN_REFUSED } from "./target-object/agents/agent-tokens.ts";
import { logWarn } from "./console-lines.ts";

let sharedTokenNoted = false;

/** The old shared AGENT_TOKEN secret opens nothing now; say so once per isolate if it is still set. */
function noteSharedToken(env: object): void {
  if (sharedTokenNoted || !("AGENT_TOKEN" in env)) return;
  sharedTokenNoted = true;
  logWarn(
    "AGENT_TOKEN is set on the worker but ignored: agents need their own tokens (POST /api/targets/:target/agents {\"name\"}); remove it with `wrangler secret delete AGENT_TOKEN`",
  );
}

export function agentSocketRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => {
    noteSharedToken(c.env);
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      return c.json({ error: "expected a WebSocket upgrade (Upgrade: websocket)" }, 426);
    }
    const target = c.req.query("target") ?? "";
    const agent = c.req.query("agent") ?? "";
    if (!NAME_PATTERN.test(target)) return c.json({ error: `target: ${NAME_HINT}` }, 400);
    if (!NAME_PATTERN.test(agent)) return c.json({ error: `agent: ${NAME_HINT}` }, 400);
    if (bearerToken(c.req.header("Authorization")) === null) {
      c.header("WWW-Authenticate", 'Bearer realm="hookrelay"');
      return c.json({ error: AGENT_TOKEN_REFUSED }, 401);
    }
    return c.env.TARGET.getByName(target).fetch(c.req.raw);
  });
  return app;
}
