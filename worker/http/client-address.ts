/**
 * The client a sign-in attempt is counted against: `CF-Connecting-IP` (set by Cloudflare, which a
 * client cannot override), an IPv6 address by its /64 (one host usually holds a whole /64). Anything
 * else — absent, as in some local setups, or not an address — is the one client "unknown".
 */
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const HEXTET = /^[0-9a-f]{1,4}$/;

export function clientAddress(header: string | null | undefined): string {
  const value = (header ?? "").trim().toLowerCase();
  if (IPV4.test(value)) return value;
  const prefix = value.includes(":") && value.length <= 39 ? ipv6Prefix(value) : null;
  return prefix ?? "unknown";
}

/** The first four groups of an IPv6 address written in hex groups (with at most one `::`), or null. */
function ipv6Prefix(value: string): string | null {
  const halves = value.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const zeros = 8 - head.length - tail.length;
  if (halves.length === 1 ? zeros !== 0 : zeros < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? zeros : 0).fill("0"), ...tail];
  if (!groups.every((g) => HEXTET.test(g))) return null;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}
