/**
 * `npm run soak -- --faults N [--seed S] [--minutes M] [--max-partition SECONDS]`: the mixed-fault soak
 * (testing/soak/, docs/soak.md) against the real worker and four real agents. Prints a line per fault,
 * then a table by fault kind, the zeros and, last, `soak: faults=N kinds=K lost=0 … seed=S minutes=M`.
 * Exits 1 when anything was lost, repeated, run twice, stuck or reported twice (or the log totals do
 * not match a recount), 2 on a usage error; SIGINT or SIGTERM stops what it started (processes, mounted
 * disks) and exits 130 or 143.
 */
import { parseArgs } from "node:util";
import { runSoak } from "../testing/soak/run.ts";

function usage(why: string): never {
  console.error(`soak: ${why}\nusage: npm run soak -- --faults N [--seed S] [--minutes M] [--max-partition SECONDS]`);
  process.exit(2);
}

function whole(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) usage(`--${name} must be a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

let values: Record<string, string | undefined>;
try {
  ({ values } = parseArgs({ options: { faults: { type: "string" }, seed: { type: "string" }, minutes: { type: "string" }, "max-partition": { type: "string" } }, strict: true }) as { values: Record<string, string | undefined> });
} catch (e) {
  usage(e instanceof Error ? e.message : String(e));
}
const faults = whole("faults", values.faults, 1000);
if (faults < 1) usage("--faults must be at least 1");
const seed = whole("seed", values.seed, Math.floor(Math.random() * 2 ** 32)) >>> 0;
const minutes = values.minutes === undefined ? null : whole("minutes", values.minutes, 0);
const maxPartitionSeconds = whole("max-partition", values["max-partition"], 90);

console.log(`soak: seed ${seed}, ${faults} faults${minutes !== null ? `, at most ${minutes} minutes` : ""}, partitions up to ${maxPartitionSeconds} s`);
const result = await runSoak({ faults, seed, minutes, limits: { maxPartitionSeconds }, progress: (line) => console.log(line), stopOnSignals: ["SIGINT", "SIGTERM"] });
if (!result.ok) console.log(`soak: findings and every process's output kept in ${result.dir}`);
console.log(result.text);
process.exit(result.ok ? 0 : 1);
