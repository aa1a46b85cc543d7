import { describe, expect, it } from "vitest";
import { MAX_EVENT_TIME, MAX_FRAME_BYTES, MAX_INCOMING_FRAME_BYTES, parseAgentMessage, parseWorkerMessage, PROTOCOL_VERSION } from "./protocol.ts";

const output = (data: string, at = 1_700_000_000_000) =>
  JSON.stringify({ type: "event", jobId: "j1", seq: 1, at, body: { kind: "output", step: "s", stream: "stdout", data } });

describe("frame size limits count UTF-8 bytes", () => {
  it("refuses a frame under the limit in UTF-16 units but over it in bytes", () => {
    const text = output("é".repeat(Math.ceil(MAX_INCOMING_FRAME_BYTES / 2) + 10)); // ~1 MiB of chars, ~2 MiB of bytes
    expect(text.length).toBeLessThan(MAX_INCOMING_FRAME_BYTES * 1.1);
    const parsed = parseAgentMessage(text);
    expect(parsed).toEqual({ ok: false, error: `frame larger than ${MAX_INCOMING_FRAME_BYTES} bytes` });
  });

  it("refuses output data over MAX_FRAME_BYTES bytes even when its length in characters fits", () => {
    const data = "€".repeat(MAX_FRAME_BYTES / 2); // 32 Ki characters, 96 KiB
    const parsed = parseAgentMessage(output(data));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(/body\.data: longer than 65536 bytes/);
  });

  it("accepts output data of exactly MAX_FRAME_BYTES bytes of multi-byte text", () => {
    const data = "é".repeat(MAX_FRAME_BYTES / 2);
    expect(parseAgentMessage(output(data)).ok).toBe(true);
  });
});

describe("event times", () => {
  it("refuses an `at` past the sane range (a Date that cannot be printed)", () => {
    const parsed = parseAgentMessage(output("x", 9e15));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(/^at: must be ≤ /);
    expect(parseAgentMessage(output("x", MAX_EVENT_TIME)).ok).toBe(true);
  });
});

describe("job frames", () => {
  const job = { type: "job", jobId: "j1", pipeline: "app", delivery: "d", event: "push", repo: "o/r", ref: "refs/heads/main", sha: "a".repeat(40), before: "b".repeat(40), pusher: "p" };

  it("passes odd payload values through (the agent fails the job with the reason instead of never accepting it)", () => {
    const parsed = parseWorkerMessage(JSON.stringify({ ...job, pusher: "eve\u0000x", delivery: "not a guid!" }));
    expect(parsed).toMatchObject({ ok: true, message: { pusher: "eve\u0000x", delivery: "not a guid!" } });
  });

  it("still bounds each payload field", () => {
    const parsed = parseWorkerMessage(JSON.stringify({ ...job, pusher: "p".repeat(200_000) }));
    expect(parsed.ok).toBe(false);
  });
});

describe("hello: GitHub's environment flags", () => {
  const decl = { name: "app", repo: "o/r", events: ["push"], branches: ["main"], steps: ["s"], onFailure: [], timeoutMs: 1000, rollout: { batch: 1, haltOnFailure: true } };
  const helloWith = (p: Record<string, unknown>) => JSON.stringify({ type: "hello", protocol: PROTOCOL_VERSION, agent: "web-1", version: "1", pipelines: [{ ...decl, ...p }], unfinished: [] });
  it("carries productionEnvironment and transientEnvironment when set; an agent that omits them is still accepted", () => {
    const withFlags = parseAgentMessage(helloWith({ environment: "review-1", productionEnvironment: false, transientEnvironment: true }));
    expect(withFlags.ok && withFlags.message.type === "hello" && withFlags.message.pipelines[0]).toMatchObject({ productionEnvironment: false, transientEnvironment: true });
    const without = parseAgentMessage(helloWith({}));
    expect(without.ok).toBe(true);
    expect(without.ok && without.message.type === "hello" && "productionEnvironment" in without.message.pipelines[0]!).toBe(false);
    expect(parseAgentMessage(helloWith({ productionEnvironment: "yes" }))).toMatchObject({ ok: false });
  });
});
