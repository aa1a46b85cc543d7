import { describe, expect, it } from "vitest";
import { parseAgentMessage } from "./protocol.ts";
import { batchHosts, batchProblem } from "./rollout.ts";

describe("rollout batch", () => {
  it.each([
    [1, 3, 1],
    [2, 3, 2],
    [5, 3, 3],
    ["50%", 3, 2], // 1.5 rounds up
    ["34%", 3, 2],
    ["33%", 3, 1],
    ["1%", 3, 1],
    ["100%", 3, 3],
    ["50%", 1, 1],
  ] as const)("batch %s of %i hosts is %i", (batch, hosts, expected) => {
    expect(batchHosts(batch, hosts)).toBe(expected);
  });

  it.each([0, -1, 1.5, 101, "0%", "101%", "50", "5 %", "050%", "%", null, true, {}])("refuses %j", (value) => {
    expect(batchProblem(value)).toMatch(/must be/);
  });

  it.each([1, 100, "1%", "50%", "100%"])("accepts %j", (value) => {
    expect(batchProblem(value)).toBeNull();
  });

  const hello = (pipeline: Record<string, unknown>) =>
    JSON.stringify({
      type: "hello", protocol: 2, agent: "web-1", version: "t", unfinished: [],
      pipelines: [{ name: "app", repo: "o/r", events: ["push"], branches: ["main"], steps: ["a"], onFailure: [], timeoutMs: 1000, ...pipeline }],
    });

  it("a hello without rollout gets one host at a time, halting (an agent from before deployments)", () => {
    const parsed = parseAgentMessage(hello({}));
    expect(parsed.ok && parsed.message.type === "hello" && parsed.message.pipelines[0]!.rollout).toEqual({ batch: 1, haltOnFailure: true });
  });

  it("a hello with a bad rollout is refused naming the field", () => {
    expect(parseAgentMessage(hello({ rollout: { batch: "150%", haltOnFailure: true } }))).toEqual({
      ok: false,
      error: expect.stringContaining("pipelines[0].rollout.batch: must be"),
    });
    expect(parseAgentMessage(hello({ rollout: { batch: 2 } }))).toEqual({ ok: false, error: expect.stringContaining("pipelines[0].rollout.haltOnFailure") });
  });
});
