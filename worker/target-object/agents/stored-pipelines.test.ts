import { describe, expect, it } from "vitest";
import { MAX_PARSED_DECLARATION_CHARS, parsedDeclarationChars, readStoredPipelines } from "./agents.ts";

const declaration = (name: string) =>
  JSON.stringify([
    { name, repo: "acme/app", events: ["push"], branches: ["main"], steps: ["deploy"], onFailure: [], timeoutMs: 60_000, rollout: { batch: "10%", haltOnFailure: true } },
  ]);

describe("stored declarations: a fleet declaring the same pipelines is read once", () => {
  it("gives the same parsed value for the same text, frozen so no caller can change it for the others", () => {
    const text = declaration("app");
    const a = readStoredPipelines(text);
    const b = readStoredPipelines(String(text)); // an equal string read from another row
    expect(b).toBe(a);
    expect(a).toEqual([expect.objectContaining({ name: "app", rollout: { batch: "10%", haltOnFailure: true } })]);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a[0])).toBe(true);
    expect(Object.isFrozen(a[0]!.branches)).toBe(true);
    expect(Object.isFrozen(a[0]!.rollout)).toBe(true);
  });

  it("reads a different text as its own, and still refuses a bad one every time", () => {
    expect(readStoredPipelines(declaration("web"))[0]!.name).toBe("web");
    expect(readStoredPipelines(declaration("app"))[0]!.name).toBe("app");
    expect(() => readStoredPipelines('[{"name": 1}]')).toThrow();
    expect(() => readStoredPipelines('[{"name": 1}]')).toThrow();
  });
});

describe("stored declarations: the memory they keep is bounded", () => {
  it("still reads (and shares) declarations after more than the bound's worth of distinct texts went through", () => {
    const big = (i: number) =>
      JSON.stringify([
        { name: `p${i}`, repo: "acme/app", events: ["push"], branches: Array.from({ length: 50 }, (_, b) => `release/${i}-${b}-${"x".repeat(200)}`), steps: ["deploy"], onFailure: [], timeoutMs: 60_000 },
      ]);
    // ~11 KB each: 400 of them is over twice MAX_PARSED_DECLARATION_CHARS; the oldest are let go, the newest kept.
    for (let i = 0; i < 400; i++) {
      expect(readStoredPipelines(big(i))[0]!.name).toBe(`p${i}`);
      expect(parsedDeclarationChars()).toBeLessThanOrEqual(MAX_PARSED_DECLARATION_CHARS);
    }
    expect(parsedDeclarationChars()).toBeGreaterThan(MAX_PARSED_DECLARATION_CHARS / 2);
    expect(readStoredPipelines(big(399))).toBe(readStoredPipelines(big(399)));
    expect(readStoredPipelines(big(0))[0]!.branches).toHaveLength(50);
  });
});
