/**
 * The AdminState object (admin-object/admin-state.ts) that keeps this admin token's sessions and
 * sign-in failures: one instance per token, named by a digest of it, so a rotated token starts clean
 * (its sessions have ended anyway: the cookie's key is derived from the token). The name never
 * carries the token.
 */
import { toHex } from "../../shared/encoding.ts";

const encoder = new TextEncoder();

export async function adminState(env: Env, adminToken: string) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(`hookrelay admin state\n${adminToken}`)));
  const name = toHex(digest.subarray(0, 16));
  return env.ADMIN_STATE.getByName(`admin-${name}`);
}
