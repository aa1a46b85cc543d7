/**
 * Does a long-lived agent's memory grow with the jobs it runs? One agent (the bundle, run as the unit
 * runs it: AGENT_V8_FLAGS and AGENT_MALLOC_ENV, as bench/agent-memory.ts does) on a real `wrangler dev`
 * worker is put through N small jobs in cycles of ten: output (`seq`), quiet, failing, a running job
 * canceled, three pushes of one pipeline back to back (the middle one superseded), and every fifth
 * cycle a 10 MB output step. Every job must end as its kind must (succeeded / failed / canceled /
 * superseded), or the run fails (exit status 1).
 *
 * At the start (12 s after connecting, as bench/agent-memory.ts reads it) and after every K jobs, once
 * the agent has been idle past its idle collection (2 s after a job) and a little more, it reads
 * RssAnon, `[heap]` (glibc's main heap) and the other anonymous mappings, then through the probe
 * (bench/agent-memory-probe.mjs, SIGUSR2) V8's heap used as found and after a forced full GC, and
 * RssAnon again after it. A leak of JavaScript objects shows as heap-used-after-gc growing with jobs.
 *
 *   node bench/agent-soak-memory.ts [--jobs 400] [--sample-every 50] [--snapshot DIR] [--no-build]
 *     --snapshot DIR   also a heap snapshot at each sample, into DIR (to diff in DevTools)
 *     --trim           diagnosis: after each sample, glibc's malloc_trim(0) in the agent (through gdb), and RssAnon
 *                      again — what of [heap] is freed memory glibc kept, as against memory in use
 *     --variant 'NAME={...}'  the agent's environment instead of the unit's, as JSON (as in agent-memory.ts);
 *                      repeatable, "unit" the unit's own; variants take turns round by round
 *     --bundle NAME=PATH  a variant running that bundle file instead of dist/hookrelay-agent.mjs
 *     --rounds R       rounds per variant (default 1), each a fresh agent on one worker; medians reported
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgent } from "../dev/agent-process.ts";
import { api, waitForAgent, waitForJob } from "../dev/api.ts";
import { createRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { REPO_ROOT, startWorker, TEST_SECRETS } from "../dev/worker-process.ts";
import { percentile } from "./stats.ts";
import { benchVariants, mb, PROBE, probeReading, readMemory, type MemoryReading } from "./agent-memory.ts";

const TARGET_PREFIX = "soak-memory";
const REPO = "bench/soak-memory";
const START_SETTLE_MS = 12_000;
/** After a job ends the agent collects once 2 s later (agent/runtime/idle-collect.ts); read after that and a little more. */
const SAMPLE_IDLE_MS = 4000;
const BIG_BYTES = 10_000_000;
const BIG_CMD = `head -c ${BIG_BYTES} < <(yes 'hookrelay benchmark output line 0123456789abcdef')`;

interface Sample {
  jobs: number;
  mem: MemoryReading;
  heapUsed?: number;
  heapUsedAfterGc?: number;
  arrayBuffersAfterGc?: number;
  /** V8's heap after the gc: physical bytes in all, and of the new, old and code spaces. */
  physicalAfterGc?: { all: number; new: number; old: number; code: number };
  /** After the gc: V8's own malloc'd memory (its zones, not the JS heap) and external memory (Buffers' stores among it). */
  mallocedAfterGc?: number;
  externalAfterGc?: number;
  /** With --trim: RssAnon after glibc's malloc_trim(0), called in the agent through gdb (free pages in the middle of the heap handed back too). */
  afterTrim?: MemoryReading;
  load: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SoakOptions {
  jobs: number;
  sampleEvery: number;
  env: Record<string, string>;
  /** A worker already running (rounds share one); default: one of its own. */
  url?: string;
  /** The round's name: its target (agents of one target declaring the same pipelines would share their jobs). */
  name?: string;
  snapshotDir?: string;
  trim?: boolean;
  /** Another bundle file than dist/hookrelay-agent.mjs (e.g. a build of another commit, or one patched for an experiment). */
  bundlePath?: string;
  log?: (s: string) => void;
}

export async function soak(o: SoakOptions): Promise<{ samples: Sample[]; problems: string[]; counts: Record<string, number> }> {
  const log = o.log ?? console.log;
  const own = o.url ? undefined : await startWorker();
  const worker = { url: o.url ?? own!.url };
  const TARGET = `${TARGET_PREFIX}-${o.name ?? "0"}`;
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-soak-memory-"));
  const probeFile = join(dir, "probe.jsonl");
  const repo = createRepo({ VERSION: "1\n" }, { dir });
  const env: Record<string, string> = { ...o.env };
  env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ""} --import ${PROBE} --expose-gc`.trim();
  env.HOOKRELAY_MEM_PROBE_FILE = probeFile;
  env.HOOKRELAY_MEM_PROBE_GC = "1";
  if (o.snapshotDir) env.HOOKRELAY_MEM_PROBE_SNAPSHOT = o.snapshotDir;
  const w = repo.live;
  const agent = await startAgent({
    server: worker.url,
    target: TARGET,
    name: "soak",
    bundle: true,
    ...(o.bundlePath ? { command: [process.execPath, o.bundlePath] } : {}),
    env,
    pipelines: [
      { name: "out", repo: REPO, branches: ["out"], workdir: w, steps: [{ name: "seq", run: "seq 1 2000" }] },
      { name: "quiet", repo: REPO, branches: ["quiet"], workdir: w, steps: [{ name: "noop", run: "true" }] },
      { name: "fail", repo: REPO, branches: ["fail"], workdir: w, steps: [{ name: "fail", run: "echo failing >&2; exit 3" }] },
      { name: "slow", repo: REPO, branches: ["slow"], workdir: w, steps: [{ name: "sleep", run: "echo started; sleep 60" }] },
      { name: "sup", repo: REPO, branches: ["sup"], workdir: w, steps: [{ name: "sleep", run: "sleep 0.5; echo done" }] },
      { name: "big", repo: REPO, branches: ["big"], workdir: w, timeout: "5m", steps: [{ name: "print", run: BIG_CMD }] },
    ],
  });
  const problems: string[] = [];
  const counts: Record<string, number> = {};
  const samples: Sample[] = [];
  let n = 0;
  const push = async (branch: string): Promise<string> => {
    n++;
    const after = n.toString(16).padStart(40, "0");
    const res = await sendWebhook(worker.url, { target: TARGET, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: `refs/heads/${branch}`, after }) });
    const id = res.body?.jobs?.[0]?.id as string | undefined;
    if (!id) throw new Error(`push to ${branch} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
    return id;
  };
  const expect = async (id: string, kind: string, want: string) => {
    const job = await waitForJob(worker.url, TARGET, id, undefined, 300_000);
    counts[`${kind} ${job.status}`] = (counts[`${kind} ${job.status}`] ?? 0) + 1;
    if (job.status !== want) problems.push(`job ${id} (${kind}) ended ${job.status}, expected ${want}`);
  };
  const sample = async () => {
    await sleep(SAMPLE_IDLE_MS);
    const mem = readMemory(agent.process.pid);
    await probeReading(agent.process.pid, probeFile, true, mem);
    const p = Array.isArray(mem.probe) ? (mem.probe as any[]) : [];
    const s: Sample = { jobs: n, mem, heapUsed: p[0]?.memoryUsage.heapUsed, heapUsedAfterGc: p[1]?.memoryUsage.heapUsed, arrayBuffersAfterGc: p[1]?.memoryUsage.arrayBuffers,
      mallocedAfterGc: p[1]?.malloced,
      externalAfterGc: p[1]?.memoryUsage.external,
      ...(p[1] ? { physicalAfterGc: { all: p[1].physical, new: p[1].spaces.new_space.physical, old: p[1].spaces.old_space.physical, code: p[1].spaces.code_space.physical } } : {}),
      load: loadavg()[0]! };
    if (!p[1]) problems.push(`no probe answer at ${n} jobs: ${String(mem.probe)}`);
    if (o.trim) {
      // Diagnosis only: what of [heap] is free memory glibc kept (fragments) rather than memory in use.
      // First glibc's own account of its heaps (free chunks by size), then the trim.
      const info = join(dir, `malloc-info-${n}.xml`);
      const r = spawnSync(
        "gdb",
        ["-p", String(agent.process.pid), "-batch", "-ex", `call (void *) fopen("${info}", "w")`, "-ex", "call (int) malloc_info(0, $1)", "-ex", "call (int) fclose($1)", "-ex", "call (int) malloc_trim(0)"],
        { encoding: "utf8" },
      );
      if (existsSync(info)) log(`  main arena's free chunks (size range: count, bytes): ${describeFree(readFileSync(info, "utf8"))}`);
      if (r.status !== 0) problems.push(`gdb malloc_trim: ${r.stderr.slice(-300)}`);
      else s.afterTrim = readMemory(agent.process.pid);
    }
    samples.push(s);
    log(describeSample(s));
  };
  try {
    await waitForAgent(worker.url, TARGET, "soak");
    await sleep(START_SETTLE_MS);
    await sample();
    let cycle = 0;
    let nextSample = o.sampleEvery;
    while (n < o.jobs && problems.length === 0) {
      cycle++;
      const big = cycle % 5 === 0;
      for (const branch of ["out", "out", "quiet", big ? "big" : "out", "fail", "out"]) {
        await expect(await push(branch), branch, branch === "fail" ? "failed" : "succeeded");
      }
      // A running job canceled.
      const slow = await push("slow");
      await waitForJob(worker.url, TARGET, slow, ["running", "succeeded", "failed", "canceled", "interrupted", "timed_out"], 60_000);
      const c = await api(worker.url, `/api/targets/${TARGET}/jobs/${slow}/cancel`, { method: "POST" });
      if (c.status !== 202) problems.push(`cancel of ${slow} answered ${c.status}`);
      await expect(slow, "slow", "canceled");
      // Three back to back: the first runs, the second waits and is superseded by the third.
      const sup = [await push("sup"), await push("sup"), await push("sup")];
      await expect(sup[2]!, "sup (last)", "succeeded");
      await expect(sup[1]!, "sup (middle)", "superseded");
      await expect(sup[0]!, "sup (first)", "succeeded");
      if (n >= nextSample) {
        await sample();
        while (nextSample <= n) nextSample += o.sampleEvery;
      }
    }
    if (samples.at(-1)?.jobs !== n) await sample();
  } finally {
    await agent.stop();
    await own?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { samples, problems, counts };
}

/** The first (main) arena's free chunks from glibc's malloc_info XML, by size range, largest total first. */
function describeFree(xml: string): string {
  const heap = /<heap nr="0">([\s\S]*?)<\/heap>/.exec(xml)?.[1] ?? "";
  const sizes = [...heap.matchAll(/<(?:size|unsorted) from="(\d+)" to="(\d+)" total="(\d+)" count="(\d+)"\/>/g)].map((m) => ({ from: Number(m[1]), to: Number(m[2]), total: Number(m[3]), count: Number(m[4]) }));
  const rest = /<total type="rest" count="(\d+)" size="(\d+)"\/>/.exec(heap);
  const system = /<system type="current" size="(\d+)"\/>/.exec(heap);
  return (
    sizes
      .sort((a, b) => b.total - a.total)
      .slice(0, 6)
      .map((z) => `${z.from}–${z.to}: ${z.count}, ${mb(z.total / 1024)} MB`)
      .join("; ") + ` (free in all ${rest ? mb(Number(rest[2]) / 1024) : "?"} MB of ${system ? mb(Number(system[1]) / 1024) : "?"} MB)`
  );
}

function describeSample(s: Sample): string {
  const m = s.mem;
  const kb = (b: number | undefined) => (b === undefined ? "?" : mb(b / 1024));
  return (
    `jobs ${String(s.jobs).padStart(4)}: RssAnon ${mb(m.rssAnonKb)} MB ([heap] ${mb(m.heapKb)}, anon maps ${mb(m.anonMapsKb)}), RSS ${mb(m.rssKb)} MB; ` +
    `V8 heap used ${kb(s.heapUsed)} → ${kb(s.heapUsedAfterGc)} MB after gc (arrayBuffers ${kb(s.arrayBuffersAfterGc)}; physical ${kb(s.physicalAfterGc?.all)}: new ${kb(s.physicalAfterGc?.new)}, old ${kb(s.physicalAfterGc?.old)}, code ${kb(s.physicalAfterGc?.code)}), then RssAnon ${m.afterGc ? mb(m.afterGc.rssAnonKb) : "?"} MB ([heap] ${m.afterGc ? mb(m.afterGc.heapKb) : "?"}); V8 malloced ${kb(s.mallocedAfterGc)}, external ${kb(s.externalAfterGc)}` +
    (s.afterTrim ? `; after malloc_trim(0) RssAnon ${mb(s.afterTrim.rssAnonKb)} MB ([heap] ${mb(s.afterTrim.heapKb)}, anon maps ${mb(s.afterTrim.anonMapsKb)})` : "") +
    `; load ${s.load.toFixed(1)}`
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      jobs: { type: "string", default: "400" },
      "sample-every": { type: "string", default: "50" },
      snapshot: { type: "string" },
      variant: { type: "string", multiple: true },
      rounds: { type: "string", default: "1" },
      bundle: { type: "string", multiple: true },
      trim: { type: "boolean", default: false },
      "no-build": { type: "boolean", default: false },
    },
  });
  const { variants, bundles } = benchVariants(values.variant, values.bundle);
  if (!values["no-build"]) execFileSync(process.execPath, [join(REPO_ROOT, "scripts/build-agent.ts"), "--no-sea"], { stdio: "ignore" });
  const worker = await startWorker();
  const results: { variant: string; round: number; start: Sample; end: Sample }[] = [];
  let failed = false;
  try {
    let round = 0;
    for (let i = 0; i < Number(values.rounds); i++) {
      // Variants take turns, the order reversed every other round.
      for (const v of i % 2 === 0 ? variants : [...variants].reverse()) {
        round++;
        console.log(`round ${round}: variant ${v.name} ${JSON.stringify(v.env)}, ${values.jobs} jobs, a sample every ${values["sample-every"]}; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
        const r = await soak({ jobs: Number(values.jobs), sampleEvery: Number(values["sample-every"]), env: v.env, url: worker.url, name: String(round), bundlePath: bundles.get(v.name), snapshotDir: values.snapshot, trim: values.trim });
        console.log(`  jobs by kind and status: ${JSON.stringify(r.counts)}`);
        const first = r.samples[0];
        const last = r.samples.at(-1);
        if (first && last) {
          results.push({ variant: v.name, round, start: first, end: last });
          console.log(
            `soak: variant=${v.name} jobs=${last.jobs} rssanon_start_mb=${mb(first.mem.rssAnonKb)} rssanon_end_mb=${mb(last.mem.rssAnonKb)} ratio=${(last.mem.rssAnonKb / first.mem.rssAnonKb).toFixed(2)} ` +
              `heap_start_mb=${mb(first.mem.heapKb)} heap_end_mb=${mb(last.mem.heapKb)} heap_used_after_gc_start_mb=${mb((first.heapUsedAfterGc ?? NaN) / 1024)} heap_used_after_gc_end_mb=${mb((last.heapUsedAfterGc ?? NaN) / 1024)}`,
          );
        }
        if (r.problems.length) {
          console.error(`FAILED: ${r.problems.join("; ")}`);
          failed = true;
        }
      }
    }
  } finally {
    await worker.stop();
  }
  if (results.length > 1) {
    for (const v of variants) {
      const rs = results.filter((r) => r.variant === v.name);
      const ratios = rs.map((r) => r.end.mem.rssAnonKb / r.start.mem.rssAnonKb);
      console.log(
        `${v.name}: ${rs.length} rounds, RssAnon start → end median ${mb(percentile(rs.map((r) => r.start.mem.rssAnonKb), 50))} → ${mb(percentile(rs.map((r) => r.end.mem.rssAnonKb), 50))} MB, ` +
          `[heap] end median ${mb(percentile(rs.map((r) => r.end.mem.heapKb), 50))} MB, ratio each round ${ratios.map((x) => x.toFixed(2)).join(", ")}, median ${percentile(ratios, 50).toFixed(2)}×`,
      );
    }
  }
  if (failed) process.exitCode = 1;
}
