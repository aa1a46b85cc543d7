/**
 * The dashboard's session cookie: `hookrelay_session=v1.<base64url payload>.<base64url HMAC-SHA256>`,
 * payload `{"iat","exp"}` (seconds). The MAC key is HMAC(ADMIN_TOKEN, "hookrelay session v1"), so
 * rotating ADMIN_TOKEN ends every session; the cookie holds no secret, only proof that someone who
 * knew the token signed in before `exp`. Verification never throws: any malformed value is "no session".
 */
import { Reader } from "../../shared/reader.ts";

export const SESSION_COOKIE = "hookrelay_session";
/** 12 hours: a working day with the dashboard open, not a permanent credential. */
export const SESSION_TTL_SECONDS = 12 * 60 * 60;

const VERSION = "v1";
const KEY_LABEL = "hookrelay session v1";
/** A sane bound on the cookie's length before any crypto runs on it. */
const MAX_COOKIE_LENGTH = 512;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const encoder = new TextEncoder();

/** The session MAC key, derived from the admin token (never the token itself). */
async function sessionKey(adminToken: string): Promise<CryptoKey> {
  const tokenKey = await crypto.subtle.importKey("raw", encoder.encode(adminToken), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const derived = await crypto.subtle.sign("HMAC", tokenKey, encoder.encode(KEY_LABEL));
  return crypto.subtle.importKey("raw", derived, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function toBase64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array | null {
  if (!BASE64URL.test(text)) return null;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}

/** A signed cookie value for a session starting at `nowMs` (tests pass a past time for an expired one). */
export async function signSession(adminToken: string, nowMs: number = Date.now()): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  const payload = toBase64url(encoder.encode(JSON.stringify({ iat, exp: iat + SESSION_TTL_SECONDS })));
  const signed = `${VERSION}.${payload}`;
  const mac = await crypto.subtle.sign("HMAC", await sessionKey(adminToken), encoder.encode(signed));
  return `${signed}.${toBase64url(new Uint8Array(mac))}`;
}

/** Whether `value` is a session this admin token signed and that has not expired at `nowMs`. */
export async function verifySession(adminToken: string, value: string | null, nowMs: number = Date.now()): Promise<boolean> {
  if (value === null || value.length > MAX_COOKIE_LENGTH) return false;
  const parts = value.split(".");
  if (parts.length !== 3 || parts[0] !== VERSION) return false;
  const payload = fromBase64url(parts[1] ?? "");
  const mac = fromBase64url(parts[2] ?? "");
  if (payload === null || mac === null) return false;
  // crypto.subtle.verify compares the MAC in constant time.
  const key = await sessionKey(adminToken);
  if (!(await crypto.subtle.verify("HMAC", key, mac, encoder.encode(`${VERSION}.${parts[1]}`)))) return false;
  const times = readTimes(payload);
  if (times === null) return false;
  const now = Math.floor(nowMs / 1000);
  return times.iat <= now + 60 && now < times.exp && times.exp - times.iat <= SESSION_TTL_SECONDS;
}

/** The payload we signed ourselves, still read through a Reader, never cast. */
function readTimes(payload: Uint8Array): { iat: number; exp: number } | null {
  try {
    const r = new Reader(JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(payload)), "session");
    return { iat: r.field("iat").int({ min: 0 }), exp: r.field("exp").int({ min: 0 }) };
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
