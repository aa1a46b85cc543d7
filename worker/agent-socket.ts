/** GET /agent?target=T&agent=NAME — an agent's WebSocket, handed to the target's DO after auth. */
import { Hono } from "hono";
import { NAME_HINT, NAME_PATTERN } from "../shared/protocol.ts";
import type { AppEnv } from "./http/app-env.ts";
import { bearerAuth } from "./http/bearer-auth.ts";

export function agentSocketRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/", bearerAuth({ secretName: "AGENT_TOKEN" }), async (c) => {
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      return c.json({ error: "expected a WebSocket upgrade (Upgrade: websocket)" }, 426);
    }
    const target = c.req.query("target") ?? "";
    const agent = c.req.query("agent") ?? "";
    if (!NAME_PATTERN.test(target)) return c.json({ error: `target: ${NAME_HINT}` }, 400);
    if (!NAME_PATTERN.test(agent)) return c.json({ error: `agent: ${NAME_HINT}` }, 400);
    return c.env.TARGET.getByName(target).fetch(c.req.raw);
  });
  return app;
}
