/**
 * The admin token binding, read the same way by every door that needs it (bearer, session, sign-in).
 * A missing or blank secret fails closed: the caller answers 500 naming it, never an open door.
 */
import { logError } from "../console-lines.ts";
export type SecretName = "ADMIN_TOKEN";

/** The secret, trimmed, or null when it is not set. */
export function secretValue(env: Env, name: SecretName): string | null {
  const value: unknown = env[name];
  return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
}

/** What a request that needs the missing secret is told (and the log says). */
export function missingSecretMessage(name: SecretName): string {
  return `${name} secret is not set on the worker (wrangler secret put ${name})`;
}

export function logMissingSecret(name: SecretName): void {
  logError(`${name} is not set: refusing every request that needs it`);
}
