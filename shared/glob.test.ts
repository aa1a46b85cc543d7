import { describe, expect, it } from "vitest";
import { branchFiltersProblem, globProblem, matchCost, matchesBranchFilters } from "./glob.ts";

const matches = (pattern: string, branch: string) => matchesBranchFilters(branch, [pattern]);

describe("branch filter patterns", () => {
  // GitHub's "Patterns to match branches and tags" table, plus the names each must not match.
  it.each([
    ["feature/*", ["feature/my-branch", "feature/your-branch", "feature/"], ["feature/your/branch", "feature", "features/x"]],
    ["feature/**", ["feature/beta-a/my-branch", "feature/your-branch", "feature/mona/the/octocat"], ["feature", "other/feature/x"]],
    ["main", ["main"], ["main2", "mainline", "Main", "xmain"]],
    ["releases/mona-the-octocat", ["releases/mona-the-octocat"], ["releases/mona-the-octocats"]],
    ["*", ["main", "releases", ""], ["feature/x", "releases/1"]],
    ["**", ["all/the/branches", "every/tag", "main", ""], []],
    ["*feature", ["mona-feature", "feature", "ver-10-feature"], ["feature-x", "a/feature"]],
    ["v2*", ["v2", "v2.0", "v2.9"], ["v1", "v20/x", "xv2"]],
    ["v[12].[0-9]+.[0-9]+", ["v1.10.1", "v2.0.0", "v1.0.123"], ["v3.0.0", "v1.0", "v1..1", "v1.a.1", "v12.0.0"]],
  ])("%s", (pattern, yes, no) => {
    for (const b of yes) expect(matches(pattern, b), b).toBe(true);
    for (const b of no) expect(matches(pattern, b), b).toBe(false);
  });

  it("lets a ** then / at a segment start match no directory, as GitHub's table has it for paths (branches and tags alike)", () => {
    expect(["main", "team/main", "a/b/main"].map((b) => matches("**/main", b))).toEqual([true, true, true]);
    expect(["xmain", "team/xmain"].map((b) => matches("**/main", b))).toEqual([false, false]);
    expect(["release/v1", "release/x/v1"].map((b) => matches("release/**/v1", b))).toEqual([true, true]);
    expect(matches("release/**/v1", "release/xv1")).toBe(false);
    expect(matches("x**/main", "xmain")).toBe(false); // not at a segment start: ** is any characters, then /
    expect(matches("x**/main", "x/main")).toBe(true);
  });

  it("reads ? as zero or one of the preceding character and + as one or more", () => {
    expect(["page.js", "page.jsx"].map((b) => matches("*.jsx?", b))).toEqual([true, true]);
    expect(matches("*.jsx?", "page.jsxx")).toBe(false);
    expect(["ab", "abb", "abbbb"].map((b) => matches("ab+", b))).toEqual([true, true, true]);
    expect(matches("ab+", "a")).toBe(false);
    expect(matches("x[0-9]?y", "xy")).toBe(true);
    expect(matches("x[0-9]?y", "x7y")).toBe(true);
    expect(matches("x[0-9]?y", "x77y")).toBe(false);
    expect(matches("x😀?", "x")).toBe(true); // the preceding character is a code point, not half of one
    expect(matches("x😀+", "x😀😀")).toBe(true);
  });

  it("matches one character listed or in a range with [...]", () => {
    expect(["Cat", "Bat"].map((b) => matches("[CB]at", b))).toEqual([true, true]);
    expect(matches("[CB]at", "Rat")).toBe(false);
    expect(["100", "200"].map((b) => matches("[1-2]00", b))).toEqual([true, true]);
    expect(matches("[1-2]00", "300")).toBe(false);
    expect(["a", "b", "c"].map((b) => matches("[abc]", b))).toEqual([true, true, true]);
    expect(matches("[abc]", "ab")).toBe(false);
    expect(["7", "f", "Q"].map((b) => matches("[0-9a-zA-Z]", b))).toEqual([true, true, true]);
    expect(["-", "a"].map((b) => matches("[-a]", b))).toEqual([true, true]);
    expect(["-", "a", "b"].map((b) => matches("[a-]", b))).toEqual([true, true, false]);
    expect(matches("[\\]x]", "]")).toBe(true);
  });

  it("takes an escaped character literally", () => {
    expect(matches("v1\\*", "v1*")).toBe(true);
    expect(matches("v1\\*", "v10")).toBe(false);
    expect(matches("c\\+\\+", "c++")).toBe(true);
    expect(matches("why\\?", "why?")).toBe(true);
    expect(matches("why\\?", "wh")).toBe(false);
    expect(matches("\\[x]", "[x]")).toBe(true);
    expect(matches("a\\\\b", "a\\b")).toBe(true);
    expect(matches("\\!main", "!main")).toBe(true);
    expect(matches("\\!main", "main")).toBe(false);
  });

  it("reads ! as negation only at the start", () => {
    expect(matches("main!", "main!")).toBe(true);
    expect(matches("!main", "main")).toBe(false);
    expect(matches("!main", "dev")).toBe(false); // a negative pattern alone selects nothing
  });

  it("lets the last matching pattern decide, as GitHub's include-and-exclude example does", () => {
    const filters = ["releases/**", "!releases/**-alpha"];
    for (const b of ["releases/10", "releases/beta/mona"]) expect(matchesBranchFilters(b, filters), b).toBe(true);
    for (const b of ["releases/10-alpha", "releases/beta/3-alpha", "main"]) expect(matchesBranchFilters(b, filters), b).toBe(false);
    // A later positive pattern re-includes.
    const again = [...filters, "releases/beta/*-alpha"];
    expect(matchesBranchFilters("releases/beta/3-alpha", again)).toBe(true);
    expect(matchesBranchFilters("releases/10-alpha", again)).toBe(false);
    // Order matters: a positive pattern after the negative one wins.
    expect(matchesBranchFilters("releases/10-alpha", ["!releases/**-alpha", "releases/**"])).toBe(true);
    expect(matchesBranchFilters("main", [])).toBe(false);
    expect(matchesBranchFilters("main", ["!dev", "!main"])).toBe(false);
  });

  it("never matches with an invalid pattern, and the others in the list still count", () => {
    expect(matches("[a", "[a")).toBe(false);
    expect(matches("", "")).toBe(false);
    expect(matchesBranchFilters("main", ["[", "main"])).toBe(true);
    expect(matchesBranchFilters("main", ["main", "!["])).toBe(true);
  });

  it("is case-sensitive", () => {
    expect(matches("Main", "main")).toBe(false);
    expect(matches("[a-z]", "A")).toBe(false);
  });

  it("keeps matching correctly after more distinct patterns than the cache holds", () => {
    for (let i = 0; i < 2500; i++) expect(matches(`b${i}-[0-9]+`, `b${i}-42`)).toBe(true);
    expect(matches("b0-[0-9]+", "b0-x")).toBe(false);
    expect(matches("b2499-[0-9]+", "b2499-7")).toBe(true);
  });
});

describe("globProblem", () => {
  it("accepts the patterns GitHub documents", () => {
    for (const p of ["feature/*", "feature/**", "main", "*", "**", "*feature", "v2*", "v[12].[0-9]+.[0-9]+", "!releases/**-alpha", "*.jsx?", "[CB]at", "c\\+\\+", "a!b", "x]"]) {
      expect(globProblem(p), p).toBeNull();
    }
  });

  it.each([
    ["", "empty pattern"],
    ["!", "nothing after !"],
    ["a".repeat(256), "longer than 255 characters"],
    ["release/[0-9", "unclosed [ at character 9"],
    ["x[\\]", "unclosed [ at character 2"],
    ["x[]", "empty [] at character 2"],
    ["[a-Z]", "range a-Z at character 3: ranges must lie within a-z, A-Z or 0-9"],
    ["[!-~]", "range !-~ at character 3: ranges must lie within a-z, A-Z or 0-9"],
    ["[z-a]", "range z-a at character 3 is reversed"],
    ["[9-0]", "range 9-0 at character 3 is reversed"],
    ["[^a]", "[^...] at character 1: negated classes are not supported"],
    ["?x", "? at character 1 must follow a character or [...] (write \\? for a literal ?)"],
    ["+x", "+ at character 1 must follow a character or [...] (write \\+ for a literal +)"],
    ["!?x", "? at character 2 must follow a character or [...] (write \\? for a literal ?)"],
    ["v*?", "? at character 3 must follow a character or [...] (write \\? for a literal ?)"],
    ["v**+", "+ at character 4 must follow a character or [...] (write \\+ for a literal +)"],
    ["a+?", "? at character 3 must follow a character or [...] (write \\? for a literal ?)"],
    ["a??", "? at character 3 must follow a character or [...] (write \\? for a literal ?)"],
    ["main\\", "trailing \\ escapes nothing (write \\\\ for a literal \\)"],
    ["ma\tin", "control character U+0009 at character 3"],
    ["main\n", "control character U+000A at character 5"],
    ["ma\u007fin", "control character U+007F at character 3"],
    ["ma\u0085in", "control character U+0085 at character 3"],
  ])("%j: %s", (pattern, problem) => {
    expect(globProblem(pattern)).toBe(problem);
  });

  it("allows exactly 255 characters", () => {
    expect(globProblem("a".repeat(255))).toBeNull();
  });
});

describe("branchFiltersProblem", () => {
  it("requires at least one positive pattern", () => {
    expect(branchFiltersProblem(["main"])).toBeNull();
    expect(branchFiltersProblem(["!main", "**"])).toBeNull();
    expect(branchFiltersProblem(["!main", "!dev"])).toBe("needs at least one pattern without a leading ! (a list of only ! patterns selects nothing)");
    expect(branchFiltersProblem([])).not.toBeNull();
  });
});

describe("hostile patterns", () => {
  // Each took seconds to hours with the old backtracking RegExp. The matcher's cost is bounded by
  // (branch length + 1) × (items + 1), items ≤ 2 × pattern length; matchCost checks that bound
  // instead of a wall-clock time (this machine is shared and noisy).
  const branch = "a".repeat(10_000);
  const hostile = [
    "*a*a*a*a*a*a*a*a*!",
    `${"**a".repeat(20)}!`,
    `${"a?".repeat(100)}${"a".repeat(50)}`,
    `${"a+".repeat(60)}b`,
    `${"[a-z]*".repeat(40)}!`,
  ];

  it("answers 50 copies of each against 10,000 a's correctly", () => {
    for (const pattern of hostile) {
      expect(globProblem(pattern), pattern).toBeNull();
      expect(matchesBranchFilters(branch, Array.from({ length: 50 }, () => pattern)), pattern).toBe(false);
    }
    expect(matchesBranchFilters(branch, ["*a*a*a*a*a*a*a*a*"])).toBe(true);
    expect(matchesBranchFilters(branch, ["**a".repeat(20)])).toBe(true);
    expect(matchesBranchFilters("a".repeat(150), [`${"a?".repeat(100)}${"a".repeat(50)}`])).toBe(true);
  });

  it("stays within the linear bound", () => {
    for (const pattern of hostile) {
      const cost = matchCost(pattern, branch);
      expect(cost, pattern).toBeGreaterThan(0);
      expect(cost, pattern).toBeLessThanOrEqual((branch.length + 1) * (2 * pattern.length + 1));
    }
  });
});
