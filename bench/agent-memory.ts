/**
 * The agent's memory after floods of output, measured as its anonymous memory (`RssAnon` in
 * /proc/PID/status) against its own value at start: the node binary's own pages (RssFile, 42–48 MB)
 * are shared and no JavaScript change can remove them, so RSS is reported beside it, not judged.
 * One round: a fresh agent (the bundle, run as the unit runs it: AGENT_V8_FLAGS and AGENT_MALLOC_ENV
 * from agent/common/sea.ts) connects; 12 s later its RssAnon is the start value; then three steps
 * printing 50 MB each (each after the same command in plain bash, in turn, as `npm run bench` times
 * them; each step's stored head and tail byte-exact), a burst of deliveries, IDLE_MS idle, and its
 * RssAnon again, with the agent's CPU over that last idle second.
 *
 * `npm run bench` prints its row (`agentMemoryRow`, one round). `node bench/agent-memory.ts` runs it
 * alone, printing each round:
 *   --rounds N               rounds per variant (default 3; medians reported)
 *   --variant 'NAME={...}'   an environment for the agent instead of the unit's, as JSON (repeatable;
 *                            variants take turns round by round); "unit" is the unit's own
 *                            (its NODE_ARGS, if any, go on node's command line: flags NODE_OPTIONS refuses)
 *   --bundle NAME=PATH       run that variant with another bundle file (e.g. a build of another commit)
 *   --probe                  load bench/agent-memory-probe.mjs into the agent: process.memoryUsage()
 *                            and V8's heap spaces at start and after, to tell V8's heap from malloc's
 *   --snapshot DIR           with --probe, also a heap snapshot at start and after, into DIR
 *   --watch S                also print RssAnon every second for S seconds after the burst
 *   --gc                     with --probe, also a full GC (--expose-gc) after each reading, and the
 *                            memory read again: garbage not yet collected, as against memory held
 */
import { AGENT_MALLOC_ENV, AGENT_V8_FLAGS } from "../agent/common/sea.ts";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAgent } from "../dev/agent-process.ts";
import { waitForAgent, waitForJob } from "../dev/api.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { REPO_ROOT, startWorker, TEST_SECRETS } from "../dev/worker-process.ts";
import { percentile, printTable, settle, type Row } from "./stats.ts";

const TARGET = "memory-bench";
const REPO = "bench/memory";
const BIG_BYTES = 50_000_000;
// Not `yes | head` (under pipefail, yes's SIGPIPE fails the step): a step that failed is not counted.
const BIG_CMD = `head -c ${BIG_BYTES} < <(yes 'hookrelay benchmark output line 0123456789abcdef')`;
const STEPS = 3;
/** The agent at rest this long after the burst before the reading (the measurement: 8 s). */
const IDLE_MS = 8000;
/**
 * And this long after connecting before the start reading: V8's memory reducer runs its first
 * collections ~8.5 s into the process (--gc-memory-reducer-start-delay-ms=8000) and moves RssAnon by
 * 1–2 MB; read at 8 s after connecting, the start value fell before or after them (12.6–14.5 MB).
 */
const START_SETTLE_MS = 12_000;
/** Deliveries in the burst after the steps, 10 ms apart (most are superseded while one runs). */
const BURST = 100;
export const PROBE = join(import.meta.dirname, "agent-memory-probe.mjs");

/** The unit's own environment for the agent (what the generated systemd unit sets). */
export const UNIT_ENV: Readonly<Record<string, string>> = { NODE_OPTIONS: AGENT_V8_FLAGS, ...AGENT_MALLOC_ENV };

/**
 * The variants of `--variant NAME={json env}` (or "unit", the unit's own) and `--bundle NAME=PATH`
 * (that variant runs that bundle file; the unit's environment unless --variant names it too). Without
 * --variant: the unit's own, unless --bundle names the variants.
 */
export function benchVariants(variantArgs: string[] | undefined, bundleArgs: string[] | undefined): { variants: { name: string; env: Record<string, string> }[]; bundles: Map<string, string> } {
  const variants = (variantArgs ?? (bundleArgs ? [] : ["unit"])).map((v) => {
    if (v === "unit") return { name: "unit", env: { ...UNIT_ENV } };
    const eq = v.indexOf("=");
    if (eq <= 0) throw new Error(`--variant ${v}: expected NAME={json env} or "unit"`);
    return { name: v.slice(0, eq), env: JSON.parse(v.slice(eq + 1)) as Record<string, string> };
  });
  const bundles = new Map((bundleArgs ?? []).map((b) => [b.slice(0, b.indexOf("=")), b.slice(b.indexOf("=") + 1)] as const));
  for (const b of bundles.keys()) if (!variants.some((v) => v.name === b)) variants.push({ name: b, env: { ...UNIT_ENV } });
  return { variants, bundles };
}

export interface MemoryReading {
  rssAnonKb: number;
  rssKb: number;
  rssFileKb: number;
  /** Anonymous kB by mapping: the C allocator's main heap, the other anonymous mappings (V8's heap, other arenas, thread stacks), the rest (private pages of files). */
  heapKb: number;
  anonMapsKb: number;
  otherKb: number;
  probe?: unknown;
  /** With --gc: read again after the probe's full GC. */
  afterGc?: MemoryReading;
}

export interface MemoryRound {
  variant: string;
  start: MemoryReading;
  after: MemoryReading;
  ratio: number;
  stepMs: number[];
  bashMs: number[];
  /** The agent's CPU time per 50 MB step (its ticks across each step's job). */
  stepCpuMs: number[];
  exact: boolean;
  idleCpuPct: number;
  /** The agent's CPU time over the whole idle period after the burst (the idle collection's included). */
  idleCpuMs: number;
  problem?: string;
}

export function readMemory(pid: number): MemoryReading {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
  let heapKb = 0;
  let anonMapsKb = 0;
  let otherKb = 0;
  let name = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      name = header[1]!;
      continue;
    }
    const m = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (!m) continue;
    const n = Number(m[1]);
    if (name === "[heap]") heapKb += n;
    else if (name === "") anonMapsKb += n;
    else otherKb += n;
  }
  return { rssAnonKb: kb("RssAnon"), rssKb: kb("VmRSS"), rssFileKb: kb("RssFile"), heapKb, anonMapsKb, otherKb };
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The stored log of a step past the cap: the head, a marker line, the tail; each must be the command's bytes. */
export function storedHeadAndTailExact(stored: Buffer, expected: Buffer): boolean {
  const marker = stored.indexOf("[hookrelay] … ");
  if (marker <= 0) return false;
  const markerEnd = stored.indexOf("\n", marker) + 1;
  // The marker starts on a line of its own: a newline is added before it when the head ends mid-line.
  const headEnd = stored[marker - 1] === 0x0a && expected[marker - 1] !== 0x0a ? marker - 1 : marker;
  const head = stored.subarray(0, headEnd);
  const tail = stored.subarray(markerEnd);
  return head.equals(expected.subarray(0, head.length)) && tail.length > 0 && tail.equals(expected.subarray(expected.length - tail.length));
}

export interface RoundOptions {
  url: string;
  repo: GitRepo;
  variant: string;
  env: Record<string, string>;
  /** Another bundle file than dist/hookrelay-agent.mjs. */
  bundlePath?: string;
  probe?: boolean;
  gc?: boolean;
  snapshotDir?: string;
  expected: Buffer;
  name: string;
  /** Also print RssAnon every second for this long after the burst (to see when, if ever, it drops). */
  watchMs?: number;
}

/** The probe's lines for one signal (one, or two with --gc), and the memory read again after its GC. */
export async function probeReading(pid: number, file: string, gc: boolean, reading: MemoryReading): Promise<void> {
  const before = existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").length : 0;
  const want = gc ? 2 : 1;
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const lines = existsSync(file) ? readFileSync(file, "utf8").trim().split("\n") : [];
    if (lines.length >= before + want) {
      reading.probe = lines.slice(before).map((l) => JSON.parse(l));
      if (gc) reading.afterGc = readMemory(pid);
      return;
    }
  }
  reading.probe = "no answer from the probe";
}

/** One round on a fresh agent: start value, three 50 MB steps (bash in turn), a burst, idle, after value. */
export async function memoryRound(o: RoundOptions): Promise<MemoryRound> {
  const probeFile = join(mkdtempSync(join(tmpdir(), "hookrelay-mem-probe-")), "probe.jsonl");
  const { NODE_ARGS: nodeArgs, ...rest } = o.env;
  const env: Record<string, string> = { ...rest };
  // V8 flags NODE_OPTIONS does not take (e.g. --trace-gc) go on node's command line.
  const command = o.bundlePath || nodeArgs ? [process.execPath, ...(nodeArgs?.split(" ").filter(Boolean) ?? []), o.bundlePath ?? join(REPO_ROOT, "dist/hookrelay-agent.mjs")] : undefined;
  if (o.probe) {
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ""} --import ${PROBE}`.trim();
    env.HOOKRELAY_MEM_PROBE_FILE = probeFile;
    if (o.snapshotDir) env.HOOKRELAY_MEM_PROBE_SNAPSHOT = o.snapshotDir;
    if (o.gc) {
      env.NODE_OPTIONS += " --expose-gc";
      env.HOOKRELAY_MEM_PROBE_GC = "1";
    }
  }
  // A target per round: agents of one target declaring the same pipeline would share its rollout.
  const target = `${TARGET}-${o.name}`;
  const agent = await startAgent({
    server: o.url,
    target,
    name: o.name,
    bundle: true,
    ...(command ? { command } : {}),
    env,
    pipelines: [
      { name: "big", repo: REPO, branches: ["big"], workdir: o.repo.live, timeout: "5m", steps: [{ name: "print", run: BIG_CMD }] },
      { name: "burst", repo: REPO, branches: ["burst"], workdir: o.repo.live, steps: [{ name: "noop", run: "true" }] },
    ],
  });
  const problems: string[] = [];
  try {
    await waitForAgent(o.url, target, o.name).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}; the agent said: ${agent.process.output().slice(-1000)}`);
    });
    const pid = agent.process.pid;
    await sleep(START_SETTLE_MS);
    const start = readMemory(pid);
    if (o.probe) await probeReading(pid, probeFile, o.gc ?? false, start);
    const push = (branch: string) =>
      sendWebhook(o.url, { target, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: `refs/heads/${branch}`, after: "b".repeat(40) }) });
    const stepMs: number[] = [];
    const bashMs: number[] = [];
    const stepCpuMs: number[] = [];
    let exact = true;
    for (let i = 0; i < STEPS; i++) {
      await settle();
      const t = performance.now();
      spawnSync("bash", ["-eo", "pipefail", "-c", BIG_CMD], { stdio: ["ignore", "pipe", "ignore"], maxBuffer: 2 * BIG_BYTES });
      bashMs.push(performance.now() - t);
      await settle();
      const cpu = cpuTicks(pid);
      const res = await push("big");
      const id = res.body?.jobs?.[0]?.id as string | undefined;
      if (!id) {
        problems.push(`push answered ${res.status}`);
        break;
      }
      const job = await waitForJob(o.url, target, id, undefined, 300_000);
      if (job.status !== "succeeded") {
        problems.push(`step job ${job.status}`);
        break;
      }
      stepCpuMs.push((cpuTicks(pid) - cpu) * 10);
      const step = job.steps[0];
      stepMs.push(Date.parse(step.finishedAt) - Date.parse(step.startedAt));
      const stored = Buffer.from(await (await fetch(`${o.url}/api/targets/${target}/jobs/${id}/log?step=print`, { headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` } })).arrayBuffer());
      if (!storedHeadAndTailExact(stored, o.expected)) exact = false;
    }
    const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => sleep(i * 10).then(() => push("burst"))));
    const bad = answers.filter((a) => a.status < 200 || a.status >= 300).length;
    if (bad > 0) problems.push(`${bad} of the burst's deliveries not 2xx`);
    const last = answers.at(-1)?.body?.jobs?.[0]?.id as string | undefined;
    if (last) await waitForJob(o.url, target, last, undefined, 60_000).catch(() => problems.push("the burst's last job did not settle"));
    const idleStart = cpuTicks(pid);
    for (let t = 0; t < (o.watchMs ?? 0); t += 1000) {
      const m = readMemory(pid);
      console.log(`  +${t / 1000} s: RssAnon ${mb(m.rssAnonKb)} MB ([heap] ${mb(m.heapKb)}, anon maps ${mb(m.anonMapsKb)})`);
      await sleep(1000);
    }
    await sleep(IDLE_MS - 1000);
    const cpu0 = cpuTicks(pid);
    await sleep(1000);
    const idleCpuPct = cpuTicks(pid) - cpu0; // ticks of 10 ms in 1 s = percent
    const idleCpuMs = (cpuTicks(pid) - idleStart) * 10;
    const after = readMemory(pid);
    if (o.probe) await probeReading(pid, probeFile, o.gc ?? false, after);
    if (!exact) problems.push("a stored head or tail was not the step's bytes");
    return {
      variant: o.variant,
      start,
      after,
      ratio: after.rssAnonKb / start.rssAnonKb,
      stepMs,
      bashMs,
      stepCpuMs,
      exact,
      idleCpuPct,
      idleCpuMs,
      ...(problems.length ? { problem: problems.join("; ") } : {}),
    };
  } finally {
    await agent.stop();
  }
}

export const mb = (kb: number) => (kb / 1024).toFixed(1);

export function describeRound(r: MemoryRound): string {
  const step = percentile(r.stepMs, 50);
  const bash = percentile(r.bashMs, 50);
  return (
    `${r.variant}: RssAnon ${mb(r.start.rssAnonKb)} → ${mb(r.after.rssAnonKb)} MB (${r.ratio.toFixed(2)}×), RSS ${mb(r.start.rssKb)} → ${mb(r.after.rssKb)} MB; ` +
    `[heap] ${mb(r.start.heapKb)} → ${mb(r.after.heapKb)}, anon maps ${mb(r.start.anonMapsKb)} → ${mb(r.after.anonMapsKb)}, file-private ${mb(r.start.otherKb)} → ${mb(r.after.otherKb)}; ` +
    `step p50 ${step.toFixed(0)} ms = ${(step / bash).toFixed(2)}× bash ${bash.toFixed(0)} ms, agent CPU ${percentile(r.stepCpuMs, 50)} ms a step; idle CPU ${r.idleCpuPct} % (last 1 s), ${r.idleCpuMs} ms in all` +
    (r.problem ? `; FAILED: ${r.problem}` : "")
  );
}

/** The probe's view (V8's heap, external, arrayBuffers) and, after its GC, RssAnon again. */
function describeProbe(m: MemoryReading): string {
  if (!Array.isArray(m.probe)) return String(m.probe);
  const parts = m.probe.map((p: any) => `${p.phase}: V8 heap ${mb(p.physical / 1024)} MB physical (new ${mb(p.spaces.new_space.physical / 1024)}, old ${mb(p.spaces.old_space.physical / 1024)}, code ${mb(p.spaces.code_space.physical / 1024)}, lo ${mb(p.spaces.large_object_space.physical / 1024)}), external ${mb(p.memoryUsage.external / 1024)}, arrayBuffers ${mb(p.memoryUsage.arrayBuffers / 1024)}`);
  if (m.afterGc) parts.push(`then RssAnon ${mb(m.afterGc.rssAnonKb)} MB ([heap] ${mb(m.afterGc.heapKb)}, anon maps ${mb(m.afterGc.anonMapsKb)})`);
  return parts.join("; ");
}

function expectedOutput(): Buffer {
  return spawnSync("bash", ["-c", BIG_CMD], { maxBuffer: 2 * BIG_BYTES }).stdout as Buffer;
}

/** `npm run bench`'s row: one round on a worker of its own, the agent as the unit runs it. */
export async function agentMemoryRow(): Promise<Row> {
  const worker = await startWorker();
  try {
    const dir = mkdtempSync(join(tmpdir(), "hookrelay-bench-memory-"));
    const repo = createRepo({ VERSION: "1\n" }, { dir });
    const r = await memoryRound({ url: worker.url, repo, variant: "unit", env: { ...UNIT_ENV }, expected: expectedOutput(), name: "bench-memory" });
    return {
      metric: `agent RssAnon after ${STEPS} × 50 MB steps and ${BURST} deliveries, ${IDLE_MS / 1000} s idle ÷ at start`,
      value: `${mb(r.start.rssAnonKb)} → ${mb(r.after.rssAnonKb)} MB (RSS ${mb(r.start.rssKb)} → ${mb(r.after.rssKb)} MB)` + (r.problem ? `; FAILED: ${r.problem}` : ""),
      ratio: `${r.ratio.toFixed(2)}× start`,
      target: "≤ 1.25×",
      ok: !r.problem && r.ratio <= 1.25,
    };
  } finally {
    await worker.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "3" },
      variant: { type: "string", multiple: true },
      bundle: { type: "string", multiple: true },
      probe: { type: "boolean", default: false },
      gc: { type: "boolean", default: false },
      snapshot: { type: "string" },
      "no-build": { type: "boolean", default: false },
      watch: { type: "string", default: "0" },
    },
  });
  const { variants, bundles } = benchVariants(values.variant, values.bundle);
  if (!values["no-build"]) execFileSync(process.execPath, [join(REPO_ROOT, "scripts/build-agent.ts"), "--no-sea"], { stdio: "ignore" });
  const worker = await startWorker();
  const rounds: MemoryRound[] = [];
  try {
    const dir = mkdtempSync(join(tmpdir(), "hookrelay-bench-memory-"));
    const repo = createRepo({ VERSION: "1\n" }, { dir });
    const expected = expectedOutput();
    let n = 0;
    for (let i = 0; i < Number(values.rounds); i++) {
      for (const v of i % 2 === 0 ? variants : [...variants].reverse()) {
        const r = await memoryRound({ url: worker.url, repo, variant: v.name, env: v.env, bundlePath: bundles.get(v.name), probe: values.probe, gc: values.gc, snapshotDir: values.snapshot, expected, name: `mem-${n++}`, watchMs: Number(values.watch) * 1000 });
        rounds.push(r);
        console.log(describeRound(r));
        if (values.probe) for (const [when, m] of [["start", r.start], ["after", r.after]] as const) console.log(`  ${when}: ${describeProbe(m)}`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  } finally {
    await worker.stop();
  }
  const rows: Row[] = variants.map((v) => {
    const rs = rounds.filter((r) => r.variant === v.name);
    const med = (f: (r: MemoryRound) => number) => percentile(rs.map(f), 50);
    const stepRatio = med((r) => percentile(r.stepMs, 50) / percentile(r.bashMs, 50));
    return {
      metric: `${v.name}: RssAnon after ÷ at start (median of ${rs.length})`,
      value: `${mb(med((r) => r.start.rssAnonKb))} → ${mb(med((r) => r.after.rssAnonKb))} MB, RSS ${mb(med((r) => r.start.rssKb))} → ${mb(med((r) => r.after.rssKb))} MB, step ${stepRatio.toFixed(2)}× bash, agent CPU ${med((r) => percentile(r.stepCpuMs, 50))} ms a step, idle CPU ${med((r) => r.idleCpuPct)} %`,
      ratio: `${med((r) => r.ratio).toFixed(2)}×`,
      target: "≤ 1.25×",
      ok: rs.every((r) => !r.problem) && med((r) => r.ratio) <= 1.25,
    };
  });
  printTable(rows);
}
