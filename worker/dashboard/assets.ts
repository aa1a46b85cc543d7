/**
 * GET /assets/<file> — the dashboard's client files (worker/dashboard/client/), public: they hold no
 * data and no secret. They are Workers Static Assets (wrangler.toml [assets], run_worker_first), read
 * through the ASSETS binding so that every answer gets the same headers, whatever the asset layer sets.
 */
import { Hono } from "hono";
import type { AppEnv } from "../http/app-env.ts";

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
    const url = new URL(`/${m[0]}`, c.req.url);
    const res = await c.env.ASSETS.fetch(new Request(url, { method: c.req.method, headers: ifNoneMatch(c.req.header("if-none-match")) }));
    if (res.status !== 200 && res.status !== 304) return c.text("not found", 404, { "x-content-type-options": "nosniff" });
    const headers = new Headers({
      "content-type": type,
      "x-content-type-options": "nosniff",
      // Revalidate every time (an ETag makes that cheap), so a deploy's new client is used at once.
      "cache-control": "no-cache",
    });
    const etag = res.headers.get("etag");
    if (etag) headers.set("etag", etag);
    return new Response(res.status === 304 || c.req.method === "HEAD" ? null : res.body, { status: res.status, headers });
  });
  return app;
}

function ifNoneMatch(value: string | undefined): Record<string, string> {
  return value ? { "if-none-match": value } : {};
}
