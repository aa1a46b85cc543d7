/**
 * Headers for every dashboard HTML answer (and its redirects), through Hono's `secureHeaders`: the
 * page's content security policy, never framed (`X-Frame-Options: DENY` for browsers that predate
 * `frame-ancestors`; Hono's default is SAMEORIGIN), the referrer kept to this origin (`same-origin`;
 * Hono's default `no-referrer` would drop it on the dashboard's own links), never sniffed, and Hono's
 * other defaults (HSTS, COOP/CORP same-origin, Origin-Agent-Cluster, …). Never cached either (it sits
 * behind a session), which is not secureHeaders' concern. Set after the handler, so error answers get
 * them too.
 */
import type { MiddlewareHandler } from "hono";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "./app-env.ts";

export type ContentSecurityPolicy = NonNullable<NonNullable<Parameters<typeof secureHeaders>[0]>["contentSecurityPolicy"]>;

export interface PageHeadersOptions {
  contentSecurityPolicy: ContentSecurityPolicy;
}

export function pageHeaders(options: PageHeadersOptions): MiddlewareHandler<AppEnv> {
  const { contentSecurityPolicy } = options;
  if (Object.keys(contentSecurityPolicy).length === 0) throw new TypeError("[pageHeaders] contentSecurityPolicy must not be empty");
  const secure = secureHeaders({ contentSecurityPolicy, xFrameOptions: "DENY", referrerPolicy: "same-origin" });
  return async function pageHeadersMiddleware(c, next) {
    await secure(c, next);
    c.res.headers.set("Cache-Control", "no-store");
  };
}
