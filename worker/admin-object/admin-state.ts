/**
 * The AdminState Durable Object: what the admin's doors remember between requests — ended dashboard
 * sessions (sessions.ts) and failed sign-ins per client address (login-throttle.ts). The worker is
 * otherwise stateless; one instance per admin token (http/admin-state-stub.ts), so a rotated token
 * starts clean, as its sessions do. SQLite is the truth; nothing lives in instance fields.
 */
import { DurableObject } from "cloudflare:workers";
import { beginLogin, clearLoginFailures, type LoginGate } from "./login-throttle.ts";
import { createTables } from "./schema.ts";
import { currentGeneration, endAllSessions, endSession, sessionLive } from "./sessions.ts";

export class AdminState extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => createTables(ctx.storage.sql));
  }

  /** Whether the session signed in `generation` with id `sid` is still on. */
  sessionLive(sid: string, generation: number): boolean {
    return sessionLive(this.ctx.storage.sql, sid, generation);
  }

  endSession(sid: string, expiresAtMs: number): void {
    endSession(this.ctx.storage.sql, sid, expiresAtMs, Date.now());
  }

  endAllSessions(): number {
    return endAllSessions(this.ctx.storage.sql);
  }

  /** Before a sign-in's token is compared: refused while `client` is over its failures, else counted as one. */
  beginLogin(client: string): LoginGate {
    return beginLogin(this.ctx.storage.sql, client, Date.now());
  }

  /** A right token from `client`: its failures are forgotten; the generation a new session is signed in. */
  loginSucceeded(client: string): number {
    const sql = this.ctx.storage.sql;
    clearLoginFailures(sql, client);
    return currentGeneration(sql);
  }
}
