/**
 * The soak's faults, each thrown at the real processes and then waited out: the time from the fault's
 * end (the restart, the heal, the space returned) until every agent meant to be up is connected again
 * (and for a full disk, until that agent takes jobs again) is its time to recover.
 *
 * While an agent is away (killed, or cut off by a partition) past the worker's staleness limit, the
 * worker must not keep a job of its `running`: checked at that moment, before the agent returns.
 */
import { writeFileSync } from "node:fs";
import { api } from "../../dev/api.ts";
import { sleep } from "../../agent/common/sleep.ts";
import { HEARTBEAT_MS, STALE_SECONDS, TARGET, type SoakHost, type SoakWorld } from "./world.ts";
import { recountLogStorage } from "./storage-recount.ts";

export const FAULT_KINDS = ["worker-kill", "worker-restart", "evict", "agent-kill", "partition", "reset", "disk-full", "clock-jump"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/** The kinds thrown at the worker rather than at a host. */
type WorkerKind = "worker-kill" | "worker-restart" | "evict";
type HostKind = Exclude<FaultKind, WorkerKind>;
const isWorkerKind = (k: FaultKind): k is WorkerKind => k === "worker-kill" || k === "worker-restart" || k === "evict";
/** A fault of several kinds at once (on different hosts). */
export const COMBO = "combo";

export interface FaultLimits {
  /** The longest partition (seconds); the issue asks for up to 90. */
  maxPartitionSeconds: number;
  /** The longest full disk (seconds). */
  maxDiskFullSeconds: number;
  /** Give up waiting for recovery after this long (the fault then counts as not recovered, and stuck). */
  recoverTimeoutMs: number;
}

export interface FaultResult {
  kind: FaultKind | typeof COMBO;
  /** The kinds thrown (several for a combo). */
  parts: FaultKind[];
  /** What exactly was done, for the log. */
  what: string;
  recovered: boolean;
  recoverMs: number;
  /** Invariant violations seen while it was in force (a job left running for an agent long gone). */
  violations: string[];
}

type Random = () => number;
const between = (r: Random, lo: number, hi: number) => lo + r() * (hi - lo);
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** How long after an agent went silent the worker must have given up its running job. */
const STALE_CHECK_MS = STALE_SECONDS * 1000 + 2 * HEARTBEAT_MS + 3000;

async function runningJobsOf(world: SoakWorld, host: string): Promise<string[]> {
  const r = await api(world.worker.url, `/api/targets/${TARGET}/jobs?limit=200`);
  if (r.status !== 200) throw new Error(`GET /api/targets/${TARGET}/jobs answered ${r.status}: ${r.text.slice(0, 200)}`);
  return (r.body.jobs as any[]).filter((j) => j.agent === host && j.status === "running").map((j) => j.id);
}

/**
 * Waits until `away` has lasted STALE_CHECK_MS (or `endsAt` comes first), then checks no job of `host`
 * is running. While the worker is down it cannot notice anything, and a restarted worker counts an
 * agent's absence from its own start (it cannot tell an agent that died meanwhile from one still
 * reconnecting): when the worker came up after the agent went away, the wait counts from then.
 */
async function staleCheck(world: SoakWorld, host: string, awaySince: number, endsAt: number, why: string): Promise<string[]> {
  for (;;) {
    const from = Math.max(awaySince, world.workerUpAt);
    const at = from + STALE_CHECK_MS;
    if (at > endsAt) return [];
    await sleep(at - Date.now());
    while (!world.workerUp && Date.now() < endsAt) await sleep(100); // down meanwhile: count from when it is back
    if (!world.workerUp) return [];
    if (Math.max(awaySince, world.workerUpAt) !== from) continue; // restarted meanwhile: count from its return
    const upAt = world.workerUpAt;
    try {
      const running = await runningJobsOf(world, host);
      if (running.length === 0) return [];
      return [`${why}: ${host} has been away ${Math.round((Date.now() - awaySince) / 1000)} s (AGENT_STALE_SECONDS=${STALE_SECONDS}; the worker up since ${Math.round((Date.now() - world.workerUpAt) / 1000)} s), yet the worker still shows its job(s) ${running.join(", ")} running`];
    } catch (e) {
      // A worker kill or restart thrown in another lane while the request was on its way (the soak's
      // seed 20261208, fault 189): not the worker's fault; look again once it is back.
      if (!world.workerUp || world.workerUpAt !== upAt) continue;
      return [`${why}: the worker did not answer the jobs list: ${e instanceof Error ? e.message : String(e)}`];
    }
  }
}

/** The worker shows `host` connected (on a connection made at or after `since`, when given). */
async function agentConnected(world: SoakWorld, host: string, since?: number): Promise<boolean> {
  const r = await api(world.worker.url, `/api/targets/${TARGET}/agents`);
  return r.status === 200 && (r.body.agents as any[]).some((a) => a.name === host && a.connected && (since === undefined || Date.parse(a.connectedAt) >= since));
}

/** Every agent meant to be up is connected (and the worker answers). */
async function allConnected(world: SoakWorld): Promise<boolean> {
  const r = await api(world.worker.url, `/api/targets/${TARGET}/agents`);
  if (r.status !== 200) return false;
  const connected = new Set((r.body.agents as any[]).filter((a) => a.connected).map((a) => a.name));
  // A host cut off by a partition, or still in a lane of its own, is waited for by that lane alone.
  return world.hosts.every((h) => !h.up || h.cutOff || h.lane !== null || connected.has(h.name));
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return true;
    } catch {
      /* the worker is starting: ask again */
    }
    await sleep(100);
  }
  return false;
}

/** One host's part of a fault: inject, hold, undo; returns when undone (with violations seen meanwhile). */
async function hostFault(world: SoakWorld, kind: HostKind, host: SoakHost, r: Random, limits: FaultLimits): Promise<{ what: string; violations: string[]; recovered: () => Promise<boolean> }> {
  const connected = () => agentConnected(world, host.name);
  switch (kind) {
    case "agent-kill": {
      // Now and then an outage past the staleness limit, so the worker has to give the job up.
      const downMs = r() < 0.3 ? between(r, STALE_CHECK_MS, STALE_CHECK_MS + 3000) : between(r, 0, 1500);
      const since = Date.now();
      await host.kill();
      const violations = await staleCheck(world, host.name, since, since + downMs, `agent-kill of ${host.name}`);
      await sleep(since + downMs - Date.now());
      await host.start();
      return { what: `SIGKILL ${host.name}, down ${(downMs / 1000).toFixed(1)} s`, violations, recovered: connected };
    }
    case "partition": {
      const holdMs = between(r, 1000, limits.maxPartitionSeconds * 1000);
      const since = Date.now();
      host.proxy.partition();
      host.cutOff = true;
      const violations = await staleCheck(world, host.name, since, since + holdMs, `partition of ${host.name}`);
      await sleep(since + holdMs - Date.now());
      host.proxy.heal();
      host.cutOff = false;
      // Recovered: the worker shows the agent connected on a connection made since the partition began.
      return { what: `partition ${host.name} ${(holdMs / 1000).toFixed(1)} s`, violations, recovered: () => agentConnected(world, host.name, since) };
    }
    case "reset": {
      const since = Date.now();
      const n = host.proxy.reset();
      return { what: `reset ${n} connection(s) of ${host.name}`, violations: [], recovered: () => agentConnected(world, host.name, since) };
    }
    case "disk-full": {
      const disk = host.disk;
      const holdMs = between(r, 1000, limits.maxDiskFullSeconds * 1000);
      if (!disk) return { what: `disk-full ${host.name}: not produced (${world.diskUnavailable})`, violations: [], recovered: connected };
      const bytes = disk.fill();
      await sleep(holdMs);
      disk.release();
      const since = Date.now();
      // Recovered: it takes jobs again — none of its jobs left queued from before the space returned, or one started since.
      const takesJobs = async () => {
        const r2 = await api(world.worker.url, `/api/targets/${TARGET}/jobs?limit=200`);
        if (r2.status !== 200) return false;
        const mine = (r2.body.jobs as any[]).filter((j) => j.agent === host.name);
        return mine.some((j) => j.startedAt && Date.parse(j.startedAt) >= since) || !mine.some((j) => j.status === "queued" && Date.parse(j.createdAt) < since);
      };
      return { what: `disk-full ${host.name} (${(bytes / 1024).toFixed(0)} KiB of ballast) ${(holdMs / 1000).toFixed(1)} s`, violations: [], recovered: async () => (await connected()) && (await takesJobs()) };
    }
    case "clock-jump": {
      const offsetMs = Math.round(pick(r, [-1, 1]) * between(r, 60_000, 2 * 3600_000));
      writeFileSync(host.clockFile, `${offsetMs}\n`);
      return { what: `clock of ${host.name} to ${offsetMs >= 0 ? "+" : ""}${Math.round(offsetMs / 1000)} s`, violations: [], recovered: connected };
    }
  }
}

async function workerFault(world: SoakWorld, kind: "worker-kill" | "worker-restart", r: Random): Promise<{ what: string; violations: string[] }> {
  const violations: string[] = [];
  const downMs = between(r, 0, 1500); // drawn before any wait, so a seed replays the same choices
  if (kind === "worker-restart") {
    // A deploy: every socket dropped at once, every agent reconnecting at once.
    world.workerUp = false;
    world.outputs.push(`--- worker pid ${world.worker.process.pid}\n${world.worker.process.output()}`);
    await world.worker.restart();
    world.workerUp = true;
    world.workerUpAt = Date.now();
    return { what: "worker restart (SIGTERM, start)", violations };
  }
  world.workerUp = false;
  world.outputs.push(`--- worker pid ${world.worker.process.pid}\n${world.worker.process.output()}`);
  await world.worker.process.stop("SIGKILL");
  // Its storage at rest: the running log totals must equal a full recount of the rows.
  violations.push(...recountLogStorage(world.worker.persistTo).problems);
  await sleep(downMs);
  await world.worker.restart();
  world.workerUp = true;
  world.workerUpAt = Date.now();
  return { what: `worker SIGKILL, down ${(downMs / 1000).toFixed(1)} s`, violations };
}

/**
 * How long the object must hear nothing for `wrangler dev` to evict it. Measured (one agent connected,
 * heartbeats every second, answered by the runtime): a call after 5 s idle found the same instance, one
 * after 12, 25 or 70 s a new one (`do-entry constructed`). Its hibernatable sockets outlive it.
 */
const EVICT_IDLE_MS = 15_000;

const builtCount = (world: SoakWorld) => (world.worker.process.output().match(/do-entry constructed/g) ?? []).length;

/**
 * Cloudflare evicting the Durable Object: the traffic stops, the jobs end, and nothing reaches the object
 * for EVICT_IDLE_MS or more, so the runtime evicts it, keeping its agents' sockets; the next call builds it
 * again. Checked: it was built again (else "not evicted", no finding: something woke it meanwhile — a
 * lane's check, a report's retry); every agent connected before that no fault touches is connected on the
 * same connection after (its socket outlived the object); then, as the traffic resumes, every agent
 * meant to be up is connected and the object sends jobs again.
 */
async function evictFault(world: SoakWorld, r: Random): Promise<{ what: string; violations: string[]; recovered: () => Promise<boolean> }> {
  const holdMs = between(r, EVICT_IDLE_MS, EVICT_IDLE_MS + 5000); // drawn before any wait (replayable)
  const violations: string[] = [];
  world.quiet = true;
  let what: string;
  let resumedAt = 0;
  try {
    // The push under way (and its redeliveries) first: the traffic says when it sends nothing more.
    await waitUntil(async () => world.trafficStill, 30_000);
    // Drained: nothing running and nothing queued for a connected agent (their frames and the alarm's
    // socket look would keep the object awake). A job queued for an agent that is away may wait.
    const agentsNow = async () => {
      const a = await api(world.worker.url, `/api/targets/${TARGET}/agents`);
      if (a.status !== 200) throw new Error(`GET agents answered ${a.status}`);
      return new Map((a.body.agents as any[]).filter((x) => x.connected).map((x) => [x.name as string, x.connectedAt as string]));
    };
    const drained = await waitUntil(async () => {
      const j = await api(world.worker.url, `/api/targets/${TARGET}/jobs?limit=200`);
      if (j.status !== 200) return false;
      const connected = await agentsNow();
      return !(j.body.jobs as any[]).some((x) => x.status === "running" || (x.status === "queued" && connected.has(x.agent)));
    }, 60_000);
    const before = await agentsNow().catch(() => null);
    const built = builtCount(world);
    await sleep(holdMs);
    // The first call since: it builds the object again if it was evicted.
    const after = await agentsNow().catch((e: unknown) => {
      violations.push(`evict: the worker did not answer the agents list after ${(holdMs / 1000).toFixed(1)} s of quiet: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    });
    if (before === null || after === null) {
      what = `evict: quiet ${(holdMs / 1000).toFixed(1)} s, agents list unanswered`;
      return { what, violations, recovered: async () => false };
    }
    // The object writes its lines 50 ms after the call that made them (worker/console-lines.ts), and
    // wrangler passes them on after that.
    const evicted = await waitUntil(async () => builtCount(world) > built, 2000);
    // Hosts a fault touches meanwhile (a lane's partition or full disk) may have reconnected for that.
    const untouched = world.hosts.filter((h) => h.up && !h.cutOff && h.lane === null && before.has(h.name));
    const kept = untouched.filter((h) => after.get(h.name) === before.get(h.name));
    if (evicted && kept.length < untouched.length) {
      const lost = untouched.filter((h) => !kept.includes(h)).map((h) => `${h.name} (${after.has(h.name) ? `connected again at ${after.get(h.name)}` : "not connected"})`);
      violations.push(`evict: the object was built again and ${lost.join(", ")} did not keep the connection it had before (its socket should outlive the object)`);
    }
    what = `evict: ${drained ? "" : "not drained in 60 s, "}quiet ${(holdMs / 1000).toFixed(1)} s, ${evicted ? `object evicted and built again, ${kept.length} of ${untouched.length} agents kept their connection` : "not evicted (something woke the object meanwhile)"}`;
  } finally {
    world.quiet = false;
    resumedAt = Date.now();
  }
  // Recovered (with every agent meant to be up connected, as after any fault): the object sends jobs
  // again — a job made since the traffic resumed has started (the worker's times, whatever a host's
  // clock says). Not one per host: a rollout's later hosts see their jobs superseded by the next push.
  const takesJobs = async () => {
    const j = await api(world.worker.url, `/api/targets/${TARGET}/jobs?limit=200`);
    if (j.status !== 200) return false;
    return (j.body.jobs as any[]).some((x) => Date.parse(x.createdAt) >= resumedAt && x.startedAt !== null);
  };
  return { what, violations, recovered: takesJobs };
}

/** The kinds thrown alongside the faults after them (on other hosts) rather than waited out first: the long holds. */
export const LANE_KINDS: readonly FaultKind[] = ["partition", "disk-full"];

/**
 * Throws one fault (or several at once for COMBO). Returns its result once it is waited out; a single
 * fault of LANE_KINDS (a partition of up to 90 s, a full disk of up to 20 s) is instead started in a lane of its own and returned
 * as `lane`: the soak goes on throwing faults at the worker and the other hosts meanwhile, as a NAT
 * that forgets one server's connection, or one server's full disk, does not stop the rest of the world. A fault that picks a host
 * whose lane still runs is handed to a free host instead. Every random choice is drawn before the first
 * wait, so a seed replays the same faults (which host takes one can differ).
 */
export async function throwFault(world: SoakWorld, kind: FaultKind | typeof COMBO, r: Random, limits: FaultLimits): Promise<{ result: FaultResult } | { lane: Promise<FaultResult> }> {
  const parts: { kind: FaultKind; host: SoakHost | null }[] = [];
  if (kind === COMBO) {
    const hosts = [...world.hosts].sort(() => r() - 0.5).slice(0, 2 + Math.floor(r() * 2));
    const hostKinds = FAULT_KINDS.filter((k): k is HostKind => !isWorkerKind(k));
    for (const h of hosts) parts.push({ kind: pick(r, hostKinds), host: h });
    if (r() < 0.3) parts.push({ kind: pick(r, ["worker-kill", "worker-restart"] as const), host: null });
  } else if (isWorkerKind(kind)) {
    parts.push({ kind, host: null });
  } else {
    parts.push({ kind, host: pick(r, world.hosts) });
  }
  // Each host takes one fault at a time: a host still in a lane gives its fault to the next free host in
  // order (not drawn: a replay draws the same choices, only this hand-over depends on timing); with no
  // host free, the fault waits for the lane.
  for (const p of parts) {
    if (!p.host?.lane) continue;
    const at = world.hosts.indexOf(p.host);
    const free = [...world.hosts.slice(at + 1), ...world.hosts.slice(0, at)].find((h) => !h.lane && !parts.some((q) => q.host === h));
    if (free) p.host = free;
    else await p.host.lane;
  }
  // Host faults draw their choices synchronously on the call, before their first wait (replayable).
  const started = parts.map((p) => {
    if (p.kind === "evict") return evictFault(world, r);
    if (p.kind === "worker-kill" || p.kind === "worker-restart") return workerFault(world, p.kind, r).then((d) => ({ ...d, recovered: async () => true }));
    return hostFault(world, p.kind as HostKind, p.host!, r, limits);
  });
  // A lane recovers when its own host is back; any other fault, when every agent meant to be up is.
  const finish = async (alone: boolean): Promise<FaultResult> => {
    const done = await Promise.all(started);
    const since = Date.now();
    const recovered = await waitUntil(async () => (alone || (await allConnected(world))) && (await Promise.all(done.map((d) => d.recovered()))).every(Boolean), limits.recoverTimeoutMs);
    return {
      kind,
      parts: parts.map((p) => p.kind),
      what: done.map((d) => d.what).join(" + "),
      recovered,
      recoverMs: Date.now() - since,
      violations: done.flatMap((d) => d.violations),
    };
  };
  const host = parts[0]!.host;
  if (kind !== COMBO && host && LANE_KINDS.includes(kind)) {
    const lane = finish(true).finally(() => {
      if (host.lane === lane) host.lane = null;
    });
    host.lane = lane;
    return { lane };
  }
  return { result: await finish(false) };
}
