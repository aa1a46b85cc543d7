/**
 * Constant-time string comparison for bearer tokens: both sides are hashed first, so neither the
 * content nor the length of the expected token leaks through timing.
 */
const encoder = new TextEncoder();

export async function tokensEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}
