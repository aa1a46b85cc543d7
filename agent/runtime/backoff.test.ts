import { describe, expect, it } from "vitest";
import { Backoff, backoffFromEnv, DEFAULT_BACKOFF } from "./backoff.ts";

describe("backoff", () => {
  it("starts quick, doubles up to the cap, and starts over after a reset", () => {
    const top = new Backoff(DEFAULT_BACKOFF, () => 1);
    expect(Array.from({ length: 9 }, () => top.next())).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    top.reset();
    expect(top.next()).toBe(500);
  });

  it("jitters each delay within [base/2, base]", () => {
    const low = new Backoff(DEFAULT_BACKOFF, () => 0);
    expect([low.next(), low.next(), low.next()]).toEqual([250, 500, 1000]);
  });

  it("takes shorter delays from the environment, for tests", () => {
    expect(backoffFromEnv({})).toEqual(DEFAULT_BACKOFF);
    expect(backoffFromEnv({ HOOKRELAY_RECONNECT_MIN_MS: "10", HOOKRELAY_RECONNECT_MAX_MS: "50", HOOKRELAY_AUTH_RETRY_MS: "200" })).toEqual({ initialMs: 10, maxMs: 50, longMs: 200 });
    expect(backoffFromEnv({ HOOKRELAY_RECONNECT_MAX_MS: "100" })).toEqual({ initialMs: 100, maxMs: 100, longMs: 300_000 });
    expect(backoffFromEnv({ HOOKRELAY_RECONNECT_MAX_MS: "soon" })).toEqual(DEFAULT_BACKOFF);
  });
});
