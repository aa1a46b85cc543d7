import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { flushLines, LINE_DELAY_MS, logError, logInfo, logWarn } from "./console-lines.ts";
import { eventually, postWebhook, uniqueName } from "../testing/workerd/worker-support.ts";

/** Every console call, in order, as [level, text]. */
let calls: Array<[string, string]>;
beforeEach(() => {
  flushLines();
  calls = [];
  for (const level of ["log", "warn", "error"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void calls.push([level, args.map(String).join(" ")]));
  }
});
afterEach(() => {
  flushLines();
  vi.restoreAllMocks();
});

describe("the worker's log lines", () => {
  it("are written after the call that made them, in order across levels, a run of one level in one call", async () => {
    logInfo("[job a] one");
    logInfo("[job a] two");
    logWarn("[job a] three");
    logInfo("[job a] four");
    expect(calls).toEqual([]);
    await eventually("the queued lines written by their timer", async () => (calls.length > 0 ? true : undefined), 2000, 5);
    expect(calls).toEqual([
      ["log", "[job a] one\n[job a] two"],
      ["warn", "[job a] three"],
      ["log", "[job a] four"],
    ]);
    expect(LINE_DELAY_MS).toBeGreaterThan(0);
  });

  it("writes an error at once, after the lines queued before it", () => {
    logInfo("[job b] before");
    logError("[job b] broke:", new Error("boom"));
    expect(calls).toEqual([
      ["log", "[job b] before"],
      ["error", "[job b] broke: Error: boom"],
    ]);
  });

  it("a ping is answered before its line is written", async () => {
    const body = JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 1234 });
    const res = await postWebhook(uniqueName(), body, { event: "ping" });
    expect(res.status).toBe(200);
    expect(calls.filter(([, text]) => text.includes("ping for target"))).toEqual([]);
    await eventually("the ping's line", async () => (calls.some(([, text]) => text.includes("ping for target")) ? true : undefined), 2000, 5);
  });

  it("a refused signature is answered before its warning is written, and the warning still comes", async () => {
    const res = await postWebhook(uniqueName(), JSON.stringify({ zen: "x" }), { event: "ping", secret: "not the secret" });
    expect(res.status).toBe(401);
    expect(calls.filter(([, text]) => text.includes("refused"))).toEqual([]);
    await eventually("the refusal's line", async () => (calls.some(([level, text]) => level === "warn" && text.includes("refused")) ? true : undefined), 2000, 5);
  });
});
