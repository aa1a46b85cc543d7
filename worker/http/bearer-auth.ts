/**
 * `Authorization: Bearer <token>` against a secret binding, compared in constant time.
 * A missing secret fails closed: 500 naming it, never an open door.
 */
import type { MiddlewareHandler } from "hono";
import { logMissingSecret, missingSecretMessage, type SecretName, secretValue } from "./admin-secret.ts";
import type { AppEnv } from "./app-env.ts";
import { tokensEqual } from "./constant-time.ts";

export interface BearerAuthOptions {
  /** The binding holding the expected token, e.g. "ADMIN_TOKEN". */
  secretName: SecretName;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export function bearerToken(header: string | undefined | null): string | null {
  return BEARER.exec(header ?? "")?.[1] ?? null;
}

export function bearerAuth(options: BearerAuthOptions): MiddlewareHandler<AppEnv> {
  const { secretName } = options;
  return async function bearerAuthMiddleware(c, next) {
    const expected = secretValue(c.env, secretName);
    if (expected === null) {
      logMissingSecret(secretName);
      return c.json({ error: missingSecretMessage(secretName) }, 500);
    }
    const given = bearerToken(c.req.header("Authorization"));
    if (given === null || !(await tokensEqual(given, expected))) {
      c.header("WWW-Authenticate", 'Bearer realm="hookrelay"');
      return c.json({ error: "missing or invalid bearer token" }, 401);
    }
    await next();
  };
}
