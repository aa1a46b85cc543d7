/**
 * The dashboard's pages and its sign-in. Every page is the same shell (page.ts) that reads the admin API
 * with the session cookie; the URLs are stable (GitHub's `log_url`, notifications link to them).
 * `/login` takes the admin token once and sets the session cookie (http/login-session.ts); `/logout` ends
 * that session on the server too, `/logout/everywhere` every session (http/login-session-store.ts).
 * A page without a session redirects to `/login?next=<the page>` (from another site, through a same-site
 * hop first: see sameSiteHop). Failed sign-ins are counted per client address and slowed past a few
 * (admin-object/login-throttle.ts): 429 with Retry-After.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { adminState } from "../http/admin-state-stub.ts";
import { logAdminTokenProblem, readAdminToken } from "../http/admin-secret.ts";
import { sameOrigin } from "../http/admin-auth.ts";
import type { AppEnv } from "../http/app-env.ts";
import { clientAddress } from "../http/client-address.ts";
import { tokensEqual } from "../http/constant-time.ts";
import { formBodyLimit, readFormBody } from "../http/form-body.ts";
import { safeNextPath } from "../http/next-path.ts";
import { pageHeaders } from "../http/page-headers.ts";
import { sessionClearCookie, sessionSetCookie } from "../http/login-session.ts";
import { endEverySession, endSession, liveSession } from "../http/login-session-store.ts";
import { logInfo, logWarn } from "../console-lines.ts";
import { DASHBOARD_CSP, loginHtml, pageHtml } from "./page.ts";

/** The pages; each is the same shell, the client routes by `location.pathname`. */
export const PAGE_PATHS = ["/", "/setup", "/targets/:target", "/targets/:target/deployments/:id", "/targets/:target/jobs/:id"] as const;
/** A sign-in form is two short fields; anything bigger is not one. */
export const MAX_LOGIN_BYTES = 8 * 1024;
export const WRONG_TOKEN = "That is not the admin token.";
export const TOO_MANY_TRIES = "Too many wrong tokens from this address: try again in a few minutes.";

const HTML = { "Content-Type": "text/html; charset=utf-8" };

/** The admin token, or the 500 that names what is wrong with it. */
function adminTokenOr500(c: Context<AppEnv>): { ok: true; token: string } | { ok: false; answer: Response } {
  const admin = readAdminToken(c.env);
  if (admin.ok) return admin;
  logAdminTokenProblem(admin.problem);
  return { ok: false, answer: c.text(admin.problem, 500) };
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
    const admin = adminTokenOr500(c);
    if (!admin.ok) return admin.answer;
    if (await liveSession(c, admin.token)) return next();
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
  for (const path of ["/", "/setup", "/login", "/logout", "/logout/everywhere", "/targets/*"]) app.use(path, headers);

  app.get("/login", async function loginPage(c) {
    const admin = adminTokenOr500(c);
    if (!admin.ok) return admin.answer;
    const next = safeNextPath(c.req.query("next"), c.req.url);
    if (await liveSession(c, admin.token)) return c.redirect(next, 303);
    return c.body(loginHtml({ next, error: null }), 200, HTML);
  });

  app.post("/login", formBodyLimit(MAX_LOGIN_BYTES), async function login(c) {
    const admin = adminTokenOr500(c);
    if (!admin.ok) return admin.answer;
    const form = await readFormBody(c);
    if (!form.ok) return c.text(form.error, form.status);
    const tokens = form.fields.getAll("token");
    const nexts = form.fields.getAll("next");
    if (tokens.length !== 1 || nexts.length > 1) return c.text("the form needs one token field and at most one next field", 400);
    const next = safeNextPath(nexts[0], c.req.url);
    // Before the token is compared: a guesser past its failures learns nothing, not even a right guess.
    const client = clientAddress(c.req.header("CF-Connecting-IP"));
    const state = await adminState(c.env, admin.token);
    const gate = await state.beginLogin(client);
    if (!gate.ok) {
      logWarn(`sign-in from ${client} refused: too many wrong tokens (retry after ${gate.retryAfterSeconds} s)`);
      c.header("Retry-After", String(gate.retryAfterSeconds));
      return c.body(loginHtml({ next, error: TOO_MANY_TRIES }), 429, HTML);
    }
    if (!(await tokensEqual((tokens[0] ?? "").trim(), admin.token))) {
      logWarn(`sign-in from ${client}: wrong admin token`);
      return c.body(loginHtml({ next, error: WRONG_TOKEN }), 401, HTML);
    }
    const generation = await state.loginSucceeded(client);
    c.header("Set-Cookie", await sessionSetCookie(admin.token, { gen: generation }, c.req.url));
    return c.redirect(next, 303);
  });

  app.post("/logout", async function logout(c) {
    // A browser always sends Origin on a form POST; another site's may not log the operator out.
    if (c.req.header("Origin") !== undefined && !sameOrigin(c)) return c.text("cross-origin request refused", 403);
    const admin = readAdminToken(c.env);
    const session = admin.ok ? await liveSession(c, admin.token) : null;
    // The cookie stops opening anything now, not when it expires: a copy of it is worthless too.
    if (admin.ok && session) await endSession(c.env, admin.token, session);
    c.header("Set-Cookie", sessionClearCookie(c.req.url));
    return c.redirect("/login", 303);
  });

  // The dashboard's "Sign out everywhere": needs a live session of its own (and this origin).
  app.post("/logout/everywhere", async function logoutEverywhere(c) {
    if (!sameOrigin(c)) return c.text("cross-origin request refused", 403);
    const admin = adminTokenOr500(c);
    if (!admin.ok) return admin.answer;
    if (await liveSession(c, admin.token)) {
      await endEverySession(c.env, admin.token);
      logInfo("every dashboard session ended (the dashboard's sign out everywhere)");
    }
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
