/**
 * GET /assets/<file> — the dashboard's client files (worker/dashboard/client/), public: they hold no
 * data and no secret. They are Workers Static Assets (wrangler.toml [assets], run_worker_first), served
 * by http/static-asset.ts with the same headers as every asset.
 */
import { Hono } from "hono";
import type { AppEnv } from "../http/app-env.ts";
import { serveAsset } from "../http/static-asset.ts";

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

/** A flat file name: letters, digits, '-' and '.', ending in a served type. Nothing else is looked up. */
const FILE = /^([a-z0-9][a-z0-9-]*)\.(js|css)$/;

export function assetRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.on(["GET", "HEAD"], "/:file", async function asset(c) {
    const m = FILE.exec(c.req.param("file"));
    const type = m ? TYPES[m[2] ?? ""] : undefined;
    if (!m || !type) return c.text("not found", 404, { "x-content-type-options": "nosniff" });
    return (await serveAsset(c, `/${m[0]}`, type)) ?? c.text("not found", 404, { "x-content-type-options": "nosniff" });
  });
  return app;
}

