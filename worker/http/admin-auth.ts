/**
 * The admin API's door: `Authorization: Bearer <ADMIN_TOKEN>` (scripts, the CLI) or the dashboard's
 * session cookie (session.ts). A browser sends the cookie by itself, so a state-changing call that
 * carries it must also say it comes from this origin (`Origin` equal to the request's own): SameSite
 * already keeps other sites' requests cookie-less, this is the second lock (CSRF). A bearer header
 * cannot be forged cross-site without CORS, which this worker never grants, so bearer needs no Origin.
 * Checks in order: secret set (500) → bearer given (ok or 401) → cookie (ok, 403 cross-origin) → 401.
 */
import type { Context, MiddlewareHandler } from "hono";
import { logMissingSecret, missingSecretMessage, type SecretName, secretValue } from "./admin-secret.ts";
import type { AppEnv } from "./app-env.ts";
import { bearerToken } from "./bearer-token.ts";
import { tokensEqual } from "./constant-time.ts";
import { sessionCookieValue, verifySession } from "./session.ts";

export interface AdminAuthOptions {
  /** The binding holding the admin token. */
  secretName: SecretName;
}

const SAFE_METHODS = new Set(["GET", "HEAD"]);

/** Whether the request's `Origin` names the origin it was sent to. */
export function sameOrigin(c: Context<AppEnv>): boolean {
  const origin = c.req.header("Origin");
  return origin !== undefined && origin === new URL(c.req.url).origin;
}

/** Whether the request carries a valid session cookie for this admin token (never throws). */
export function hasSession(c: Context<AppEnv>, adminToken: string, nowMs: number = Date.now()): Promise<boolean> {
  return verifySession(adminToken, sessionCookieValue(c.req.header("Cookie")), nowMs);
}

export function adminAuth(options: AdminAuthOptions): MiddlewareHandler<AppEnv> {
  const { secretName } = options;
  return async function adminAuthMiddleware(c, next) {
    const expected = secretValue(c.env, secretName);
    if (expected === null) {
      logMissingSecret(secretName);
      return c.json({ error: missingSecretMessage(secretName) }, 500);
    }
    const authorization = c.req.header("Authorization");
    if (authorization !== undefined) {
      const given = bearerToken(authorization);
      if (given !== null && (await tokensEqual(given, expected))) return next();
      return refused(c);
    }
    if (await hasSession(c, expected)) {
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
