import { fromHex } from "../../shared/encoding.ts";

/**
 * GitHub webhook signatures (HMAC over the raw body), checked with `crypto.subtle.verify`, which does
 * the constant-time compare. Every outcome is a value: a malformed or wrong header never throws.
 */
export type SignatureResult = { ok: true; algorithm: "sha256" | "sha1" } | { ok: false; reason: string };

const SHA256 = /^sha256=([0-9a-f]{64})$/;
const SHA1 = /^sha1=([0-9a-f]{40})$/;
const encoder = new TextEncoder();

/**
 * Secrets separated by newlines or commas, trimmed, empties dropped (several = rotation). A value with
 * a newline is split on newlines only, so a secret that contains a comma can be given on its own line.
 */
export function parseSecrets(value: unknown): string[] {
  if (typeof value !== "string") return [];
  return value
    .split(value.includes("\n") ? "\n" : ",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Below this a secret is guessable offline from one signed delivery; GitHub's own advice is a long random string. */
export const MIN_SECRET_BYTES = 16;

export type SecretsResult = { ok: true; secrets: string[] } | { ok: false; problem: string };

/**
 * The configured secrets, or what is wrong with them: missing, or one shorter than MIN_SECRET_BYTES
 * (e.g. a secret with a comma, split there). Either way the caller refuses every webhook (fail closed).
 * The problem names the binding and the secret's position, never the secret or its length.
 */
export function readSecrets(value: unknown, name: string): SecretsResult {
  const secrets = parseSecrets(value);
  if (secrets.length === 0) {
    return { ok: false, problem: `${name} is not set on the worker (wrangler secret put ${name}); refusing unsigned webhooks` };
  }
  const short = secrets.findIndex((s) => encoder.encode(s).byteLength < MIN_SECRET_BYTES);
  if (short >= 0) {
    return {
      ok: false,
      problem:
        `${name}: secret ${short + 1} of ${secrets.length} is shorter than ${MIN_SECRET_BYTES} bytes; each must be at least ${MIN_SECRET_BYTES} bytes ` +
        "(separated by commas, or by newlines when there is one: a secret that contains a comma needs its own line); refusing every webhook",
    };
  }
  return { ok: true, secrets };
}

/** Imported keys, per isolate: the secrets come from the environment, so this is configuration, not request state. */
const keys = new Map<string, Promise<CryptoKey>>();
function hmacKey(hash: "SHA-256" | "SHA-1", secret: string): Promise<CryptoKey> {
  const id = `${hash}\n${secret}`;
  let key = keys.get(id);
  if (!key) {
    if (keys.size > 256) keys.clear(); // one per target and configured secret; never grow without bound
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash }, false, ["verify"]);
    keys.set(id, key);
  }
  return key;
}

async function matchesAny(hash: "SHA-256" | "SHA-1", signature: Uint8Array<ArrayBuffer>, body: Uint8Array, secrets: string[]): Promise<boolean> {
  for (const secret of secrets) {
    const key = await hmacKey(hash, secret);
    if (await crypto.subtle.verify("HMAC", key, signature, body)) return true;
  }
  return false;
}

export interface SignatureHeaders {
  sha256: string | null;
  sha1: string | null;
}

/** A well-formed signature header, not yet checked against the body. */
export interface ClaimedSignature {
  algorithm: "sha256" | "sha1";
  header: "X-Hub-Signature-256" | "X-Hub-Signature";
  mac: Uint8Array<ArrayBuffer>;
}

export type ClaimResult = { ok: true; claim: ClaimedSignature } | { ok: false; reason: string };

/**
 * The signature the headers claim, judged before the body is read: a request with no usable header is
 * refused without costing a 25 MiB read. sha1 counts only when allowed and sha256 is absent.
 */
export function readSignatureHeaders(headers: SignatureHeaders, allowSha1: boolean): ClaimResult {
  if (headers.sha256 !== null) {
    const m = SHA256.exec(headers.sha256);
    if (!m) return { ok: false, reason: "X-Hub-Signature-256 is not sha256= followed by 64 lowercase hex digits" };
    return { ok: true, claim: { algorithm: "sha256", header: "X-Hub-Signature-256", mac: fromHex(m[1]!) } };
  }
  if (headers.sha1 !== null) {
    if (!allowSha1) return { ok: false, reason: 'X-Hub-Signature-256 is missing (sha1 X-Hub-Signature is refused unless ALLOW_SHA1 is "true")' };
    const m = SHA1.exec(headers.sha1);
    if (!m) return { ok: false, reason: "X-Hub-Signature is not sha1= followed by 40 lowercase hex digits" };
    return { ok: true, claim: { algorithm: "sha1", header: "X-Hub-Signature", mac: fromHex(m[1]!) } };
  }
  return { ok: false, reason: "X-Hub-Signature-256 is missing" };
}

/** Whether the claimed signature is an HMAC of these raw bytes under any of the secrets. */
export async function checkSignature(claim: ClaimedSignature, body: Uint8Array, secrets: string[]): Promise<SignatureResult> {
  const hash = claim.algorithm === "sha256" ? "SHA-256" : "SHA-1";
  return (await matchesAny(hash, claim.mac, body, secrets))
    ? { ok: true, algorithm: claim.algorithm }
    : { ok: false, reason: `${claim.header} matches none of the configured secrets` };
}

/** Both steps at once, for a body already in hand. */
export async function verifySignature(
  headers: SignatureHeaders,
  body: Uint8Array,
  secrets: string[],
  allowSha1: boolean,
): Promise<SignatureResult> {
  const claimed = readSignatureHeaders(headers, allowSha1);
  return claimed.ok ? checkSignature(claimed.claim, body, secrets) : claimed;
}
