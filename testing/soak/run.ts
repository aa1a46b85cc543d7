/**
 * The mixed-fault soak (`npm run soak`, and a short run in `npm test`): faults chosen at random from a
 * printed seed are thrown one after another (now and then several at once) at the real worker and
 * agents while pushes keep arriving; after each, its recovery is waited for and the cheap invariants
 * checked; at the end, with everything healed and settled, every invariant (checks.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { constants as osConstants, tmpdir } from "node:os";
import { join } from "node:path";
import { api } from "../../dev/api.ts";
import { seededRandom } from "../redeliver.ts";
import { sleep } from "../../agent/common/sleep.ts";
import { add, doubleRuns, finalChecks, newFindings, type Findings } from "./checks.ts";
import { COMBO, FAULT_KINDS, type FaultKind, type FaultLimits, type FaultResult, throwFault } from "./faults.ts";
import { startTraffic } from "./traffic.ts";
import { startSoakWorld, TARGET, type SoakWorld } from "./world.ts";
import { summary } from "./summary.ts";

export interface SoakOptions {
  faults: number;
  seed: number;
  /** Stop throwing faults after this many minutes even if fewer were thrown (null: no limit). */
  minutes: number | null;
  limits?: Partial<FaultLimits>;
  /** The longest pause between two faults (default 2000 ms; at least 200). */
  gapMaxMs?: number;
  /**
   * The share of single faults that hit the worker (SIGKILL or restart). Default: as any other kind.
   * A worker start takes ~8 s under wrangler dev here, so the short run in npm test throws fewer.
   */
  workerShare?: number;
  /**
   * The share of faults that are an `evict` (default 0.03): each lets the object fall idle for 15–20 s,
   * so they are kept rarer than the rest. 0: none drawn (nothing drawn for it either).
   */
  evictShare?: number;
  /** Faults (by number, from 1) that are an `evict` whatever is drawn: the short run in npm test throws one. */
  evictAt?: readonly number[];
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
  /**
   * Signals that stop the run (`npm run soak`: SIGINT, SIGTERM): its worker, agents and proxies are
   * stopped and its small disks unmounted, the processes' output is kept, and the process exits 128 +
   * the signal's number. A second signal meanwhile ends it at once. Default: none (a test's own run).
   */
  stopOnSignals?: readonly NodeJS.Signals[];
}

export interface SoakResult {
  results: FaultResult[];
  findings: Findings;
  /** The table, the zeros and the last line. */
  text: string;
  ok: boolean;
  /** Kept when something was found (logs of every process), else removed. */
  dir: string;
  diskUnavailable: string | null;
}

const DEFAULT_LIMITS: FaultLimits = { maxPartitionSeconds: 90, maxDiskFullSeconds: 20, recoverTimeoutMs: 120_000 };

const WORKER_KINDS: readonly FaultKind[] = ["worker-kill", "worker-restart"];
const DEFAULT_EVICT_SHARE = 0.03;

function pickKind(kinds: FaultKind[], r: () => number, workerShare: number | undefined): FaultKind {
  if (workerShare === undefined) return kinds[Math.floor(r() * kinds.length)]!;
  const pool = r() < workerShare ? kinds.filter((k) => WORKER_KINDS.includes(k)) : kinds.filter((k) => !WORKER_KINDS.includes(k));
  return pool[Math.floor(r() * pool.length)]!;
}

async function settle(world: SoakWorld, f: Findings, timeoutMs: number): Promise<void> {
  const url = world.worker.url;
  const deadline = Date.now() + timeoutMs;
  const until = async (what: string, check: () => Promise<boolean>) => {
    while (Date.now() < deadline) {
      try {
        if (await check()) return true;
      } catch {
        /* ask again */
      }
      await sleep(250);
    }
    world.note(`settle: gave up waiting for ${what}`);
    return false;
  };
  await until("every delivery answered", async () => {
    for (const d of world.sender.unanswered()) await world.sender.resend(d);
    return world.sender.unanswered().length === 0;
  });
  await until("no job queued or running", async () => {
    const r = await api(url, `/api/targets/${TARGET}/jobs?limit=200`);
    return r.status === 200 && !(r.body.jobs as any[]).some((j) => j.status === "queued" || j.status === "running");
  });
  const ok = await until("every report sent", async () => {
    const r = await api(url, `/api/targets/${TARGET}/deployments?limit=200`);
    if (r.status !== 200) return false;
    for (const d of r.body.deployments as any[]) {
      const full = await api(url, `/api/targets/${TARGET}/deployments/${d.id}`);
      if (full.status !== 200 || ((full.body.reports ?? []) as any[]).some((x) => x.state === "pending" || x.state === "retrying")) return false;
    }
    return true;
  });
  if (!ok) add(f, "stuck", `reports still pending or retrying ${Math.round(timeoutMs / 1000)} s after the last fault`);
  // Every delivery once more: the same answer as the first (a redelivery after everything settled).
  for (const d of world.sender.deliveries) await world.sender.resend(d);
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const limits = { ...DEFAULT_LIMITS, ...o.limits };
  const progress = o.progress ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-soak-"));
  const faultRandom = seededRandom(o.seed);
  const pushRandom = seededRandom((o.seed ^ 0x5bd1e995) >>> 0);
  const findings = newFindings();
  const results: FaultResult[] = [];
  const started = Date.now();
  const world = await startSoakWorld(dir);
  let traffic: ReturnType<typeof startTraffic> | null = null;
  // Interrupted (^C): nothing of the run is left behind — no process, no mounted disk — but its output.
  /** What a run that found something, or was interrupted, leaves to trace it with. */
  const keep = () => {
    writeFileSync(join(dir, "findings.txt"), findings.details.join("\n") + "\n");
    const workerNow = `--- worker pid ${world.worker.process.pid} (the last)\n${world.worker.process.output()}`;
    writeFileSync(join(dir, "processes.log"), [...world.outputs, workerNow, ...world.hosts.map((h) => `--- agent ${h.name}\n${h.agent.process.output()}`)].join("\n"));
  };
  let interrupted: Promise<never> | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = new Promise<never>(() => {}); // the run's own ending waits for the exit below
    progress(`soak: ${signal} after ${results.length} fault(s): stopping its worker, agents and proxies and unmounting its disks`);
    void (async () => {
      await traffic?.stop().catch(() => undefined);
      await world.stop().catch(() => undefined);
      keep();
      progress(`soak: stopped; findings so far (${findings.details.length}) and every process's output kept in ${dir}`);
      process.exit(128 + (osConstants.signals[signal] ?? 0));
    })();
  };
  for (const signal of o.stopOnSignals ?? []) process.once(signal, onSignal);
  try {
    const kinds: FaultKind[] = FAULT_KINDS.filter((k) => k !== "disk-full" || world.diskUnavailable === null);
    // `evict` is drawn apart, at its own (smaller) share.
    const drawn = kinds.filter((k) => k !== "evict");
    if (world.diskUnavailable) progress(`soak: the full-disk fault cannot be produced here (${world.diskUnavailable}); it is left out`);
    traffic = startTraffic(world, pushRandom);
    let doubles = 0;
    const record = (i: number, result: FaultResult) => {
      results.push(result);
      world.note(`fault ${i}: ${result.what}; ${result.recovered ? `recovered in ${result.recoverMs} ms` : "NOT recovered"}`);
      progress(`fault ${i}/${o.faults} ${result.what}: ${result.recovered ? `recovered in ${(result.recoverMs / 1000).toFixed(1)} s` : "NOT RECOVERED"}`);
      for (const v of result.violations) {
        add(findings, v.includes("recount") || v.includes("log_usage") ? "storage" : "stuck", `fault ${i} (${result.what}): ${v}`);
        progress(`fault ${i}: finding: ${v}`); // as it happens: a long run's operator need not wait two hours for it
      }
      if (!result.recovered) add(findings, "stuck", `fault ${i} (${result.what}): not recovered within ${limits.recoverTimeoutMs / 1000} s`);
      const nowDoubles = doubleRuns(world).length;
      if (nowDoubles > doubles) progress(`fault ${i}: ${nowDoubles - doubles} job(s) ran twice on a host`);
      doubles = nowDoubles;
    };
    // Long partitions run in lanes beside the faults after them (faults.ts, LANE_KINDS).
    const lanes: Promise<void>[] = [];
    for (let i = 1; i <= o.faults; i++) {
      if (o.minutes !== null && Date.now() - started > o.minutes * 60_000) break;
      await sleep(200 + faultRandom() * (Math.max(200, o.gapMaxMs ?? 2000) - 200));
      const evictShare = o.evictShare ?? DEFAULT_EVICT_SHARE;
      const kind = o.evictAt?.includes(i)
        ? "evict"
        : faultRandom() < 0.12
          ? COMBO
          : evictShare > 0 && faultRandom() < evictShare
            ? "evict"
            : pickKind(drawn, faultRandom, o.workerShare);
      world.note(`fault ${i}: ${kind}`);
      const thrown = await throwFault(world, kind, faultRandom, limits);
      if ("lane" in thrown) {
        progress(`fault ${i}/${o.faults} ${kind} started in a lane of its own; faults go on meanwhile`);
        lanes.push(thrown.lane.then((result) => record(i, result)));
      } else {
        record(i, thrown.result);
      }
    }
    await Promise.all(lanes);
    await traffic.stop();
    traffic = null;
    progress(`soak: ${results.length} faults thrown in ${Math.round((Date.now() - started) / 1000)} s; settling and checking`);
    await settle(world, findings, 90_000);
    await finalChecks(world, findings);
  } finally {
    for (const signal of o.stopOnSignals ?? []) process.off(signal, onSignal);
    await traffic?.stop();
    await world.stop();
    if (interrupted !== null) await interrupted;
  }
  const minutes = (Date.now() - started) / 60_000;
  const text = summary(results, findings, o.seed, minutes, world.diskUnavailable);
  const ok = Object.values(findings.counters).every((n) => n === 0);
  if (ok) {
    rmSync(dir, { recursive: true, force: true });
    rmSync(world.repo.dir, { recursive: true, force: true });
  } else {
    keep();
  }
  return { results, findings, text, ok, dir, diskUnavailable: world.diskUnavailable };
}
