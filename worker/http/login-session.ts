/**
 * The dashboard's session cookie: `hookrelay_session=v2.<base64url payload>.<base64url HMAC-SHA256>`,
 * payload `{"sid","gen","iat","exp"}` (a random session id, the sign-out generation it was signed in,
 * seconds). The MAC key is HMAC(ADMIN_TOKEN, "hookrelay session v1"), so rotating ADMIN_TOKEN ends
 * every session; the cookie holds no secret, only proof that someone who knew the token signed in
 * before `exp`. Whether the session was ended since (logout, sign out everywhere) is the AdminState
 * object's to say (session-store.ts). Verification never throws: any malformed value is "no session".
 */
import { Reader } from "../../shared/reader.ts";
import { fromBase64url, toBase64url } from "../../shared/encoding.ts";

export const SESSION_COOKIE = "hookrelay_session";
/** 12 hours: a working day with the dashboard open, not a permanent credential. */
export const SESSION_TTL_SECONDS = 12 * 60 * 60;

const VERSION = "v2";
const KEY_LABEL = "hookrelay session v1";
/** A sane bound on the cookie's length before any crypto runs on it. */
const MAX_COOKIE_LENGTH = 512;
const encoder = new TextEncoder();

/** The session MAC key, derived from the admin token (never the token itself). */
async function sessionKey(adminToken: string): Promise<CryptoKey> {
  const tokenKey = await crypto.subtle.importKey("raw", encoder.encode(adminToken), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const derived = await crypto.subtle.sign("HMAC", tokenKey, encoder.encode(KEY_LABEL));
  return crypto.subtle.importKey("raw", derived, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

/** What a verified cookie says: its session's id and generation, and its times (seconds). */
export interface SessionClaims {
  sid: string;
  gen: number;
  iat: number;
  exp: number;
}

const SESSION_ID = /^[A-Za-z0-9_-]{22}$/;

/** 128 random bits, base64url. */
export function newSessionId(): string {
  return toBase64url(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * A signed cookie value for a new session of sign-out generation `gen` (a fresh id unless `sid` is
 * given), starting at `nowMs` (tests pass a past time for an expired one).
 */
export async function signSession(adminToken: string, session: { gen: number; sid?: string }, nowMs: number = Date.now()): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  const claims: SessionClaims = { sid: session.sid ?? newSessionId(), gen: session.gen, iat, exp: iat + SESSION_TTL_SECONDS };
  const payload = toBase64url(encoder.encode(JSON.stringify(claims)));
  const signed = `${VERSION}.${payload}`;
  const mac = await crypto.subtle.sign("HMAC", await sessionKey(adminToken), encoder.encode(signed));
  return `${signed}.${toBase64url(new Uint8Array(mac))}`;
}

/** The claims of `value` if this admin token signed it and it has not expired at `nowMs`, else null. */
export async function verifySession(adminToken: string, value: string | null, nowMs: number = Date.now()): Promise<SessionClaims | null> {
  if (value === null || value.length > MAX_COOKIE_LENGTH) return null;
  const parts = value.split(".");
  if (parts.length !== 3 || parts[0] !== VERSION) return null;
  const payload = fromBase64url(parts[1] ?? "");
  const mac = fromBase64url(parts[2] ?? "");
  if (payload === null || mac === null) return null;
  // crypto.subtle.verify compares the MAC in constant time.
  const key = await sessionKey(adminToken);
  if (!(await crypto.subtle.verify("HMAC", key, mac, encoder.encode(`${VERSION}.${parts[1]}`)))) return null;
  const claims = readClaims(payload);
  if (claims === null) return null;
  const now = Math.floor(nowMs / 1000);
  return claims.iat <= now + 60 && now < claims.exp && claims.exp - claims.iat <= SESSION_TTL_SECONDS ? claims : null;
}

/** The payload we signed ourselves, still read through a Reader, never cast. */
function readClaims(payload: Uint8Array): SessionClaims | null {
  try {
    const r = new Reader(JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(payload)), "session");
    return {
      sid: r.field("sid").string({ pattern: SESSION_ID, patternHint: "22 base64url characters" }),
      gen: r.field("gen").int({ min: 0 }),
      iat: r.field("iat").int({ min: 0 }),
      exp: r.field("exp").int({ min: 0 }),
    };
  } catch {
    return null;
  }
}

/**
 * The session cookie's value from a `Cookie` header, or null. Hand-parsed so no header, however
 * malformed, can throw: a value that is not ours is simply no session.
 */
export function sessionCookieValue(cookieHeader: string | null | undefined): string | null {
  if (!cookieHeader) return null;
  for (const pair of cookieHeader.split(";")) {
    const eq = pair.indexOf("=");
    if (eq < 0) continue;
    if (pair.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = pair.slice(eq + 1).trim();
    return value.startsWith('"') && value.endsWith('"') && value.length >= 2 ? value.slice(1, -1) : value;
  }
  return null;
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** `Secure` everywhere but loopback, where `wrangler dev` serves plain http. */
export function isLoopback(requestUrl: string): boolean {
  try {
    return LOOPBACK_HOSTS.has(new URL(requestUrl).hostname);
  } catch {
    return false;
  }
}

function attributes(maxAge: number, secure: boolean): string {
  return `HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}${secure ? "; Secure" : ""}`;
}

/** `Set-Cookie` for a new session. */
export function sessionSetCookie(value: string, requestUrl: string): string {
  return `${SESSION_COOKIE}=${value}; ${attributes(SESSION_TTL_SECONDS, !isLoopback(requestUrl))}`;
}

/** `Set-Cookie` that ends the session in the browser. */
export function sessionClearCookie(requestUrl: string): string {
  return `${SESSION_COOKIE}=; ${attributes(0, !isLoopback(requestUrl))}`;
}
