/** The worker's Hono app: webhook, agent sockets, operator API, dashboard (pages, sign-in, assets), health. */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { agentBundleRoutes } from "./agent-bundle.ts";
import { agentSocketRoutes } from "./agent-socket.ts";
import { apiRoutes } from "./api/route.ts";
import { assetRoutes } from "./dashboard/assets.ts";
import { dashboardRoutes } from "./dashboard/route.ts";
import type { AppEnv } from "./http/app-env.ts";
import { answerHeaders } from "./http/answer-headers.ts";
import { targetUnavailableMessage } from "./target-object/target-unavailable.ts";
import { webhookRoutes } from "./webhook/route.ts";
import { logError } from "./console-lines.ts";

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/healthz", (c) => c.json({ ok: true }));
  app.use("/webhook/*", answerHeaders());
  app.use("/api/*", answerHeaders());
  app.route("/webhook", webhookRoutes());
  // Public: the agent bundle the worker was built with, for servers with distro Node (no npm).
  app.route("/agent", agentBundleRoutes());
  app.route("/agent", agentSocketRoutes());
  app.route("/api", apiRoutes());
  // Public: the dashboard's script and styles hold no data (it comes from /api with the session).
  app.route("/assets", assetRoutes());
  app.route("/", dashboardRoutes());
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));
  app.onError((err, c) => {
    // An answer a Hono middleware or helper threw (HTTPException, e.g. bodyLimit without onError): as it made it.
    if (err instanceof HTTPException) return err.getResponse();
    // A target whose database schema its DO cannot use (target-unavailable.ts): say so, as the DO does.
    const unavailable = targetUnavailableMessage(err);
    if (unavailable !== null) return c.json({ error: unavailable }, 503);
    logError(`${c.req.method} ${new URL(c.req.url).pathname} failed:`, err);
    return c.text("internal error", 500);
  });
  return app;
}

export const app = createApp();
