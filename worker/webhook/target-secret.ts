/**
 * Each target's own webhook secret, derived from a configured one:
 * hex(HMAC-SHA256(key = configured secret, message = "hookrelay-target:" + target)).
 * GitHub's signature covers the body, not the URL: with one secret for every target, a delivery
 * captured on one target would deploy its sha on any other. A derived secret opens one target only,
 * and nothing new is stored. The configured secret itself still opens `default`, so a single-target
 * setup changes nothing.
 */
import { toHex } from "../../shared/encoding.ts";

export const DEFAULT_TARGET = "default";
const LABEL = "hookrelay-target:";
const encoder = new TextEncoder();

export async function targetSecret(configured: string, target: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(configured), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(`${LABEL}${target}`)));
  return toHex(mac);
}

/**
 * The secrets a delivery to `target` may be signed with: the one derived from each configured secret
 * (rotation keeps working per target), and for `default` the configured ones themselves, first.
 */
export async function secretsForTarget(configured: string[], target: string): Promise<string[]> {
  const derived = await Promise.all(configured.map((secret) => targetSecret(secret, target)));
  return target === DEFAULT_TARGET ? [...configured, ...derived] : derived;
}
