/**
 * Per-agent tokens (`agent_tokens`): 32 random bytes shown once, `hra_` + base64url; the DO keeps only
 * the SHA-256 and compares in constant time. A token opens only its own name's socket in its own
 * target, so one read off a server (deploy steps run as the agent's user) takes over nothing else.
 */
import { fromHex, toBase64url, toHex } from "../../../shared/encoding.ts";

export const TOKEN_PREFIX = "hra_";
/** The one answer to a bad agent token: the same for an unknown name as for a wrong token. */
export const AGENT_TOKEN_REFUSED = "missing or invalid agent token";
export const MAX_AGENTS_PER_TARGET = 100;

const encoder = new TextEncoder();
/** Compared against when the name is unknown, so that answer takes the same work as a wrong token. */
const NO_HASH = new Uint8Array(32);
const HASH_HEX = /^[0-9a-fA-F]{64}$/;

export async function sha256(token: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(token)));
}

/** A new token and the hash to store. */
export async function newToken(): Promise<{ token: string; hashHex: string }> {
  const token = TOKEN_PREFIX + toBase64url(crypto.getRandomValues(new Uint8Array(32)));
  return { token, hashHex: toHex(await sha256(token)) };
}

/** Whether `givenHash` (the SHA-256 of the presented token) is `name`'s. Synchronous: no await between read and use. */
export function tokenMatches(sql: SqlStorage, name: string, givenHash: Uint8Array): boolean {
  const row = sql.exec<{ token_sha256: string }>("SELECT token_sha256 FROM agent_tokens WHERE name = ?", name).toArray()[0];
  const stored = row && HASH_HEX.test(row.token_sha256) ? fromHex(row.token_sha256) : NO_HASH;
  return crypto.subtle.timingSafeEqual(stored, givenHash) && row !== undefined;
}

export function registeredNames(sql: SqlStorage): string[] {
  return sql.exec<{ name: string }>("SELECT name FROM agent_tokens ORDER BY name").toArray().map((r) => r.name);
}

export type RegisterOutcome = { ok: true } | { ok: false; why: "exists" | "full" } | { ok: false; why: "case"; existing: string };

/**
 * Names are compared without case: `WEB-1` beside `web-1` is one host to a person reading the
 * dashboard and two to the DO (two jobs per push, two tokens). ASCII only (NAME_PATTERN), so
 * SQLite's lower() is exact.
 */
export function insertToken(sql: SqlStorage, name: string, hashHex: string, now: number): RegisterOutcome {
  const same = sql.exec<{ name: string }>("SELECT name FROM agent_tokens WHERE lower(name) = lower(?)", name).toArray()[0];
  if (same) return same.name === name ? { ok: false, why: "exists" } : { ok: false, why: "case", existing: same.name };
  const { n } = sql.exec<{ n: number }>("SELECT count(*) AS n FROM agent_tokens").one();
  if (n >= MAX_AGENTS_PER_TARGET) return { ok: false, why: "full" };
  sql.exec("INSERT INTO agent_tokens (name, token_sha256, issued_at) VALUES (?, ?, ?)", name, hashHex, now);
  return { ok: true };
}

/** Replaces `name`'s token hash; false when the name is not registered. */
export function replaceToken(sql: SqlStorage, name: string, hashHex: string, now: number): boolean {
  return sql.exec("UPDATE agent_tokens SET token_sha256 = ?, issued_at = ? WHERE name = ?", hashHex, now, name).rowsWritten > 0;
}

/** Whether the name is registered (a token) or known (a row: it connected, or tried to). */
export function agentKnown(sql: SqlStorage, name: string): boolean {
  return sql.exec("SELECT 1 FROM agent_tokens WHERE name = ?", name).toArray().length + sql.exec("SELECT 1 FROM agents WHERE name = ?", name).toArray().length > 0;
}

/**
 * Forgets an agent (revoked, or pruned): its token and its row, so no pipeline of it matches a push
 * again and no socket opens with the token. Its jobs are ended first by the caller (handlers/agent-calls.ts removeAgent).
 */
export function forgetAgent(sql: SqlStorage, name: string): void {
  sql.exec("DELETE FROM agent_tokens WHERE name = ?", name);
  sql.exec("DELETE FROM agents WHERE name = ?", name);
}

/**
 * When an agent last showed a sign of life, for those not connected now: its last connection, or its
 * token's issue (registration, rotation) for one that never connected. A constant SQL query.
 */
export const UNSEEN_AGENTS = `
  SELECT n.name AS name,
         max(COALESCE(t.issued_at, 0), COALESCE(a.last_seen_at, 0), COALESCE(a.disconnected_at, 0), COALESCE(a.connected_at, 0)) AS seen
  FROM (SELECT name FROM agent_tokens UNION SELECT name FROM agents) n
  LEFT JOIN agent_tokens t ON t.name = n.name
  LEFT JOIN agents a ON a.name = n.name
  WHERE COALESCE(a.connected, 0) = 0`;

/** Agents not connected and not seen for `retentionMs` or more (UNSEEN_AGENTS). */
export function unseenAgentNames(sql: SqlStorage, retentionMs: number, now: number): string[] {
  return sql.exec<{ name: string }>(`SELECT name FROM (${UNSEEN_AGENTS}) WHERE seen + ? <= ?`, retentionMs, now).toArray().map((r) => r.name);
}
