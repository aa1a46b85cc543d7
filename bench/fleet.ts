/**
 * Many servers on one target: N agents connected to target `fleet` — two real agent processes (the first
 * and the last host in rollout order), the rest protocol-level agents (testing/fleet-agent.ts: the agent's
 * own Connection, protocol 3, each with its own registered token) — and a push rolled out to all N in
 * batches of 10%, on a worker of its own.
 *
 * Measured: connect (all N connected, by the agents API); each rollout's total (push sent → the last
 * host's last step ended) and its batch boundaries (the last step ended in batch b → the first step
 * started in batch b+1, as the hosts wrote it: a real agent's step with `date +%s%N`, a protocol agent
 * when it sends step-start/step-end), cut at the worker's clock, and workerd's CPU meanwhile; a push no
 * pipeline matches, to the fleet's target and to a target of one agent in turn (the line's
 * answer_delta_ms), and the rollout push's answer against a one-agent push; reconnect of all N after a
 * worker restart (same storage); then, on the worker started again with TRACE_DO_ENTRIES=true (a line
 * each time the Target object's code runs: target.ts traceEntry), the DO's entries while the fleet idles
 * with its heartbeats (every 30 s, as the agent sends them), workerd's CPU and memory. Every job must
 * succeed and every host's stored log must be what it printed, or the run fails.
 *
 * `npm run bench` runs it at N = 10 (`fleetBench`, `fleetRows`); `npm run bench:fleet -- --agents N`
 * (or `--agents 10,50,100`, a worker each; `--idle S`, `--rollouts R`, `--no-reconnect`, `--worker-state DIR`) alone, whose
 * last line is `fleetLine` and whose exit status is 1 when any job failed or any log was not whole.
 */
import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { join } from "node:path";
import { parseConfig } from "../agent/common/config.ts";
import { pipelineDecls } from "../agent/runtime/job-server.ts";
import type { PipelineDecl } from "../shared/protocol.ts";
import { startAgent, type AgentProcess, writeAgentConfig } from "../dev/agent-process.ts";
import { agentToken, api, jobLog, waitForDeployment } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { fileLines } from "../dev/file-lines.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";
import { FleetAgent, outputOf } from "../testing/fleet-agent.ts";
import { percentile, printTable, type Row, settle } from "./stats.ts";

export const FLEET_TARGET = "fleet";
const ONE_TARGET = "fleet-one";
const REPO = "bench/fleet";
const BRANCH = "fleet";
const STEPS = ["first", "last"];

export interface FleetOptions {
  agents: number;
  /** Real agent processes among them (default 2; the bench runs 2): the first and the last host in rollout order, then spread between. */
  real?: number;
  /** Heartbeat interval of every agent (ms). Default: the agent's own (30 s). */
  heartbeatMs?: number;
  /** Pushes no pipeline matches, to each target in turn. Default 20. */
  noMatchPushes?: number;
  /** Run the built bundle for the real agents (the bench's way). */
  bundle?: boolean;
  /** Rollouts measured, after one warm-up. Default 3. */
  rollouts?: number;
  /** How long the fleet idles while the DO's entries are counted (ms). Default 60 s. */
  idleMs?: number;
  /** A protocol agent's step time (ms). Default 20. */
  stepMs?: number;
  /** Restart the worker and time all N reconnecting. Default true. */
  reconnect?: boolean;
  /**
   * A directory to keep the worker's storage (wrangler dev --persist-to) under, instead of the system's
   * temporary directory: /dev/shm (tmpfs) shows the DO's own work without the disk's commits.
   */
  workerStateDir?: string;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface RolloutMeasure {
  deployment: string;
  status: string;
  /** Push sent → the last host's last step ended (ms). */
  totalMs: number;
  answerMs: number;
  oneAnswerMs: number;
  boundaries: number[];
  batches: number;
  /** workerd's CPU (the worker, its DOs, wrangler's proxy worker) from the push to the deployment's end (ms; 10 ms ticks). */
  workerdCpuMs?: number;
}

export interface FleetResult {
  agents: number;
  real: number;
  connectMs: number;
  rollouts: RolloutMeasure[];
  rolloutMs: number;
  boundaryP50: number;
  boundaryMax: number;
  /** The rollout pushes' answers (p50, ms): to the fleet (N jobs made) and, each just before, to the one-agent target (one job). */
  answerP50: number;
  oneAnswerP50: number;
  /** answerP50 − oneAnswerP50: what making N jobs instead of one adds to the answer. */
  rolloutAnswerDeltaMs: number;
  /** The same push (one no pipeline matches: one record, no job) to the fleet's target and to the one-agent target in turn (p50s, ms). */
  noMatchP50: number;
  oneNoMatchP50: number;
  /** noMatchP50 − oneNoMatchP50: the target's answer with N agents connected against with one (the line's answer_delta_ms). */
  answerDeltaMs: number;
  idleMs: number;
  idleWakeups: number;
  /** What the idle entries were, by kind. */
  idleEntries: Record<string, number>;
  /** Every entry the traced worker wrote for the fleet's target, by kind (its reconnects' included). */
  tracedEntries: Record<string, number>;
  idleCpuMs: number;
  rssStartMb: number;
  rssFleetMb: number;
  /** From the restarted worker's "Ready" to all N connected again (ms); NaN when not measured. */
  reconnectAllMs: number;
  /** From the restart's kill to all N connected again (ms). */
  reconnectFromKillMs: number;
  /** Connection attempts the protocol agents made from the kill to all connected, per agent. */
  reconnectAttemptsPerAgent: number;
  /** From the first protocol agent welcomed back to all N connected (ms). */
  reconnectSpreadMs: number;
  /** The worker's restart: kill → ready (ms; wrangler dev's own start). */
  restartMs: number;
  jobsRun: number;
  jobsFailed: number;
  logsChecked: number;
  logsNotWhole: number;
  failures: string[];
}

function hostName(i: number): string {
  return `host-${i}`;
}

/** The real agents' step commands: the output `outputOf` says, the stamps appended to STAMPS. */
function realSteps(): { name: string; run: string }[] {
  const lines = (step: string) => `for i in 1 2 3 4 5; do echo "$BENCH_HOST ${step} line $i"; done`;
  return [
    { name: "first", run: `echo "$HOOKRELAY_DELIVERY $BENCH_HOST start $(date +%s%N)" >> "$STAMPS"; ${lines("first")}` },
    { name: "last", run: `${lines("last")}; echo "$HOOKRELAY_DELIVERY $BENCH_HOST end $(date +%s%N)" >> "$STAMPS"` },
  ];
}

function realPipeline(host: string, workdir: string, stamps: string): Record<string, unknown> {
  return { name: "fleet", repo: REPO, branches: [BRANCH], workdir, env: { BENCH_HOST: host, STAMPS: stamps }, rollout: { batch: "10%" }, steps: realSteps() };
}

/** What the real agents declare, read back through the agent's own config parser: the protocol agents declare the same. */
function fleetDeclaration(server: string, dir: string): PipelineDecl[] {
  const { configPath } = writeAgentConfig({ server, target: FLEET_TARGET, name: "declaration", pipelines: [realPipeline("declaration", dir, join(dir, "stamps"))] });
  const parsed = parseConfig(readFileSync(configPath, "utf8"), configPath);
  if (!parsed.ok) throw new Error(`fleet bench: the real agents' config does not parse: ${parsed.problems.join("; ")}`);
  return pipelineDecls(parsed.config);
}

/** The pids under `root` (its process tree) whose command is workerd. */
function workerdPids(root: number): number[] {
  const parent = new Map<number, number>();
  const comm = new Map<number, string>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      comm.set(Number(e), stat.slice(stat.indexOf("(") + 1, close));
      parent.set(Number(e), Number(stat.slice(close + 2).split(" ")[1]));
    } catch {
      /* gone meanwhile */
    }
  }
  const under = (pid: number): boolean => {
    for (let p = pid, i = 0; p > 1 && i < 64; p = parent.get(p) ?? 0, i++) if (p === root) return true;
    return false;
  };
  return [...comm].filter(([pid, c]) => c.startsWith("workerd") && under(pid)).map(([pid]) => pid);
}

/** Which workerd it is: the one wrangler attaches its inspector to runs the worker and its DOs; the other is wrangler's proxy worker (the port agents connect to). */
function workerdRole(pid: number): string {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return cmd.includes("--inspector-addr") ? `worker+DOs (pid ${pid})` : `proxy (pid ${pid})`;
  } catch {
    return `gone (pid ${pid})`;
  }
}

function rssMb(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return kb / 1024;
}

function cpuTicks(pids: number[]): number {
  let t = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      t += Number(f[11]) + Number(f[12]);
    } catch {
      /* gone */
    }
  }
  return t;
}

/** The `do-entry` lines the worker wrote for `target` in `text`, by kind. */
export function doEntries(text: string, target: string): Record<string, number> {
  const counts: Record<string, number> = {};
  const re = new RegExp(`\\[target ${target}\\] do-entry (\\w+)`, "g");
  for (const m of text.matchAll(re)) counts[m[1]!] = (counts[m[1]!] ?? 0) + 1;
  return counts;
}

function stampsOf(file: string, delivery: string): { host: string; what: string; ns: bigint }[] {
  return fileLines(file)
    .map((line) => line.split(" "))
    .filter((f) => f.length === 4 && f[0] === delivery)
    .map(([, host, what, ns]) => ({ host: host!, what: what!, ns: BigInt(ns!) }));
}

const ms = (ns: bigint) => Number(ns) / 1e6;

export async function fleetBench(o: FleetOptions): Promise<FleetResult> {
  const n = o.agents;
  const realCount = Math.min(n, Math.max(1, o.real ?? 2));
  const log = o.log ?? (() => {});
  const failures: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-bench-fleet-"));
  const stampsFile = join(dir, "stamps");
  const stateDir = o.workerStateDir ? mkdtempSync(join(o.workerStateDir, "hookrelay-fleet-state-")) : undefined;
  let worker: WorkerProcess = await startWorker(stateDir ? { persistTo: stateDir } : {});
  const url = worker.url;
  const real: AgentProcess[] = [];
  const fleet: FleetAgent[] = [];
  let one: FleetAgent | undefined;
  const result: FleetResult = {
    agents: n, real: realCount, connectMs: NaN, rollouts: [], rolloutMs: NaN, boundaryP50: NaN, boundaryMax: NaN, answerP50: NaN, oneAnswerP50: NaN, rolloutAnswerDeltaMs: NaN, answerDeltaMs: NaN,
    noMatchP50: NaN, oneNoMatchP50: NaN, idleMs: o.idleMs ?? 60_000, idleWakeups: NaN, idleEntries: {}, tracedEntries: {}, idleCpuMs: NaN, rssStartMb: NaN, rssFleetMb: NaN,
    reconnectAllMs: NaN, reconnectFromKillMs: NaN, reconnectAttemptsPerAgent: NaN, reconnectSpreadMs: NaN, restartMs: NaN, jobsRun: 0, jobsFailed: 0, logsChecked: 0, logsNotWhole: 0, failures,
  };
  try {
    await eventually("workerd under wrangler dev", () => workerdPids(worker.process.pid).length > 0, 10_000, 100);
    result.rssStartMb = rssMb(workerdPids(worker.process.pid));
    const decl = fleetDeclaration(url, dir);
    // Host i is real for the first and the last in rollout order (then spread between): first and last batch.
    const realIndexes = new Set(Array.from({ length: realCount }, (_, k) => (realCount === 1 ? 1 : 1 + Math.round((k * (n - 1)) / (realCount - 1)))));
    const names = Array.from({ length: n }, (_, i) => hostName(i + 1));
    const tokens = new Map<string, string>();
    for (const name of names) tokens.set(name, await agentToken(url, FLEET_TARGET, name));
    const oneToken = await agentToken(url, ONE_TARGET, "solo-1");
    log(`fleet: ${n} agents registered (${realCount} real: ${[...realIndexes].map(hostName).join(", ")})`);

    // Connect: the real agents' processes and the protocol agents all started at once; done when the
    // agents API says every one of them is connected.
    const started = performance.now();
    const realStarts: Promise<AgentProcess>[] = [];
    for (const [i, name] of names.entries()) {
      if (realIndexes.has(i + 1)) {
        const workdir = join(dir, name);
        mkdirSync(workdir);
        realStarts.push(
          startAgent({
            server: url,
            target: FLEET_TARGET,
            name,
            token: tokens.get(name),
            bundle: o.bundle,
            pipelines: [realPipeline(name, workdir, stampsFile)],
            extra: o.heartbeatMs === undefined ? undefined : { heartbeat: `${o.heartbeatMs}ms` },
          }),
        );
      } else {
        fleet.push(new FleetAgent({ server: url, target: FLEET_TARGET, name, token: tokens.get(name)!, pipelines: decl, stepMs: o.stepMs, heartbeatMs: o.heartbeatMs }).start());
      }
    }
    real.push(...(await Promise.all(realStarts)));
    const allConnected = (timeoutMs: number) =>
      eventually(
        `all ${n} agents of target ${FLEET_TARGET} connected`,
        async () => {
          const r = await api(url, `/api/targets/${FLEET_TARGET}/agents`);
          return r.status === 200 && r.body.agents.filter((a: any) => a.connected).length === n ? true : undefined;
        },
        timeoutMs,
        50,
      );
    await allConnected(120_000);
    result.connectMs = performance.now() - started;
    log(`fleet: ${n} connected in ${result.connectMs.toFixed(0)} ms`);
    one = new FleetAgent({ server: url, target: ONE_TARGET, name: "solo-1", token: oneToken, pipelines: decl, stepMs: o.stepMs, heartbeatMs: o.heartbeatMs }).start();
    await eventually("solo-1 connected", () => one!.connected, 30_000, 50);

    // Rollouts: one warm-up, then the measured ones.
    const byName = new Map(fleet.map((a) => [a.name, a]));
    const measured = o.rollouts ?? 3;
    for (let r = 0; r < 1 + measured; r++) {
      const wpids = workerdPids(worker.process.pid);
      const before = wpids.map((pid) => cpuTicks([pid]));
      // This process's event loop meanwhile: the protocol agents' sends and their `job` frames' handling
      // wait behind it, so a delay here would show in the boundaries as if it were the worker's.
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const m = await oneRollout(url, byName, one, stampsFile, failures, result, log, () => cpuTicks(wpids) * 10);
      loop.disable();
      const byProcess = wpids.map((pid, i) => `${workerdRole(pid)} ${(cpuTicks([pid]) - before[i]!) * 10} ms`);
      log(`fleet: workerd CPU by process over the rollout: ${byProcess.join(", ")}; this process's event loop delay p50 ${(loop.percentile(50) / 1e6).toFixed(1)} / p99 ${(loop.percentile(99) / 1e6).toFixed(1)} / max ${(loop.max / 1e6).toFixed(1)} ms`);
      if (r > 0) result.rollouts.push(m);
      log(`fleet: rollout ${r === 0 ? "warm-up" : r} ${m.deployment} ${m.status}: total ${m.totalMs.toFixed(0)} ms, ${m.batches} batches, boundaries ${m.boundaries.map((b) => b.toFixed(1)).join(" ")} ms; answer ${m.answerMs.toFixed(1)} ms (one agent: ${m.oneAnswerMs.toFixed(1)} ms)`);
    }
    const boundaries = result.rollouts.flatMap((m) => m.boundaries);
    result.rolloutMs = percentile(result.rollouts.map((m) => m.totalMs), 50);
    result.boundaryP50 = percentile(boundaries, 50);
    result.boundaryMax = boundaries.length > 0 ? Math.max(...boundaries) : NaN;
    result.answerP50 = percentile(result.rollouts.map((m) => m.answerMs), 50);
    result.oneAnswerP50 = percentile(result.rollouts.map((m) => m.oneAnswerMs), 50);
    result.rolloutAnswerDeltaMs = result.answerP50 - result.oneAnswerP50;

    // A push no pipeline matches, to either target in turn: the fleet's sockets and rows alone.
    const noMatch: number[] = [];
    const oneNoMatch: number[] = [];
    for (let i = 0; i < (o.noMatchPushes ?? 20); i++) {
      for (const [target, into] of [[FLEET_TARGET, noMatch], [ONE_TARGET, oneNoMatch]] as const) {
        await settle();
        const t = performance.now();
        const res = await sendWebhook(url, { target, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: "refs/heads/nothing-deploys-this", after: randomBytes(20).toString("hex") }) });
        into.push(performance.now() - t);
        if (res.status !== 200) failures.push(`no-match push to ${target} answered ${res.status}`);
      }
    }
    result.noMatchP50 = percentile(noMatch, 50);
    result.oneNoMatchP50 = percentile(oneNoMatch, 50);
    result.answerDeltaMs = result.noMatchP50 - result.oneNoMatchP50;

    if (o.reconnect !== false) {
      const attempts0 = fleet.reduce((a, f) => a + f.attempts, 0);
      const killed = performance.now();
      await worker.restart();
      const ready = performance.now();
      await allConnected(120_000);
      const done = performance.now();
      result.reconnectAllMs = done - ready;
      result.reconnectFromKillMs = done - killed;
      result.reconnectAttemptsPerAgent = fleet.length > 0 ? (fleet.reduce((a, f) => a + f.attempts, 0) - attempts0) / fleet.length : NaN;
      // Each agent's first try after the restart comes when its backoff says, grown while the worker was
      // down: the spread from the first protocol agent welcomed back to all N is what the DO did with them.
      const back = fleet.map((f) => f.welcomedAt ?? NaN).filter((t) => t >= ready);
      result.reconnectSpreadMs = back.length > 0 ? done - Math.min(...back) : NaN;
      result.restartMs = ready - killed;
      log(`fleet: restart took ${(ready - killed).toFixed(0)} ms; all ${n} connected ${result.reconnectAllMs.toFixed(0)} ms after ready, ${f0(result.reconnectSpreadMs)} ms after the first was welcomed back (${result.reconnectAttemptsPerAgent.toFixed(1)} attempts per protocol agent)`);
    }
    // The idle fleet's wake-ups are counted on a worker started again on the same storage and port with
    // TRACE_DO_ENTRIES=true (a line each time the object's code runs): its lines are console calls, which
    // under wrangler dev cost milliseconds each, so the rollouts above run without it.
    await worker.stop();
    worker = await startWorker({ persistTo: worker.persistTo, port: worker.port, vars: { TRACE_DO_ENTRIES: "true" }, logLevel: "log" });
    await allConnected(120_000);
    // Idle: nothing asks the worker anything; the agents send their heartbeats. Lines are written
    // LINE_DELAY_MS after their entry: a moment's pause on either side keeps the window's own.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const pids = workerdPids(worker.process.pid);
    const outputBefore = worker.process.output().length;
    const cpu0 = cpuTicks(pids);
    log(`fleet: idling ${result.idleMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, result.idleMs));
    result.idleCpuMs = (cpuTicks(pids) - cpu0) * 10;
    result.rssFleetMb = rssMb(pids);
    await new Promise((resolve) => setTimeout(resolve, 200));
    result.idleEntries = doEntries(worker.process.output().slice(outputBefore), FLEET_TARGET);
    result.idleWakeups = Object.values(result.idleEntries).reduce((a, b) => a + b, 0);
    result.tracedEntries = doEntries(worker.process.output(), FLEET_TARGET);
    log(`fleet: idle ${result.idleWakeups} DO entries ${JSON.stringify(result.idleEntries)}, workerd CPU ${result.idleCpuMs} ms, RSS ${result.rssFleetMb.toFixed(0)} MB`);

    for (const f of [...fleet, one]) for (const e of f.errors) failures.push(`${f.name}: worker said ${e}`);
  } catch (e) {
    failures.push(e instanceof Error ? e.message : String(e));
  } finally {
    await Promise.all([...fleet.map((f) => f.stop()), one?.stop(), ...real.map((a) => a.stop())]);
    await worker.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  }
  return result;
}

async function oneRollout(
  url: string,
  byName: Map<string, FleetAgent>,
  one: FleetAgent,
  stampsFile: string,
  failures: string[],
  result: FleetResult,
  log: (line: string) => void,
  workerdCpuMs: () => number,
): Promise<RolloutMeasure> {
  const sha = randomBytes(20).toString("hex");
  const push = (target: string, delivery: string) => sendWebhook(url, { target, delivery, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: `refs/heads/${BRANCH}`, after: sha }) });
  // The one-agent target first (its job runs meanwhile, well apart from the fleet's), then the fleet's.
  await settle();
  const oneJobsBefore = one.jobs.size;
  let c = workerdCpuMs();
  let t = performance.now();
  const oneRes = await push(ONE_TARGET, randomUUID());
  const oneAnswerMs = performance.now() - t;
  const oneAnswerCpuMs = workerdCpuMs() - c;
  if (oneRes.status !== 202) failures.push(`push to ${ONE_TARGET} answered ${oneRes.status}`);
  await eventually("the one agent's job", () => one.jobs.size > oneJobsBefore && one.settled, 30_000, 20).catch(() => failures.push("the one agent's job did not settle"));
  await settle();
  const delivery = randomUUID();
  const cpu0 = workerdCpuMs();
  const benchCpu0 = process.cpuUsage();
  const sentNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  c = workerdCpuMs();
  t = performance.now();
  const res = await push(FLEET_TARGET, delivery);
  const answerMs = performance.now() - t;
  const answerCpuMs = workerdCpuMs() - c;
  log(`fleet: workerd CPU while answering: ${answerCpuMs} ms the push making ${result.agents} jobs, ${oneAnswerCpuMs} ms the one-agent push (10 ms ticks)`);
  const dep = res.body?.deployments?.[0];
  const bad = (why: string): RolloutMeasure => {
    failures.push(why);
    return { deployment: dep?.id ?? "none", status: "failed", totalMs: NaN, answerMs, oneAnswerMs, boundaries: [], batches: 0 };
  };
  if (res.status !== 202 || !dep || dep.jobs.length !== result.agents) return bad(`fleet push answered ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  const jobIds = new Set<string>(dep.jobs);
  // Done when every protocol agent's job is settled and both real agents wrote their end: nothing asks the worker meanwhile.
  const ours = () => [...byName.values()].flatMap((a) => [...a.jobs.values()].filter((j) => jobIds.has(j.jobId)).map((j) => ({ agent: a, job: j })));
  const realHosts = result.real;
  await eventually(
    "every host's job to end",
    () => ours().length === byName.size && ours().every(({ agent }) => agent.settled) && stampsOf(stampsFile, delivery).filter((s) => s.what === "end").length === realHosts,
    120_000,
    20,
  ).catch(() => undefined);
  let view: any;
  try {
    view = await waitForDeployment(url, FLEET_TARGET, dep.id, undefined, 60_000);
  } catch (e) {
    return bad(`deployment ${dep.id}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const cpuMs = workerdCpuMs() - cpu0;
  const benchCpu = process.cpuUsage(benchCpu0);
  // Each host's first-step start and last-step end, from whoever wrote them.
  const times = new Map<string, { start: bigint; end: bigint }>();
  for (const { agent, job } of ours()) if (job.startNs !== null && job.endNs !== null) times.set(agent.name, { start: job.startNs, end: job.endNs });
  for (const s of stampsOf(stampsFile, delivery)) {
    const cur = times.get(s.host) ?? { start: -1n, end: -1n };
    if (s.what === "start") cur.start = s.ns;
    else cur.end = s.ns;
    times.set(s.host, cur);
  }
  const batches = new Map<number, string[]>();
  for (const j of view.jobs) batches.set(j.batch, [...(batches.get(j.batch) ?? []), j.agent]);
  const problems: string[] = [];
  for (const j of view.jobs) {
    result.jobsRun++;
    if (j.status !== "succeeded") {
      result.jobsFailed++;
      problems.push(`${j.agent} ${j.status}`);
    }
    const t = times.get(j.agent);
    if (!t || t.start < 0n || t.end < 0n) problems.push(`${j.agent}: no start or end written`);
  }
  if (view.status !== "succeeded") problems.push(`deployment ${view.status}`);
  const boundaries: number[] = [];
  const order = [...batches.keys()].sort((a, b) => a - b);
  for (let b = 0; b + 1 < order.length; b++) {
    const ends = batches.get(order[b]!)!.map((h) => times.get(h)?.end ?? -1n);
    const starts = batches.get(order[b + 1]!)!.map((h) => times.get(h)?.start ?? -1n);
    if (ends.some((e) => e < 0n) || starts.some((s) => s < 0n)) continue;
    const lastEnd = ends.reduce((a, c) => (c > a ? c : a));
    const firstStart = starts.reduce((a, c) => (c < a ? c : a));
    boundaries.push(ms(firstStart - lastEnd));
  }
  if (boundaries.some((b) => b < 0)) problems.push("batches overlapped");
  // Each boundary cut at the worker's own times (its clock, ms, approximate): the last host's step ended →
  // the worker had that job's end (finishedAt) → it had the next batch's first job accepted (startedAt)
  // → that batch's first step started.
  const parts: string[] = [];
  const jobOf = new Map<string, any>(view.jobs.map((j: any) => [j.agent, j]));
  for (let b = 0; b + 1 < order.length; b++) {
    const prev = batches.get(order[b]!)!;
    const next = batches.get(order[b + 1]!)!;
    const lastHost = prev.reduce((a, h) => ((times.get(h)?.end ?? -1n) > (times.get(a)?.end ?? -1n) ? h : a));
    const finished = Date.parse(jobOf.get(lastHost)?.finishedAt);
    const accepted = Math.min(...next.map((h) => Date.parse(jobOf.get(h)?.startedAt)));
    const firstStart = Math.min(...next.map((h) => ms(times.get(h)?.start ?? -1n)));
    parts.push(`${(finished - ms(times.get(lastHost)?.end ?? -1n)).toFixed(0)}+${(accepted - finished).toFixed(0)}+${(firstStart - accepted).toFixed(0)}`);
  }
  log(`fleet: CPU from the push to the deployment's end: workerd ${cpuMs} ms (${(cpuMs / view.jobs.length).toFixed(1)} ms a host), this process (the protocol agents) ${((benchCpu.user + benchCpu.system) / 1000).toFixed(0)} ms`);
  log(`fleet: boundaries by the worker's clock (job end stored + next accepted + step started, ms): ${parts.join(" ")}`);
  // Every host's log, each step's output as stored, against what it printed.
  for (const j of view.jobs) {
    for (const step of STEPS) {
      result.logsChecked++;
      const stored = await jobLog(url, FLEET_TARGET, j.id, step).catch((e: unknown) => `unreadable: ${String(e)}`);
      if (stored !== outputOf(j.agent, step)) {
        result.logsNotWhole++;
        problems.push(`${j.agent} log of step ${step} is not whole: ${JSON.stringify(stored.slice(0, 120))}`);
      }
    }
  }
  const ends = [...times.values()].map((x) => x.end).filter((x) => x > 0n);
  const totalMs = ends.length > 0 ? ms(ends.reduce((a, c) => (c > a ? c : a)) - sentNs) : NaN;
  if (problems.length > 0) {
    failures.push(`deployment ${view.id}: ${problems.slice(0, 10).join("; ")}${problems.length > 10 ? `; … ${problems.length - 10} more` : ""}`);
    log(`fleet: deployment ${view.id}: ${problems.length} problem(s)`);
  }
  return { deployment: view.id, status: view.status, totalMs, answerMs, oneAnswerMs, boundaries, batches: order.length, workerdCpuMs: cpuMs };
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "NaN");
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "NaN");

/** The line scripts read: `fleet: agents=N connect_ms=… rollout_ms=… boundary_p50_ms=… boundary_max_ms=… answer_delta_ms=… idle_wakeups=… reconnect_all_ms=…`. */
export function fleetLine(r: FleetResult): string {
  return `fleet: agents=${r.agents} connect_ms=${f0(r.connectMs)} rollout_ms=${f0(r.rolloutMs)} boundary_p50_ms=${f1(r.boundaryP50)} boundary_max_ms=${f1(r.boundaryMax)} answer_delta_ms=${f1(r.answerDeltaMs)} idle_wakeups=${Number.isFinite(r.idleWakeups) ? r.idleWakeups : "NaN"} reconnect_all_ms=${f0(r.reconnectAllMs)}`;
}

/** Whether the run counts: every job succeeded, every log whole, nothing else failed. */
export function fleetOk(r: FleetResult): boolean {
  return r.failures.length === 0 && r.jobsFailed === 0 && r.logsNotWhole === 0 && r.jobsRun > 0;
}

export function fleetRows(r: FleetResult): Row[] {
  const label = `fleet of ${r.agents} (${r.real} real agents)`;
  const ok = fleetOk(r);
  return [
    { metric: `${label}: all connected`, value: `${f0(r.connectMs)} ms`, target: "", ok: undefined },
    {
      metric: `${label}: rollout in batches of 10%`,
      value: `${f0(r.rolloutMs)} ms p50 of ${r.rollouts.length}; ${r.jobsRun - r.jobsFailed}/${r.jobsRun} jobs succeeded, ${r.logsChecked - r.logsNotWhole}/${r.logsChecked} step logs whole${ok ? "" : `; FAILED: ${r.failures.slice(0, 3).join("; ")}`}`,
      target: "all succeed, all whole",
      ok,
    },
    { metric: `${label}: batch boundary p50 / max`, value: `${f1(r.boundaryP50)} / ${f1(r.boundaryMax)} ms`, target: "≤ 50 ms", ok: r.boundaryP50 <= 50 && r.boundaryMax <= 50 },
    {
      metric: `${label}: a push's answer, fleet's target − one agent's (p50, no pipeline matched)`,
      value: `${f1(r.answerDeltaMs)} ms (${f1(r.noMatchP50)} vs ${f1(r.oneNoMatchP50)} ms)`,
      target: "≤ 2 ms",
      ok: r.answerDeltaMs <= 2,
    },
    {
      metric: `${label}: the rollout push's answer (${r.agents} jobs) − one agent's push (1 job)`,
      value: `${f1(r.rolloutAnswerDeltaMs)} ms (${f1(r.answerP50)} vs ${f1(r.oneAnswerP50)} ms, p50 of ${r.rollouts.length})`,
      target: "",
      ok: undefined,
    },
    {
      metric: `${label}: DO wake-ups idle ${f0(r.idleMs / 1000)} s`,
      value: `${r.idleWakeups}${r.idleWakeups > 0 ? ` ${JSON.stringify(r.idleEntries)}` : ""}; workerd CPU ${f0(r.idleCpuMs)} ms`,
      target: "0",
      ok: r.idleWakeups === 0,
    },
    { metric: `${label}: workerd RSS`, value: `${f0(r.rssFleetMb)} MB (${f0(r.rssStartMb)} MB before any agent)`, target: "", ok: undefined },
    {
      metric: `${label}: reconnect all after worker restart`,
      value: `${f0(r.reconnectAllMs)} ms after ready, ${f0(r.reconnectSpreadMs)} ms from the first back (restart ${f0(r.restartMs)} ms; ${f1(r.reconnectAttemptsPerAgent)} attempts per agent)`,
      target: "≤ 10 s",
      ok: Number.isFinite(r.reconnectAllMs) ? r.reconnectAllMs <= 10_000 : undefined,
    },
  ];
}

function parseAgentsArg(argv: string[]): number[] {
  const i = argv.indexOf("--agents");
  const value = i >= 0 ? argv[i + 1] : "100";
  const list = (value ?? "").split(",").map((s) => Number(s));
  if (list.length === 0 || list.some((x) => !Number.isInteger(x) || x < 2 || x > 100)) {
    throw new Error(`bench:fleet: --agents must be a whole number from 2 to 100 (the agents a target allows), or a comma-separated list of them; got ${JSON.stringify(value)}`);
  }
  return list;
}

function stringArg(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

function numberArg(argv: string[], flag: string, fallback: number): number {
  const i = argv.indexOf(flag);
  if (i < 0) return fallback;
  const x = Number(argv[i + 1]);
  if (!Number.isFinite(x) || x < 0) throw new Error(`bench:fleet: ${flag} must be a number ≥ 0; got ${JSON.stringify(argv[i + 1])}`);
  return x;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  let sizes: number[];
  let idleS: number;
  let rollouts: number;
  try {
    sizes = parseAgentsArg(argv);
    idleS = numberArg(argv, "--idle", 60);
    rollouts = numberArg(argv, "--rollouts", 3);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(2);
  }
  execFileSync(process.execPath, [join(import.meta.dirname, "../scripts/build-agent.ts"), "--no-sea"], { stdio: "ignore" });
  const results: FleetResult[] = [];
  for (const agents of sizes) {
    const r = await fleetBench({ agents, bundle: true, idleMs: idleS * 1000, rollouts, reconnect: !argv.includes("--no-reconnect"), workerStateDir: stringArg(argv, "--worker-state"), log: (line) => console.error(line) });
    results.push(r);
    printTable(fleetRows(r));
    for (const f of r.failures) console.log(`FAILED: ${f}`);
  }
  for (const r of results) console.log(fleetLine(r));
  process.exit(results.every(fleetOk) ? 0 : 1);
}
