/**
 * The admin API's door: `Authorization: Bearer <ADMIN_TOKEN>` (scripts, the CLI) or the dashboard's
 * session cookie (login-session.ts, still live: login-session-store.ts). A browser sends the cookie by itself, so
 * a state-changing call that carries it must also say it comes from this origin (`Origin` equal to the
 * request's own): SameSite already keeps other sites' requests cookie-less, this is the second lock
 * (CSRF). A bearer header cannot be forged cross-site without CORS, which this worker never grants, so
 * bearer needs no Origin. Checks in order: token set and long enough (500) → bearer given (ok or 401)
 * → cookie (ok, 403 cross-origin) → 401.
 *
 * The bearer header is Hono's `bearerAuth` with two of its defaults replaced: the comparison is ours
 * (constant-time.ts hashes both sides and compares the digests only; Hono's default also walks the
 * plain strings, for as many characters as the longer one has), and every refusal is the same 401 with
 * the same body, where Hono would answer a malformed header 400 and name which check failed.
 */
import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { logAdminTokenProblem, readAdminToken } from "./admin-secret.ts";
import type { AppEnv } from "./app-env.ts";
import { tokensEqual } from "./constant-time.ts";
import { liveSession } from "./login-session-store.ts";

const SAFE_METHODS = new Set(["GET", "HEAD"]);
const CHALLENGE = 'Bearer realm="hookrelay"';

/** Whether the request's `Origin` names the origin it was sent to. */
export function sameOrigin(c: Context<AppEnv>): boolean {
  const origin = c.req.header("Origin");
  return origin !== undefined && origin === new URL(c.req.url).origin;
}

function refused(c: Context): Response {
  c.header("WWW-Authenticate", CHALLENGE);
  return c.json({ error: "missing or invalid bearer token" }, 401);
}

export function adminAuth(): MiddlewareHandler<AppEnv> {
  const refusal = { wwwAuthenticateHeader: CHALLENGE, message: refused };
  const bearer = bearerAuth<AppEnv>({
    realm: "hookrelay",
    verifyToken: async (given, c) => {
      const admin = readAdminToken(c.env);
      return admin.ok && (await tokensEqual(given, admin.token));
    },
    noAuthenticationHeader: refusal,
    invalidAuthenticationHeader: refusal,
    invalidToken: refusal,
  });
  return async function adminAuthMiddleware(c, next) {
    const admin = readAdminToken(c.env);
    if (!admin.ok) {
      logAdminTokenProblem(admin.problem);
      return c.json({ error: admin.problem }, 500);
    }
    if (c.req.header("Authorization") !== undefined) return bearer(c, next);
    if (await liveSession(c, admin.token)) {
      if (!SAFE_METHODS.has(c.req.method) && !sameOrigin(c)) return c.json({ error: "cross-origin request refused" }, 403);
      return next();
    }
    return refused(c);
  };
}
