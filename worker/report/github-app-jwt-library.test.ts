/**
 * Why github-app.ts signs the App's JWT itself: `universal-github-app-jwt` (octokit's), as wrangler
 * bundles it for workerd (its `#crypto` import without the "node" condition), refuses the PKCS#1 key
 * GitHub hands out, so the hand-made PKCS#1 → PKCS#8 wrapping (github-key.ts) would stay anyway. This
 * runs the library in workerd: when a release takes PKCS#1 here, the first test fails, and adopting it
 * (and deleting github-key.ts's DER) is worth another look. docs/dependencies.md has the decision.
 */
import githubAppJwt from "universal-github-app-jwt";
import { describe, expect, it } from "vitest";
import { parsePrivateKeyPem } from "./github-key.ts";

const ALGORITHM = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

function pem(label: string, der: Uint8Array): string {
  let binary = "";
  for (const b of der) binary += String.fromCharCode(b);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

async function keyPair(): Promise<{ pkcs8: Uint8Array; publicKey: CryptoKey }> {
  const pair = await crypto.subtle.generateKey({ ...ALGORITHM, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, ["sign", "verify"]);
  if (!("privateKey" in pair)) throw new Error("no key pair");
  return { pkcs8: new Uint8Array((await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer), publicKey: pair.publicKey };
}

describe("universal-github-app-jwt in workerd", () => {
  it("refuses a PKCS#1 key (BEGIN RSA PRIVATE KEY), the format GitHub hands out", async () => {
    const { pkcs8 } = await keyPair();
    const pkcs1 = pem("RSA PRIVATE KEY", pkcs8.slice(26)); // PrivateKeyInfo's tail is the PKCS#1 key (github-key.test.ts)
    expect(parsePrivateKeyPem(pkcs1).ok).toBe(true);
    await expect(githubAppJwt({ id: 123456, privateKey: pkcs1 })).rejects.toThrow(/PKCS#1 format, but only PKCS#8 is supported/);
  });

  it("signs with a PKCS#8 key", async () => {
    const { pkcs8, publicKey } = await keyPair();
    const { token } = await githubAppJwt({ id: 123456, privateKey: pem("PRIVATE KEY", pkcs8), now: 1_800_000_000 });
    const [head = "", claims = "", signature = ""] = token.split(".");
    const bytes = (s: string) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    expect(JSON.parse(new TextDecoder().decode(bytes(claims)))).toEqual({ iat: 1_800_000_000 - 30, exp: 1_800_000_000 - 30 + 600, iss: 123456 });
    expect(await crypto.subtle.verify(ALGORITHM.name, publicKey, bytes(signature), new TextEncoder().encode(`${head}.${claims}`))).toBe(true);
  });
});
