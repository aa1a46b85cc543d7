/**
 * For the rollout tests: deploy steps that write down when they ran (`<host> <what> <ns>` lines appended
 * to one file outside every workdir), read back, so a test proves order and overlap from what the steps
 * themselves wrote; and a checkout of its own per host.
 */
import { join } from "node:path";
import { fileLines } from "../dev/file-lines.ts";
import { git, type GitRepo } from "../dev/git-repo.ts";

/** The three hosts of a target, in the order a rollout takes them (agent-name order). */
export const HOSTS = ["web-1", "web-2", "web-3"] as const;
export type Host = (typeof HOSTS)[number];

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A step command appending `<host> <what> <wall-clock ns>` to `file`. The host is `$ROLLOUT_HOST`, which
 * each host's own pipeline env sets. One short line per `echo` with O_APPEND: lines from hosts writing
 * at once do not interleave.
 */
export function stampCommand(file: string, what: string): string {
  return `echo "$ROLLOUT_HOST ${what} $(date +%s%N)" >> ${shellQuote(file)}`;
}

export interface Stamp {
  host: string;
  what: string;
  ns: bigint;
}

/** Every line the steps wrote to `file`, in file order; none when no step wrote (the file is missing). */
export function readStamps(file: string): Stamp[] {
  return fileLines(file)
    .filter(Boolean)
    .map((line) => {
      const m = /^(\S+) (\S+) (\d+)$/.exec(line);
      if (!m) throw new Error(`${file}: not a stamp line: ${JSON.stringify(line)}`);
      return { host: m[1]!, what: m[2]!, ns: BigInt(m[3]!) };
    });
}

/** How many lines each host wrote of each kind: `{"web-1 start": 1, …}`. */
export function stampCounts(stamps: Stamp[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of stamps) counts[`${s.host} ${s.what}`] = (counts[`${s.host} ${s.what}`] ?? 0) + 1;
  return counts;
}

export interface Interval {
  host: string;
  start: bigint;
  end: bigint;
}

/**
 * Each host's interval from its `start` stamp to its `end` stamp, ordered by start. Throws when a host
 * wrote other than exactly one of each (a step run twice, or a job that never finished).
 */
export function intervals(stamps: Stamp[]): Interval[] {
  const hosts = [...new Set(stamps.map((s) => s.host))];
  return hosts
    .map((host) => {
      const starts = stamps.filter((s) => s.host === host && s.what === "start");
      const ends = stamps.filter((s) => s.host === host && s.what === "end");
      if (starts.length !== 1 || ends.length !== 1) throw new Error(`${host} wrote ${starts.length} start and ${ends.length} end stamps: ${JSON.stringify(stampCounts(stamps))}`);
      return { host, start: starts[0]!.ns, end: ends[0]!.ns };
    })
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

/** Whether two hosts' intervals share any moment. */
export function overlap(a: Interval, b: Interval): boolean {
  return a.start < b.end && b.start < a.end;
}

/** A live checkout of `repo`'s origin of `host`'s own (each host deploys its own copy). */
export function hostCheckout(repo: GitRepo, host: string): string {
  const dir = join(repo.dir, `live-${host}`);
  git(repo.dir, "clone", "-q", repo.origin, dir);
  return dir;
}
