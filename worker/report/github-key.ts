/**
 * A GitHub App's private key, from the pasted PEM to the PKCS#8 DER WebCrypto imports (the JWT's
 * base64url is shared/encoding.ts's). GitHub hands out PKCS#1 ("BEGIN RSA PRIVATE KEY"); WebCrypto imports
 * only PKCS#8, so a PKCS#1 key is wrapped in a PrivateKeyInfo by hand (RFC 5208: the PKCS#1 bytes are
 * the privateKey OCTET STRING, next to the rsaEncryption algorithm identifier). Runtime-neutral.
 */
import { fromBase64 } from "../../shared/encoding.ts";

/** The key as PKCS#8 DER, or why the pasted text is not one we can use (never quoting it). */
export type ParsedKey = { ok: true; pkcs8: Uint8Array<ArrayBuffer>; format: "pkcs1" | "pkcs8" } | { ok: false; why: string };

const PEM = /-----BEGIN (RSA PRIVATE KEY|PRIVATE KEY)-----([\s\S]*?)-----END \1-----/;

export function parsePrivateKeyPem(text: string): ParsedKey {
  // A PEM pasted into a one-line secret field often arrives with literal "\n" sequences.
  const pem = text.replace(/\\r/g, "").replace(/\\n/g, "\n");
  if (pem.includes("-----BEGIN OPENSSH PRIVATE KEY-----")) return { ok: false, why: "is an OpenSSH key; paste the .pem file GitHub downloaded (BEGIN RSA PRIVATE KEY)" };
  if (pem.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----")) return { ok: false, why: "is encrypted; paste the unencrypted .pem file GitHub downloaded" };
  const match = PEM.exec(pem);
  if (!match) return { ok: false, why: "is not a PEM private key (expected -----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)" };
  const label = match[1];
  const body = match[2] ?? "";
  if (body.includes(":")) return { ok: false, why: "is encrypted (it has PEM headers); paste the unencrypted .pem file GitHub downloaded" };
  const base64 = body.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) return { ok: false, why: "is not a PEM private key (its body is not base64)" };
  const der = fromBase64(base64);
  if (label === "RSA PRIVATE KEY") {
    if (!isVersionZeroSequence(der)) return { ok: false, why: "is not a PKCS#1 RSA private key (its DER does not parse)" };
    return { ok: true, pkcs8: wrapPkcs1(der), format: "pkcs1" };
  }
  if (!isVersionZeroSequence(der)) return { ok: false, why: "is not a PKCS#8 private key (its DER does not parse)" };
  return { ok: true, pkcs8: der, format: "pkcs8" };
}

/** rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters: the AlgorithmIdentifier, DER-encoded. */
const RSA_ALGORITHM = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
const VERSION_0 = [0x02, 0x01, 0x00];

/** PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier, privateKey OCTET STRING (the PKCS#1 DER) }. */
export function wrapPkcs1(pkcs1: Uint8Array): Uint8Array<ArrayBuffer> {
  const octets = [0x04, ...derLength(pkcs1.length)];
  const inner = VERSION_0.length + RSA_ALGORITHM.length + octets.length + pkcs1.length;
  const head = [0x30, ...derLength(inner), ...VERSION_0, ...RSA_ALGORITHM, ...octets];
  const out = new Uint8Array(new ArrayBuffer(head.length + pkcs1.length));
  out.set(head, 0);
  out.set(pkcs1, head.length);
  return out;
}

/** A DER length: short form below 128, else 0x80 | count followed by the big-endian bytes. */
export function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return [0x80 | bytes.length, ...bytes];
}

/** Whether the bytes are exactly one DER SEQUENCE whose first element is INTEGER 0 (both key formats start so). */
function isVersionZeroSequence(der: Uint8Array): boolean {
  if (der[0] !== 0x30) return false;
  const first = der[1];
  if (first === undefined) return false;
  let length = first;
  let offset = 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4) return false;
    length = 0;
    for (let i = 0; i < count; i++) {
      const byte = der[offset + i];
      if (byte === undefined) return false;
      length = length * 256 + byte;
    }
    offset += count;
  }
  if (offset + length !== der.length) return false;
  return VERSION_0.every((b, i) => der[offset + i] === b);
}

