/**
 * Capped exponential backoff with jitter for reconnects: the first retry is quick, each failure
 * doubles the base up to the cap, and the actual delay is drawn from [base/2, base] so a fleet
 * of agents dropped by one worker update does not reconnect in lockstep.
 */
export interface BackoffOptions {
  /** First delay (before jitter). */
  initialMs: number;
  /** Cap on the base delay. */
  maxMs: number;
  /** Delay after the worker rejected the token (HTTP 401) or replaced this connection. */
  longMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, longMs: 5 * 60_000 };

/**
 * Test hooks: HOOKRELAY_RECONNECT_MIN_MS, HOOKRELAY_RECONNECT_MAX_MS and HOOKRELAY_AUTH_RETRY_MS
 * shorten the delays (meant for tests; operators have no reason to set them).
 */
export function backoffFromEnv(env: NodeJS.ProcessEnv, base: BackoffOptions = DEFAULT_BACKOFF): BackoffOptions {
  const num = (v: string | undefined, fallback: number): number => {
    const n = v === undefined ? NaN : Number(v);
    return Number.isFinite(n) && n >= 0 ? n : fallback;
  };
  const maxMs = num(env.HOOKRELAY_RECONNECT_MAX_MS, base.maxMs);
  return {
    initialMs: Math.min(num(env.HOOKRELAY_RECONNECT_MIN_MS, base.initialMs), maxMs),
    maxMs,
    longMs: num(env.HOOKRELAY_AUTH_RETRY_MS, base.longMs),
  };
}

export class Backoff {
  readonly options: BackoffOptions;
  private attempt = 0;
  private readonly random: () => number;

  constructor(options: BackoffOptions, random: () => number = Math.random) {
    this.options = options;
    this.random = random;
  }

  /** Delay before the next attempt; each call grows the next one. */
  next(): number {
    const base = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(base / 2 + (this.random() * base) / 2);
  }

  /** After a healthy connection the next failure starts over with a quick retry. */
  reset(): void {
    this.attempt = 0;
  }
}
