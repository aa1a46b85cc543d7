/**
 * One Workers Static Asset (wrangler.toml [assets]), read through the ASSETS binding so that every
 * answer gets the same headers, whatever the asset layer sets: its type, nosniff, revalidated every time
 * (an ETag makes that cheap, and after a deploy the new file is used at once), 304 for a matching
 * If-None-Match, no body for HEAD. Null when the asset layer has no such file.
 */
import type { Context } from "hono";
import type { AppEnv } from "./app-env.ts";

export async function serveAsset(c: Context<AppEnv>, path: string, type: string, o: { contentLength?: boolean } = {}): Promise<Response | null> {
  const inm = c.req.header("if-none-match");
  const res = await c.env.ASSETS.fetch(new Request(new URL(path, c.req.url), { method: c.req.method, headers: inm ? { "if-none-match": inm } : {} }));
  if (res.status !== 200 && res.status !== 304) return null;
  const headers = new Headers({ "content-type": type, "x-content-type-options": "nosniff", "cache-control": "no-cache" });
  const etag = res.headers.get("etag");
  if (etag) headers.set("etag", etag);
  const length = res.headers.get("content-length");
  if (o.contentLength && length && res.status === 200) headers.set("content-length", length);
  return new Response(res.status === 304 || c.req.method === "HEAD" ? null : res.body, { status: res.status, headers });
}
