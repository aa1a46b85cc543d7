/**
 * Byte encodings written once for the worker and the agent: base64url (RFC 4648 §5, no padding, as
 * JWTs and tokens are written), standard base64 decoding, and lowercase hex. Only `btoa`/`atob` and
 * typed arrays, which both runtimes have (no Node `Buffer`).
 */

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function binaryOf(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return binary;
}

function bytesOf(binary: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** base64url without padding. */
export function toBase64url(bytes: Uint8Array): string {
  return btoa(binaryOf(bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The bytes of unpadded base64url text, or null when it is empty, has other characters or cannot be base64. */
export function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!BASE64URL.test(text)) return null;
  try {
    return bytesOf(atob(text.replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return null;
  }
}

/** The bytes of standard base64 text; throws (as `atob` does) when it is not base64, so check it first. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  return bytesOf(atob(text));
}

/** Lowercase hex, two digits a byte. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The bytes of hex text (either case); throws a TypeError on an odd length or a non-hex character, so check untrusted text first. */
export function fromHex(text: string): Uint8Array<ArrayBuffer> {
  if (!HEX.test(text)) throw new TypeError("not an even number of hex digits");
  const out = new Uint8Array(new ArrayBuffer(text.length / 2));
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}
