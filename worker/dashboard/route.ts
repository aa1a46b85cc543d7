/**
 * The dashboard's pages and its sign-in. Every page is the same shell (page.ts) that reads the admin API
 * with the session cookie; the URLs are stable (GitHub's `log_url`, notifications link to them).
 * `/login` takes the admin token once and sets the session cookie (http/session.ts); `/logout` ends it.
 * A page without a session redirects to `/login?next=<the page>` (from another site, through a same-site
 * hop first: see sameSiteHop). Login attempts are not rate-limited:
 * the admin token is a long random secret, and Cloudflare's own rate limiting rules can sit in front.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { logMissingSecret, missingSecretMessage, secretValue } from "../http/admin-secret.ts";
import { hasSession, sameOrigin } from "../http/admin-auth.ts";
import type { AppEnv } from "../http/app-env.ts";
import { tokensEqual } from "../http/constant-time.ts";
import { readFormBody } from "../http/form-body.ts";
import { safeNextPath } from "../http/next-path.ts";
import { pageHeaders } from "../http/page-headers.ts";
import { sessionClearCookie, sessionSetCookie, signSession } from "../http/session.ts";
import { DASHBOARD_CSP, loginHtml, pageHtml } from "./page.ts";

/** The pages; each is the same shell, the client routes by `location.pathname`. */
export const PAGE_PATHS = ["/", "/targets/:target", "/targets/:target/deployments/:id", "/targets/:target/jobs/:id"] as const;
/** A sign-in form is two short fields; anything bigger is not one. */
export const MAX_LOGIN_BYTES = 8 * 1024;
export const WRONG_TOKEN = "That is not the admin token.";

const HTML = { "Content-Type": "text/html; charset=utf-8" };

function missingSecret(c: Context<AppEnv>): Response {
  logMissingSecret("ADMIN_TOKEN");
  return c.text(missingSecretMessage("ADMIN_TOKEN"), 500);
}

/**
 * A page arrived at from another site (a link in a GitHub status or a chat): the browser withheld the
 * SameSite=Strict cookie, so "no cookie" says nothing yet. A meta refresh (allowed by the CSP: it is not
 * script) is a navigation from this origin, which carries the cookie; /login then sends a signed-in
 * browser straight on to the page, and shows the form to anyone else. No loop: /login never comes back here.
 */
function sameSiteHop(loginUrl: string): string {
  const url = loginUrl.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=${url}"><title>hookrelay</title></head><body><p><a href="${url}">Continue to hookrelay</a></p></body></html>`;
}

/** A page: the shell with a session, else 303 to sign-in and back. */
function requireSession(): MiddlewareHandler<AppEnv> {
  return async function requireSessionMiddleware(c, next) {
    const adminToken = secretValue(c.env, "ADMIN_TOKEN");
    if (adminToken === null) return missingSecret(c);
    if (await hasSession(c, adminToken)) return next();
    const url = new URL(c.req.url);
    const login = `/login?next=${encodeURIComponent(url.pathname + url.search)}`;
    if (c.req.header("Sec-Fetch-Site") === "cross-site") return c.body(sameSiteHop(login), 200, HTML);
    return c.redirect(login, 303);
  };
}

export function dashboardRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // Only these paths: a "*" here would run for every route of the app this is mounted on at "/".
  const headers = pageHeaders({ contentSecurityPolicy: DASHBOARD_CSP });
  for (const path of ["/", "/login", "/logout", "/targets/*"]) app.use(path, headers);

  app.get("/login", async function loginPage(c) {
    const adminToken = secretValue(c.env, "ADMIN_TOKEN");
    if (adminToken === null) return missingSecret(c);
    const next = safeNextPath(c.req.query("next"), c.req.url);
    if (await hasSession(c, adminToken)) return c.redirect(next, 303);
    return c.body(loginHtml({ next, error: null }), 200, HTML);
  });

  app.post("/login", async function login(c) {
    const adminToken = secretValue(c.env, "ADMIN_TOKEN");
    if (adminToken === null) return missingSecret(c);
    const form = await readFormBody(c.req.raw, MAX_LOGIN_BYTES);
    if (!form.ok) return c.text(form.error, form.status);
    const tokens = form.fields.getAll("token");
    const nexts = form.fields.getAll("next");
    if (tokens.length !== 1 || nexts.length > 1) return c.text("the form needs one token field and at most one next field", 400);
    const next = safeNextPath(nexts[0], c.req.url);
    if (!(await tokensEqual((tokens[0] ?? "").trim(), adminToken))) {
      return c.body(loginHtml({ next, error: WRONG_TOKEN }), 401, HTML);
    }
    c.header("Set-Cookie", sessionSetCookie(await signSession(adminToken), c.req.url));
    return c.redirect(next, 303);
  });

  app.post("/logout", function logout(c) {
    // A browser always sends Origin on a form POST; another site's may not log the operator out.
    if (c.req.header("Origin") !== undefined && !sameOrigin(c)) return c.text("cross-origin request refused", 403);
    c.header("Set-Cookie", sessionClearCookie(c.req.url));
    return c.redirect("/login", 303);
  });

  const session = requireSession();
  for (const path of PAGE_PATHS) {
    app.get(path, session, function page(c) {
      return c.body(pageHtml(), 200, HTML);
    });
  }
  return app;
}
