import { describe, expect, it } from "vitest";
import { jobFieldProblems } from "./job-fields.ts";
import { textValueProblem } from "./text-value.ts";

const base = {
  delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
  event: "push",
  repo: "owner/app",
  ref: "refs/heads/main",
  sha: "a".repeat(40),
  before: "0".repeat(40),
  pusher: "octocat",
};

describe("textValueProblem", () => {
  it("accepts plain text, accents and paired surrogates (emoji)", () => {
    expect(textValueProblem("Ève 🚀 deploys", { maxBytes: 100 })).toBeNull();
  });

  it("refuses a NUL, naming it", () => {
    expect(textValueProblem("eve\u0000x", { maxBytes: 100 })).toMatch(/NUL/);
  });

  it("refuses C0, DEL and C1 control characters, naming the code point", () => {
    expect(textValueProblem("a\u001bb", { maxBytes: 100 })).toMatch(/U\+001B/);
    expect(textValueProblem("a\u007fb", { maxBytes: 100 })).toMatch(/U\+007F/);
    expect(textValueProblem("a\u0085b", { maxBytes: 100 })).toMatch(/U\+0085/);
    expect(textValueProblem("a\rb", { maxBytes: 100 })).toMatch(/U\+000D/);
  });

  it("allows tab and newline only in multiline values", () => {
    expect(textValueProblem("a\nb\tc", { maxBytes: 100, multiline: true })).toBeNull();
    expect(textValueProblem("a\nb", { maxBytes: 100 })).toMatch(/U\+000A/);
    expect(textValueProblem("a\u0000b", { maxBytes: 100, multiline: true })).toMatch(/NUL/);
  });

  it("refuses unpaired surrogates, high or low", () => {
    expect(textValueProblem("x\ud800", { maxBytes: 100 })).toMatch(/unpaired surrogate/);
    expect(textValueProblem("\udc00x", { maxBytes: 100 })).toMatch(/unpaired surrogate/);
  });

  it("bounds the length in UTF-8 bytes, not UTF-16 units", () => {
    expect(textValueProblem("é".repeat(60), { maxBytes: 100 })).toMatch(/120 bytes long, more than the 100/);
    expect(textValueProblem("é".repeat(50), { maxBytes: 100 })).toBeNull();
  });
});

describe("jobFieldProblems", () => {
  it("accepts a real push's fields", () => {
    expect(jobFieldProblems(base)).toEqual([]);
  });

  it("names each bad field and why", () => {
    const problems = jobFieldProblems({ ...base, pusher: "eve\u0000x", repo: "a/b/c", ref: "refs/pull/1/merge", sha: "XYZ" });
    expect(problems).toEqual([
      expect.stringMatching(/^repo must be owner\/name/),
      expect.stringMatching(/^ref must be refs\/heads\/<branch> or refs\/tags\/<tag>$/),
      expect.stringMatching(/^sha must be 40 or 64/),
      expect.stringMatching(/^pusher contains a NUL/),
    ]);
  });

  it("refuses a 200 KB pusher", () => {
    expect(jobFieldProblems({ ...base, pusher: "p".repeat(200_000) })).toEqual([expect.stringMatching(/^pusher is 200000 bytes long/)]);
  });
});
