/**
 * The dashboard's session cookie, as Hono's signed cookies write it (hono/cookie):
 * `hookrelay_session=v3.<base64url claims>.<base64 HMAC-SHA256>` (URL-encoded), claims
 * `{"sid","gen","iat","exp"}` (a random session id, the sign-out generation it was signed in, seconds).
 * The MAC key is HMAC(ADMIN_TOKEN, "hookrelay session v1"), so rotating ADMIN_TOKEN ends every session;
 * the cookie holds no secret, only proof that someone who knew the token signed in before `exp` (signed
 * inside the value: Max-Age is only the browser's to honour). Whether the session was ended since
 * (logout, sign out everywhere) is the AdminState object's to say (login-session-store.ts).
 * Verification never throws: any malformed value is "no session".
 */
import { generateCookie, generateSignedCookie } from "hono/cookie";
import { parseSigned } from "hono/utils/cookie";
import { Reader } from "../../shared/reader.ts";
import { fromBase64url, toBase64url } from "../../shared/encoding.ts";

export const SESSION_COOKIE = "hookrelay_session";
/** 12 hours: a working day with the dashboard open, not a permanent credential. */
export const SESSION_TTL_SECONDS = 12 * 60 * 60;

/** v3: Hono's signature (v2 was `v2.<claims>.<base64url MAC>`, ours): a v2 cookie is no session, sign in again. */
const VERSION = "v3";
const KEY_LABEL = "hookrelay session v1";
const encoder = new TextEncoder();

/** The session MAC key's bytes, derived from the admin token (never the token itself). */
async function sessionSecret(adminToken: string): Promise<ArrayBuffer> {
  const tokenKey = await crypto.subtle.importKey("raw", encoder.encode(adminToken), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", tokenKey, encoder.encode(KEY_LABEL));
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

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** `Secure` everywhere but loopback, where `wrangler dev` serves plain http. */
export function isLoopback(requestUrl: string): boolean {
  try {
    return LOOPBACK_HOSTS.has(new URL(requestUrl).hostname);
  } catch {
    return false;
  }
}

function attributes(maxAge: number, requestUrl: string) {
  return { httpOnly: true, sameSite: "Strict", path: "/", maxAge, secure: !isLoopback(requestUrl) } as const;
}

/**
 * `Set-Cookie` for a new session of sign-out generation `gen` (a fresh id unless `sid` is given),
 * starting at `nowMs` (tests pass a past time for an expired one).
 */
export async function sessionSetCookie(adminToken: string, session: { gen: number; sid?: string }, requestUrl: string, nowMs: number = Date.now()): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  const claims: SessionClaims = { sid: session.sid ?? newSessionId(), gen: session.gen, iat, exp: iat + SESSION_TTL_SECONDS };
  const value = `${VERSION}.${toBase64url(encoder.encode(JSON.stringify(claims)))}`;
  return generateSignedCookie(SESSION_COOKIE, value, await sessionSecret(adminToken), attributes(SESSION_TTL_SECONDS, requestUrl));
}

/** `Set-Cookie` that ends the session in the browser. */
export function sessionClearCookie(requestUrl: string): string {
  return generateCookie(SESSION_COOKIE, "", attributes(0, requestUrl));
}

/**
 * The claims of the session cookie in `cookieHeader` (a request's `Cookie`) if this admin token signed
 * it and it has not expired at `nowMs`, else null. Hono's parser takes the first `hookrelay_session`,
 * and crypto.subtle.verify compares the MAC in constant time.
 */
export async function verifySession(adminToken: string, cookieHeader: string | null | undefined, nowMs: number = Date.now()): Promise<SessionClaims | null> {
  if (!cookieHeader) return null;
  const value = (await parseSigned(cookieHeader, await sessionSecret(adminToken), SESSION_COOKIE))[SESSION_COOKIE];
  if (typeof value !== "string") return null;
  const parts = value.split(".");
  if (parts.length !== 2 || parts[0] !== VERSION) return null;
  const payload = fromBase64url(parts[1] ?? "");
  const claims = payload === null ? null : readClaims(payload);
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
