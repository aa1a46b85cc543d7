import { describe, expect, it } from "vitest";
import { GATES_PROTOCOL_VERSION, helloProtocol, MAX_EVENT_TIME, MAX_FRAME_BYTES, MAX_INCOMING_FRAME_BYTES, parseAgentMessage, parseWorkerMessage, PROTOCOL_VERSION } from "./protocol.ts";
import { MAX_GATE_NAME_CHARS, MAX_GATE_NAMES_PER_LIST, MAX_GATE_TIMEOUT_MS, MAX_PATH_GLOBS_PER_PIPELINE, MAX_TAG_GLOBS_PER_PIPELINE } from "./limits.ts";

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

describe("hello: gates (tags, paths, pathsIgnore, waitFor)", () => {
  const decl = { name: "app", repo: "o/r", events: ["push"], branches: ["main"], steps: ["s"], onFailure: [], timeoutMs: 1000, rollout: { batch: 1, haltOnFailure: true } };
  const helloWith = (p: Record<string, unknown>, protocol = GATES_PROTOCOL_VERSION) =>
    JSON.stringify({ type: "hello", protocol, agent: "web-1", version: "1", pipelines: [{ ...decl, ...p }], unfinished: [] });
  it("needs protocol 4 for any gate (a worker from before gates refuses 4 rather than ignore them); none → 3", () => {
    const waitFor = { workflows: ["CI"], checks: [], approval: false, timeoutMs: 7_200_000 };
    for (const gate of [{ tags: ["v*"] }, { paths: ["app/**"] }, { pathsIgnore: ["docs/**"] }, { waitFor }]) {
      expect(parseAgentMessage(helloWith(gate, PROTOCOL_VERSION))).toEqual({
        ok: false,
        error: `pipelines: pipeline app declares gates (tags, paths, paths_ignore or wait_for): its hello must say protocol ${GATES_PROTOCOL_VERSION}`,
      });
      expect(parseAgentMessage(helloWith(gate))).toMatchObject({ ok: true });
    }
    expect(helloProtocol([{ ...decl, waitFor }])).toBe(GATES_PROTOCOL_VERSION);
    expect(helloProtocol([{ ...decl }])).toBe(PROTOCOL_VERSION);
  });
  const pipeline = (p: Record<string, unknown>) => {
    const parsed = parseAgentMessage(helloWith(p));
    if (!parsed.ok) throw new Error(parsed.error);
    if (parsed.message.type !== "hello") throw new Error("not a hello");
    return parsed.message.pipelines[0]!;
  };
  const refused = (p: Record<string, unknown>) => {
    const parsed = parseAgentMessage(helloWith(p));
    return parsed.ok ? "accepted" : parsed.error;
  };
  const waitFor = { workflows: ["CI"], checks: ["lint", "test (3.12)"], approval: true, timeoutMs: 7_200_000 };

  it("carries every gate when declared", () => {
    expect(pipeline({ tags: ["v*"], paths: ["app/**", "!app/**/*.md"], waitFor })).toMatchObject({ tags: ["v*"], paths: ["app/**", "!app/**/*.md"], waitFor });
    expect(pipeline({ pathsIgnore: ["docs/**"] })).toMatchObject({ pathsIgnore: ["docs/**"] });
    expect(pipeline({ waitFor: { ...waitFor, workflows: [], checks: [] } }).waitFor).toEqual({ workflows: [], checks: [], approval: true, timeoutMs: 7_200_000 });
  });

  it("keeps an older agent's hello valid: no gate fields, none in the declaration", () => {
    const p = pipeline({});
    for (const key of ["tags", "paths", "pathsIgnore", "waitFor"]) expect(key in p, key).toBe(false);
  });

  it("bounds every list and value, naming the field", () => {
    const many = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));
    expect(refused({ tags: many(MAX_TAG_GLOBS_PER_PIPELINE + 1, (i) => `v${i}`) })).toBe(`pipelines[0].tags: more than ${MAX_TAG_GLOBS_PER_PIPELINE} items`);
    expect(refused({ tags: many(MAX_TAG_GLOBS_PER_PIPELINE, (i) => `v${i}`) })).toBe("accepted");
    expect(refused({ paths: many(MAX_PATH_GLOBS_PER_PIPELINE + 1, (i) => `d${i}/**`) })).toBe(`pipelines[0].paths: more than ${MAX_PATH_GLOBS_PER_PIPELINE} items`);
    expect(refused({ pathsIgnore: ["x".repeat(256)] })).toBe("pipelines[0].pathsIgnore[0]: longer than 255 characters");
    expect(refused({ waitFor: { ...waitFor, checks: many(MAX_GATE_NAMES_PER_LIST + 1, (i) => `c${i}`) } })).toBe(`pipelines[0].waitFor.checks: more than ${MAX_GATE_NAMES_PER_LIST} items`);
    expect(refused({ waitFor: { ...waitFor, workflows: ["x".repeat(MAX_GATE_NAME_CHARS + 1)] } })).toMatch(/^pipelines\[0\]\.waitFor\.workflows\[0\]: must be a workflow's or check run's name/);
    expect(refused({ waitFor: { ...waitFor, workflows: ["x".repeat(MAX_GATE_NAME_CHARS)] } })).toBe("accepted");
    expect(refused({ waitFor: { ...waitFor, timeoutMs: MAX_GATE_TIMEOUT_MS + 1 } })).toBe(`pipelines[0].waitFor.timeoutMs: must be ≤ ${MAX_GATE_TIMEOUT_MS}`);
    expect(refused({ waitFor: { ...waitFor, timeoutMs: 0 } })).toBe("pipelines[0].waitFor.timeoutMs: must be ≥ 1");
  });

  it("refuses what the config refuses: bad globs, only ! globs, both path lists, a blank or repeated name, waiting for nothing", () => {
    expect(refused({ tags: ["v[0-9"] })).toBe("pipelines[0].tags[0]: unclosed [ at character 2");
    expect(refused({ paths: ["!docs/**"] })).toBe("pipelines[0].paths: needs at least one pattern without a leading ! (a list of only ! patterns selects nothing)");
    expect(refused({ paths: ["app/**"], pathsIgnore: ["docs/**"] })).toBe("pipelines[0].pathsIgnore: a pipeline declares paths or pathsIgnore, not both");
    expect(refused({ waitFor: { ...waitFor, workflows: ["  "] } })).toMatch(/^pipelines\[0\]\.waitFor\.workflows\[0\]: must be/);
    expect(refused({ waitFor: { ...waitFor, workflows: ["CI\nfake"] } })).toMatch(/^pipelines\[0\]\.waitFor\.workflows\[0\]: must be/);
    expect(refused({ waitFor: { ...waitFor, checks: ["lint", "lint"] } })).toBe('pipelines[0].waitFor.checks: names "lint" twice');
    expect(refused({ waitFor: { workflows: [], checks: [], approval: false, timeoutMs: 1000 } })).toBe("pipelines[0].waitFor: waits for nothing: name workflows or checks, or set approval");
    expect(refused({ waitFor: { workflows: ["CI"], checks: [], timeoutMs: 1000 } })).toBe("pipelines[0].waitFor.approval: expected true or false, got nothing");
    expect(refused({ tags: "v*" })).toBe("pipelines[0].tags: expected a list, got a string (\"v*\")");
  });
});
