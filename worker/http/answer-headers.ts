/**
 * Headers for answers that carry operator or delivery data (/api, /webhook): never stored by a cache
 * or a browser (`Cache-Control: no-store`), never content-sniffed into something executable
 * (`X-Content-Type-Options: nosniff`). Set after the handler, so errors (401, 404) get them too.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./app-env.ts";

export interface AnswerHeadersOptions {
  /** Default "no-store": these answers are per request and may hold job data. */
  cacheControl?: string;
}

export function answerHeaders(options: AnswerHeadersOptions = {}): MiddlewareHandler<AppEnv> {
  const cacheControl = options.cacheControl ?? "no-store";
  return async function answerHeadersMiddleware(c, next) {
    await next();
    c.res.headers.set("Cache-Control", cacheControl);
    c.res.headers.set("X-Content-Type-Options", "nosniff");
  };
}
