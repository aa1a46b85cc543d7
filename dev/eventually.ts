/**
 * The one polling wait, for tests, the benchmark and the demo. Pure (timers and Date only), so the
 * worker tests inside workerd use it too.
 */

/**
 * Polls `check` until it returns something other than undefined or false and returns that value.
 * A check that throws is retried; after `timeoutMs` it fails naming `what` (and the last error).
 */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
