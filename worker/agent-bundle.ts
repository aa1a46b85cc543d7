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

export const AGENT_BUNDLE = "hookrelay-agent.mjs";

const FILES: Record<string, string> = {
  [AGENT_BUNDLE]: "text/javascript; charset=utf-8",
  [`${AGENT_BUNDLE}.sha256`]: "text/plain; charset=utf-8",
};

export function agentBundleRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  for (const [file, type] of Object.entries(FILES)) {
    app.on(["GET", "HEAD"], `/${file}`, async function agentFile(c) {
      const headers: Record<string, string> = {};
      const inm = c.req.header("if-none-match");
      if (inm) headers["if-none-match"] = inm;
      const res = await c.env.ASSETS.fetch(new Request(new URL(`/agent/${file}`, c.req.url), { method: c.req.method, headers }));
      if (res.status !== 200 && res.status !== 304) {
        return c.json({ error: "this worker has no agent bundle among its assets: `npm run build` makes it (wrangler.toml's [build] runs it before every deploy), then deploy again" }, 404);
      }
      const answer = new Headers({
        "content-type": type,
        "x-content-type-options": "nosniff",
        // Revalidate every time (an ETag makes that cheap): after a deploy, the new bundle at once.
        "cache-control": "no-cache",
      });
      const etag = res.headers.get("etag");
      if (etag) answer.set("etag", etag);
      const length = res.headers.get("content-length");
      if (length && res.status === 200) answer.set("content-length", length);
      return new Response(res.status === 304 || c.req.method === "HEAD" ? null : res.body, { status: res.status, headers: answer });
    });
  }
  return app;
}
