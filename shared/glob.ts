/**
 * Filters with GitHub Actions' filter-pattern syntax: the `branches:`, `tags:`, `paths:` and
 * `paths-ignore:` keys of `on.push` share it.
 *
 * A pattern is matched against the whole name — a branch without `refs/heads/`, a tag without
 * `refs/tags/`, a file's path from the repository's root — case-sensitively:
 * - `*` matches zero or more characters except `/`; `**` matches zero or more of any character.
 *   A `**` then `/`, at the start of the pattern or right after a `/`, also matches no directory at
 *   all, as GitHub's table has it: `**` + `/README.md` matches `README.md`, and `docs/**` + `/*.md`
 *   matches `docs/a.md`.
 * - `?` makes the preceding character (or `[...]`) optional: zero or one of it.
 * - `+` matches one or more of the preceding character (or `[...]`).
 * - `[...]` matches one character listed or in a range; ranges lie within `a-z`, `A-Z` or `0-9`
 *   (e.g. `[0-9]`, `[CB]`, `[0-9a-f]`). `-` first or last is listed literally, `\` escapes inside.
 *   `[^...]` is rejected: GitHub documents no negated classes.
 * - `\` makes the next character literal (`\*`, `\?`, `\+`, `\[`, `\\`, `\!`).
 * - `!` as the first character negates the pattern; anywhere else it is literal.
 * - Everything else is literal; a `?` or `+` must follow a character or `[...]` (not `*`, `?`, `+`).
 *
 * A list is read in order, as GitHub does: a branch is selected when the last pattern matching it
 * is positive, so a later `!pattern` excludes and a later positive pattern re-includes. A list of
 * only `!` patterns selects nothing. An invalid pattern (see `globProblem`) never matches.
 *
 * Matching never builds a RegExp from a pattern and never backtracks: each pattern compiles once
 * (cached) into a list of items — a character test with "once", "optional" or "any number of
 * times" — and the branch is run through it with a set of live positions (Thompson's
 * construction). Cost: at most (branch length + 1) × (items + 1) steps, items ≤ 2 × pattern length.
 */
export const MAX_PATTERN_LENGTH = 255;
const CACHE_MAX = 2000;

type Repeat = "one" | "opt" | "star";
/** One character test — inclusive code point ranges as [lo, hi, lo, hi, …] — and how often it may match. */
interface Item {
  ranges: readonly number[];
  repeat: Repeat;
  /** A `**` then `/` that may match no directory: this position also leads past the `/` without consuming. */
  skipSlash?: true;
}
type Compiled = { ok: true; negated: boolean; items: readonly Item[] } | { ok: false; problem: string };

const cp = (c: string) => c.codePointAt(0)!;
const [SLASH, STAR, QUESTION, PLUS, BANG, CARET] = [cp("/"), cp("*"), cp("?"), cp("+"), cp("!"), cp("^")];
const [LBRACKET, RBRACKET, BACKSLASH, DASH] = [cp("["), cp("]"), cp("\\"), cp("-")];
const ANY = [0, 0x10ffff];
const NOT_SLASH = [0, SLASH - 1, SLASH + 1, 0x10ffff];

/** Selects `name` (a branch, a tag, a path) when the last pattern in `patterns` that matches it is positive. */
export function matchesFilters(name: string, patterns: readonly string[]): boolean {
  for (let i = patterns.length - 1; i >= 0; i--) {
    const p = compile(patterns[i]!);
    if (p.ok && simulate(p.items, name)) return !p.negated;
  }
  return false;
}

/** Selects `branch` when the last pattern in `patterns` that matches it is positive. */
export function matchesBranchFilters(branch: string, patterns: readonly string[]): boolean {
  return matchesFilters(branch, patterns);
}

/** Why `pattern` is not a valid filter pattern, or null. */
export function globProblem(pattern: string): string | null {
  const p = compile(pattern);
  return p.ok ? null : p.problem;
}

/** GitHub's list rule: `!` patterns only exclude, so a list needs at least one positive pattern. */
export function branchFiltersProblem(patterns: readonly string[]): string | null {
  if (patterns.some((p) => !p.startsWith("!"))) return null;
  return "needs at least one pattern without a leading ! (a list of only ! patterns selects nothing)";
}

/**
 * How many position visits matching `branch` against one pattern takes (the negation is ignored);
 * -1 for an invalid pattern. For tests and the bench: it stays within the bound in the header.
 */
export function matchCost(pattern: string, branch: string): number {
  const p = compile(pattern);
  if (!p.ok) return -1;
  const cost = { visits: 0 };
  simulate(p.items, branch, cost);
  return cost.visits;
}

// Patterns come from agents' declarations and repeat on every delivery: compile each once.
const cache = new Map<string, Compiled>();

function compile(pattern: string): Compiled {
  const hit = cache.get(pattern);
  if (hit !== undefined) {
    cache.delete(pattern); // least recently used first
    cache.set(pattern, hit);
    return hit;
  }
  const compiled = parse(pattern);
  cache.set(pattern, compiled);
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  return compiled;
}

function parse(pattern: string): Compiled {
  const bad = (problem: string): Compiled => ({ ok: false, problem });
  if (pattern.length === 0) return bad("empty pattern");
  if (pattern.length > MAX_PATTERN_LENGTH) return bad(`longer than ${MAX_PATTERN_LENGTH} characters`);
  const all = Array.from(pattern, cp);
  for (const [i, c] of all.entries()) {
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
      return bad(`control character U+${c.toString(16).toUpperCase().padStart(4, "0")} at character ${i + 1}`);
    }
  }
  const negated = all[0] === BANG;
  const cps = negated ? all.slice(1) : all;
  const at = (i: number) => `at character ${i + 1 + (negated ? 1 : 0)}`;
  if (cps.length === 0) return bad("nothing after !");

  const items: Item[] = [];
  let repeatable = false; // the last item is one character or [...] with no ?/+ yet
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === STAR) {
      const double = cps[i + 1] === STAR;
      const atSegmentStart = i === 0 || cps[i - 1] === SLASH;
      if (double) i++;
      const item: Item = { ranges: double ? ANY : NOT_SLASH, repeat: "star" };
      if (double && atSegmentStart && cps[i + 1] === SLASH) item.skipSlash = true;
      items.push(item);
      repeatable = false;
    } else if (c === QUESTION || c === PLUS) {
      const prev = items[items.length - 1];
      const ch = String.fromCodePoint(c);
      if (!repeatable || prev === undefined) {
        return bad(`${ch} ${at(i)} must follow a character or [...] (write \\${ch} for a literal ${ch})`);
      }
      if (c === QUESTION) prev.repeat = "opt";
      else items.push({ ranges: prev.ranges, repeat: "star" }); // x+ is x then x*
      repeatable = false;
    } else if (c === LBRACKET) {
      const set = parseSet(cps, i, at);
      if (typeof set === "string") return bad(set);
      items.push({ ranges: set.ranges, repeat: "one" });
      i = set.end;
      repeatable = true;
    } else if (c === BACKSLASH) {
      const next = cps[i + 1];
      if (next === undefined) return bad(`trailing \\ escapes nothing (write \\\\ for a literal \\)`);
      items.push(literal(next));
      i++;
      repeatable = true;
    } else {
      items.push(literal(c));
      repeatable = true;
    }
  }
  return { ok: true, negated, items };
}

function literal(c: number): Item {
  return { ranges: [c, c], repeat: "one" };
}

/** `[...]` starting at `start`: its ranges (pairs of code points) and the index of its `]`, or why not. */
function parseSet(cps: readonly number[], start: number, at: (i: number) => string): { ranges: number[]; end: number } | string {
  if (cps[start + 1] === CARET) return `[^...] ${at(start)}: negated classes are not supported`;
  const ranges: number[] = [];
  let j = start + 1;
  while (j < cps.length && cps[j] !== RBRACKET) {
    let lo = cps[j]!;
    if (lo === BACKSLASH) {
      j++;
      if (j >= cps.length) break;
      lo = cps[j]!;
    }
    j++;
    const hi = cps[j + 1];
    if (cps[j] === DASH && hi !== undefined && hi !== RBRACKET) {
      const range = `${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)}`;
      if (!sameRangeFamily(lo, hi)) return `range ${range} ${at(j)}: ranges must lie within a-z, A-Z or 0-9`;
      if (lo > hi) return `range ${range} ${at(j)} is reversed`;
      ranges.push(lo, hi);
      j += 2;
    } else ranges.push(lo, lo);
  }
  if (j >= cps.length) return `unclosed [ ${at(start)}`;
  if (ranges.length === 0) return `empty [] ${at(start)}`;
  return { ranges, end: j };
}

function sameRangeFamily(a: number, b: number): boolean {
  const family = (c: number) => (c >= 0x61 && c <= 0x7a ? 1 : c >= 0x41 && c <= 0x5a ? 2 : c >= 0x30 && c <= 0x39 ? 3 : 0);
  return family(a) !== 0 && family(a) === family(b);
}

/**
 * Thompson simulation. Position s means "items before s are matched"; position items.length accepts.
 * Each step visits each live position once (deduplicated by `mark`), so no input can make it backtrack.
 */
function simulate(items: readonly Item[], branch: string, cost?: { visits: number }): boolean {
  const end = items.length;
  let cur = new Int32Array(end + 1);
  let next = new Int32Array(end + 1);
  const mark = new Int32Array(end + 1).fill(-1);
  let step = 0;
  let live = 0;
  const hasSkip = items.some((item) => item.skipSlash);
  const stack = new Int32Array(end + 1);
  let top = 0;
  /**
   * Puts `u` on the stack unless it is there (or was) this step. `entry`: arriving at `u` from before
   * it (not a `*`/`**` staying put), which is when a skippable `**` may match no directory at all.
   */
  const reach = (u: number, entry: boolean): void => {
    if (entry && u < end && items[u]!.skipSlash) reach(u + 2, true);
    if (mark[u] === step) return;
    mark[u] = step;
    stack[top++] = u;
  };
  /** Adds `from` and every position reachable from it without consuming (past optional items, over a skippable `**` and its `/`) to `into`. */
  const close = (from: number, entry: boolean, into: Int32Array, count: number): number => {
    reach(from, entry);
    while (top > 0) {
      const t = stack[--top]!;
      into[count++] = t;
      if (t !== end && items[t]!.repeat !== "one") reach(t + 1, true);
    }
    return count;
  };
  // The start position and every position reachable from it without consuming.
  live = close(0, true, cur, 0);
  for (let i = 0; i < branch.length; ) {
    const c = branch.codePointAt(i)!;
    i += c > 0xffff ? 2 : 1;
    step++;
    let n = 0;
    for (let k = 0; k < live; k++) {
      const s = cur[k]!;
      if (s === end) continue;
      if (cost) cost.visits++;
      const item = items[s]!;
      const r = item.ranges;
      let hit = false;
      for (let j = 0; j < r.length; j += 2) if (c >= r[j]! && c <= r[j + 1]!) { hit = true; break; }
      if (!hit) continue;
      // Where consuming c leads, then onward without consuming.
      if (hasSkip) {
        n = item.repeat === "star" ? close(s, false, next, n) : close(s + 1, true, next, n);
        continue;
      }
      // Without a skippable `**`, what is reachable lies in a row: where consuming c leads, then onward past optional items.
      for (let t = item.repeat === "star" ? s : s + 1; mark[t] !== step; t++) {
        mark[t] = step;
        next[n++] = t;
        if (t === end || items[t]!.repeat === "one") break;
      }
    }
    const swap = cur;
    cur = next;
    next = swap;
    live = n;
    if (live === 0) return false;
  }
  return mark[end] === step;
}
