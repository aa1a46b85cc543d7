/**
 * The admin token binding, read the same way by every door that needs it (bearer, session, sign-in).
 * A missing, blank or short token fails closed: the caller answers 500 naming it and why, never an
 * open door. Below MIN_ADMIN_TOKEN_LENGTH a token is within reach of online guessing.
 */
import { logError } from "../console-lines.ts";

export const MIN_ADMIN_TOKEN_LENGTH = 32;

export type AdminTokenResult = { ok: true; token: string } | { ok: false; problem: string };

/** The token, trimmed, or what is wrong with it (never the token, nor its length). */
export function readAdminToken(env: Env): AdminTokenResult {
  const value: unknown = env.ADMIN_TOKEN;
  const token = typeof value === "string" ? value.trim() : "";
  if (token === "") return { ok: false, problem: "ADMIN_TOKEN secret is not set on the worker (wrangler secret put ADMIN_TOKEN)" };
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) {
    return {
      ok: false,
      problem:
        `ADMIN_TOKEN is shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters, short enough to guess online; ` +
        "make a long random one (openssl rand -hex 32) and wrangler secret put ADMIN_TOKEN",
    };
  }
  return { ok: true, token };
}

/** Logs why every request that needs the admin token is refused; the caller answers 500 with `problem`. */
export function logAdminTokenProblem(problem: string): void {
  logError(`${problem}: refusing every request that needs it`);
}
