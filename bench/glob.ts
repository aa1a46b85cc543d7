/**
 * `node bench/glob.ts`: how long branch filtering takes on hostile input — 50 copies of each pattern
 * that made the old backtracking RegExp hang, against a 10,000-character branch of `a`s. Prints
 * milliseconds; a measurement, not a test (the machine is shared and noisy).
 */
import { matchesBranchFilters } from "../shared/glob.ts";

const branch = "a".repeat(10_000);
const hostile = [
  "*a*a*a*a*a*a*a*a*!",
  `${"**a".repeat(20)}!`,
  `${"a?".repeat(100)}${"a".repeat(50)}`,
  `${"a+".repeat(60)}b`,
  `${"[a-z]*".repeat(40)}!`,
];

let total = 0;
for (const pattern of hostile) {
  const patterns = Array.from({ length: 50 }, () => pattern);
  matchesBranchFilters("warm-up", patterns); // compiles once; later deliveries hit the cache
  const t0 = performance.now();
  const matched = matchesBranchFilters(branch, patterns);
  const ms = performance.now() - t0;
  total += ms;
  console.log(`${ms.toFixed(1).padStart(8)} ms  50 × ${pattern.length > 40 ? `${pattern.slice(0, 37)}...` : pattern} (${pattern.length} chars) → ${matched}`);
}
console.log(`${total.toFixed(1).padStart(8)} ms  total, branch of ${branch.length} a's`);
