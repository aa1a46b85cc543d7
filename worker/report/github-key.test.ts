import { describe, expect, it } from "vitest";
import { appJwt, importSigningKey } from "./github-app.ts";
import { toBase64url as base64url } from "../../shared/encoding.ts";
import { parsePrivateKeyPem } from "./github-key.ts";

const ALGORITHM = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

function pem(label: string, der: Uint8Array): string {
  let binary = "";
  for (const b of der) binary += String.fromCharCode(b);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

function fromBase64url(s: string): Uint8Array<ArrayBuffer> {
  const binary = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

// The path that ships, in workerd: the PKCS#1 PEM GitHub hands out, wrapped by hand, imported and used to sign.
describe("GitHub App key in workerd", () => {
  it("wraps a PKCS#1 key into the PKCS#8 bytes WebCrypto exports, and signs a JWT its public key verifies", async () => {
    const pair = await crypto.subtle.generateKey({ ...ALGORITHM, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, ["sign", "verify"]);
    if (!("privateKey" in pair)) throw new Error("no key pair");
    const pkcs8 = new Uint8Array((await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer);
    // PrivateKeyInfo = 30 82 LL LL | 02 01 00 | 30 0d <rsaEncryption, NULL> | 04 82 LL LL <PKCS#1>: the PKCS#1 key is the tail.
    expect([...pkcs8.slice(4, 22)]).toEqual([0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00]);
    const pkcs1 = pkcs8.slice(26);
    const parsed = parsePrivateKeyPem(pem("RSA PRIVATE KEY", pkcs1).replace(/\n/g, "\\n"));
    if (!parsed.ok) throw new Error(parsed.why);
    expect([...parsed.pkcs8]).toEqual([...pkcs8]);

    const now = Date.UTC(2026, 10, 28, 12, 0, 0);
    const jwt = await appJwt("123456", await importSigningKey(parsed.pkcs8), now);
    const [head = "", claims = "", signature = ""] = jwt.split(".");
    expect(JSON.parse(new TextDecoder().decode(fromBase64url(claims)))).toEqual({ iat: now / 1000 - 60, exp: now / 1000 + 540, iss: 123456 });
    expect(await crypto.subtle.verify(ALGORITHM.name, pair.publicKey, fromBase64url(signature), new TextEncoder().encode(`${head}.${claims}`))).toBe(true);
    expect(base64url(new Uint8Array([0xfb, 0xff]))).toBe("-_8");
  });

  it("refuses what is not a private key PEM, without quoting it", () => {
    for (const text of ["hunter2", "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----"]) {
      const parsed = parsePrivateKeyPem(text);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.why).not.toContain(text.slice(32, 40) || "hunter2");
    }
  });
});
