/**
 * How long branch filtering takes on hostile input — 50 copies of each pattern that made the old
 * backtracking RegExp hang, against a 10,000-character branch of `a`s. A measurement, not a test
 * (the machine is shared and noisy). `npm run bench` prints one row (`globRow`);
 * `node bench/glob.ts` runs it alone: each pattern's 50 copies, then that row.
 */
import { matchesBranchFilters } from "../shared/glob.ts";
import type { Row } from "./stats.ts";

const BRANCH = "a".repeat(10_000);
const COPIES = 50;
/** Each pattern with the result it must give for BRANCH: a fast wrong answer is no answer. */
const HOSTILE: readonly { pattern: string; matches: boolean }[] = [
  { pattern: "*a*a*a*a*a*a*a*a*!", matches: false },
  { pattern: "*a*a*a*a*a*a*a*a*", matches: true },
  { pattern: `${"**a".repeat(20)}!`, matches: false },
  { pattern: `${"a?".repeat(100)}${"a".repeat(50)}`, matches: false },
  { pattern: `${"a+".repeat(60)}b`, matches: false },
  { pattern: "a+".repeat(60), matches: true },
  { pattern: `${"[a-z]*".repeat(40)}!`, matches: false },
];

export interface GlobResult {
  pattern: string;
  ms: number;
  matched: boolean;
  expected: boolean;
}

export function benchGlob(): GlobResult[] {
  return HOSTILE.map(({ pattern, matches }) => {
    const patterns = Array.from({ length: COPIES }, () => pattern);
    matchesBranchFilters("warm-up", patterns); // compiles once; later deliveries hit the cache
    const t0 = performance.now();
    const matched = matchesBranchFilters(BRANCH, patterns);
    return { pattern, ms: performance.now() - t0, matched, expected: matches };
  });
}

/**
 * The row for `npm run bench`: one list of 50 hostile globs, as a config could hold them. The first
 * selects the branch; the 49 after it are the non-matching hostile patterns above, negated. Lists are
 * read from the last pattern back, so all 50 run, and the answer is true only if none of the 49
 * wrongly matches. ok: right, and at most half a second ("well under 1 s" on a shared machine).
 */
export function globRow(): Row {
  const hostile = HOSTILE.filter((h) => !h.matches).map((h) => `!${h.pattern}`);
  const list = ["*a*a*a*a*a*a*a*a*", ...Array.from({ length: COPIES - 1 }, (_, i) => hostile[i % hostile.length]!)];
  matchesBranchFilters("warm-up", list);
  const t0 = performance.now();
  const matched = matchesBranchFilters(BRANCH, list);
  const ms = performance.now() - t0;
  return {
    metric: `${list.length} hostile branch globs × ${BRANCH.length.toLocaleString("en")}-char branch`,
    value: `${ms.toFixed(0)} ms${matched ? "" : " (WRONG: not selected)"}`,
    target: "well under 1 s",
    ok: matched && ms <= 500,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of benchGlob()) {
    const shown = r.pattern.length > 40 ? `${r.pattern.slice(0, 37)}...` : r.pattern;
    console.log(`${r.ms.toFixed(1).padStart(8)} ms  ${COPIES} × ${shown} (${r.pattern.length} chars) → ${r.matched}${r.matched === r.expected ? "" : ` (WRONG: expected ${r.expected})`}`);
  }
  console.log(globRow());
}
