/**
 * The admin API's door: `Authorization: Bearer <ADMIN_TOKEN>` (scripts, the CLI) or the dashboard's
 * session cookie (login-session.ts, still live: login-session-store.ts). A browser sends the cookie by itself, so
 * a state-changing call that carries it must also say it comes from this origin (`Origin` equal to the
 * request's own): SameSite already keeps other sites' requests cookie-less, this is the second lock
 * (CSRF). A bearer header cannot be forged cross-site without CORS, which this worker never grants, so
 * bearer needs no Origin. Checks in order: token set and long enough (500) → bearer given (ok or 401)
 * → cookie (ok, 403 cross-origin) → 401.
 *
 * Not Hono's `bearerAuth`: keeping this door's behaviour would override all it decides but the header
 * parsing (`verifyToken` for the comparison — its default also walks the plain strings, as long as the
 * longer one — and all three refusals for the one 401 body, where it answers a malformed header 400),
 * its RFC 6750 token pattern would refuse ADMIN_TOKENs that work today, and the agent sockets need
 * bearer-token.ts anyway. docs/dependencies.md has the measurements.
 */
import type { Context, MiddlewareHandler } from "hono";
import { logAdminTokenProblem, readAdminToken } from "./admin-secret.ts";
import type { AppEnv } from "./app-env.ts";
import { bearerToken } from "./bearer-token.ts";
import { tokensEqual } from "./constant-time.ts";
import { liveSession } from "./login-session-store.ts";

const SAFE_METHODS = new Set(["GET", "HEAD"]);

/** Whether the request's `Origin` names the origin it was sent to. */
export function sameOrigin(c: Context<AppEnv>): boolean {
  const origin = c.req.header("Origin");
  return origin !== undefined && origin === new URL(c.req.url).origin;
}

export function adminAuth(): MiddlewareHandler<AppEnv> {
  return async function adminAuthMiddleware(c, next) {
    const admin = readAdminToken(c.env);
    if (!admin.ok) {
      logAdminTokenProblem(admin.problem);
      return c.json({ error: admin.problem }, 500);
    }
    const authorization = c.req.header("Authorization");
    if (authorization !== undefined) {
      const given = bearerToken(authorization);
      if (given !== null && (await tokensEqual(given, admin.token))) return next();
      return refused(c);
    }
    if (await liveSession(c, admin.token)) {
      if (!SAFE_METHODS.has(c.req.method) && !sameOrigin(c)) return c.json({ error: "cross-origin request refused" }, 403);
      return next();
    }
    return refused(c);
  };
}

function refused(c: Context<AppEnv>): Response {
  c.header("WWW-Authenticate", 'Bearer realm="hookrelay"');
  return c.json({ error: "missing or invalid bearer token" }, 401);
}
