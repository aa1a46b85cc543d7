/**
 * Headers for every dashboard HTML answer (and its redirects): the page's content security policy,
 * never framed (`X-Frame-Options` for browsers that predate `frame-ancestors`), never cached (it sits
 * behind a session), never sniffed, and the referrer kept to this origin. Set after the handler, so
 * error answers get them too.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./app-env.ts";

export interface PageHeadersOptions {
  contentSecurityPolicy: string;
}

export function pageHeaders(options: PageHeadersOptions): MiddlewareHandler<AppEnv> {
  const { contentSecurityPolicy } = options;
  if (contentSecurityPolicy.trim() === "") throw new TypeError("[pageHeaders] contentSecurityPolicy must not be empty");
  return async function pageHeadersMiddleware(c, next) {
    await next();
    c.res.headers.set("Content-Security-Policy", contentSecurityPolicy);
    c.res.headers.set("X-Frame-Options", "DENY");
    c.res.headers.set("Cache-Control", "no-store");
    c.res.headers.set("X-Content-Type-Options", "nosniff");
    c.res.headers.set("Referrer-Policy", "same-origin");
  };
}
