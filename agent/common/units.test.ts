import { describe, expect, it } from "vitest";
import { parseDuration, parseSize } from "./units.ts";

describe("units", () => {
  it("parses durations and sizes", () => {
    expect([parseDuration("500ms"), parseDuration("10s"), parseDuration("15m"), parseDuration("1h"), parseDuration("1.5s")]).toEqual([500, 10_000, 900_000, 3_600_000, 1500]);
    expect(parseDuration("10")).toMatchObject({ error: expect.any(String) });
    expect(parseDuration("0s")).toEqual({ error: "must be greater than zero" });
    expect([parseSize("8MiB"), parseSize("512KiB"), parseSize("1000"), parseSize("1MB")]).toEqual([8 * 1024 * 1024, 512 * 1024, 1000, 1_000_000]);
    expect(parseSize("lots")).toMatchObject({ error: expect.any(String) });
  });
});
