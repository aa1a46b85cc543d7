/**
 * GET /agent/hookrelay-agent.mjs and /agent/hookrelay-agent.mjs.sha256 — the agent bundle this worker
 * was built with (scripts/build-agent.ts, run by wrangler.toml's [build] before every `wrangler dev` and
 * `wrangler deploy`), so a server with distro Node needs no npm: `curl -fsSLo hookrelay-agent.mjs …` and
 * `sha256sum -c`. Public: the bundle holds no secret and no config. Workers Static Assets under agent/ of
 * the [assets] directory, read through the ASSETS binding like the dashboard's (dashboard/assets.ts).
 * Only these two names are looked up; GET /agent itself stays the agents' WebSocket (agent-socket.ts).
 */
import { Hono } from "hono";
import type { AppEnv } from "./http/app-env.ts";
import { serveAsset } from "./http/static-asset.ts";

export const AGENT_BUNDLE = "hookrelay-agent.mjs";

const FILES: Record<string, string> = {
  [AGENT_BUNDLE]: "text/javascript; charset=utf-8",
  [`${AGENT_BUNDLE}.sha256`]: "text/plain; charset=utf-8",
};

export function agentBundleRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  for (const [file, type] of Object.entries(FILES)) {
    app.on(["GET", "HEAD"], `/${file}`, async function agentFile(c) {
      const res = await serveAsset(c, `/agent/${file}`, type, { contentLength: true });
      return (
        res ??
        c.json({ error: "this worker has no agent bundle among its assets: `npm run build` makes it (wrangler.toml's [build] runs it before every deploy), then deploy again" }, 404)
      );
    });
  }
  return app;
}
