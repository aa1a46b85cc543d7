/**
 * Dashboard sessions against the server's record (AdminState, through admin-state-stub.ts): a cookie
 * opens a door only while its session has not been ended — by its logout, or by "sign out everywhere".
 */
import type { Context } from "hono";
import { adminState } from "./admin-state-stub.ts";
import type { AppEnv } from "./app-env.ts";
import { type SessionClaims, verifySession } from "./login-session.ts";

/** The request's session: its cookie verifies for this admin token and it has not been ended. */
export async function liveSession(c: Context<AppEnv>, adminToken: string, nowMs: number = Date.now()): Promise<SessionClaims | null> {
  const claims = await verifySession(adminToken, c.req.header("Cookie"), nowMs);
  if (claims === null) return null;
  const state = await adminState(c.env, adminToken);
  return (await state.sessionLive(claims.sid, claims.gen)) ? claims : null;
}

/** Ends this one session on the server, until its cookie would have expired anyway. */
export async function endSession(env: Env, adminToken: string, session: SessionClaims): Promise<void> {
  await (await adminState(env, adminToken)).endSession(session.sid, session.exp * 1000);
}

/** Ends every session signed in so far (the bearer token is untouched: rotate ADMIN_TOKEN for that). */
export async function endEverySession(env: Env, adminToken: string): Promise<void> {
  await (await adminState(env, adminToken)).endAllSessions();
}
