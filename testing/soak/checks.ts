/**
 * The soak's verdict, once everything is up and settled. Each finding lands in one counter:
 * - lost: a delivery never answered with its jobs; a succeeded job's log missing a line (or any job's log
 *   with a gap); a job that timed out though its steps take seconds against a 2-minute limit;
 * - repeated: a log line stored twice; a redelivery answered with other jobs; a job no delivery made;
 * - double_runs: a job whose step ran twice on its host (marker directory already there, or two starts),
 *   or ran though the worker says it never started — or a rollout that started a later batch after a
 *   failure in an earlier one (a host ran what it must not have);
 * - stuck: a job still queued or running after the settle;
 * - reports_dup: a GitHub status or a notification sent more than once per change, or out of order;
 * plus storage (the log totals against a full recount), kept apart.
 */
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { api, jobLog } from "../../dev/api.ts";
import { FULL_LOG, LINES, TARGET, REPO, type SoakWorld } from "./world.ts";
import { recountLogStorage } from "./storage-recount.ts";

export interface Counters {
  lost: number;
  repeated: number;
  double_runs: number;
  stuck: number;
  reports_dup: number;
  storage: number;
}
export type Counter = keyof Counters;

export interface Findings {
  counters: Counters;
  details: string[];
  /** What was checked, for the summary. */
  seen: { deliveries: number; jobs: number; byStatus: Record<string, number>; deployments: number; githubStatuses: number; notifications: number; redelivered: number };
}

export function newFindings(): Findings {
  return {
    counters: { lost: 0, repeated: 0, double_runs: 0, stuck: 0, reports_dup: 0, storage: 0 },
    details: [],
    seen: { deliveries: 0, jobs: 0, byStatus: {}, deployments: 0, githubStatuses: 0, notifications: 0, redelivered: 0 },
  };
}

export function add(f: Findings, counter: Counter, detail: string): void {
  f.counters[counter]++;
  f.details.push(`${counter}: ${detail}`);
}

/** `line 1`…`line k` once each, in order: "ok"; else whether a line is missing or one is there twice. */
export function logShape(log: string): "ok" | "gap" | "duplicate" {
  const lines = log.split("\n").filter(Boolean);
  const seen = new Set<string>();
  for (const l of lines) {
    if (seen.has(l)) return "duplicate";
    seen.add(l);
  }
  return FULL_LOG.startsWith(log) ? "ok" : "gap";
}

/** A run record (`<job id> start` when a job's step starts, `<job id> <line>` for each line it writes): per job, its starts and lines. */
export function runsOf(file: string): Map<string, { starts: number; lines: number }> {
  const runs = new Map<string, { starts: number; lines: number }>();
  for (const line of readFileSync(file, "utf8").split("\n").filter(Boolean)) {
    const [id = "", what] = line.split(" ");
    const r = runs.get(id) ?? { starts: 0, lines: 0 };
    if (what === "start") r.starts++;
    else r.lines++;
    runs.set(id, r);
  }
  return runs;
}

/** Job ids a step found already marked (a second run of a job on a host). Cheap: read after every fault. */
export function doubleRuns(world: SoakWorld): string[] {
  return readFileSync(world.doublesFile, "utf8").split("\n").filter(Boolean);
}

const NOT_STARTED = ["queued", "superseded", "skipped", "canceled"];
const HALTING = ["failed", "timed_out", "interrupted"];
const GITHUB_RANK: Record<string, number> = { pending: 0, queued: 0, in_progress: 1, success: 2, failure: 2, error: 2, inactive: 2 };

export async function finalChecks(world: SoakWorld, f: Findings): Promise<void> {
  const url = world.worker.url;
  // Deliveries: each answered 202 with a job per host, and the same jobs every time it was sent.
  const jobIds: string[] = [];
  for (const d of world.sender.deliveries) {
    f.seen.deliveries++;
    if (!d.first || d.first.status !== 202 || d.first.jobIds.length !== world.hosts.length) {
      add(f, "lost", `delivery ${d.guid}: expected 202 with ${world.hosts.length} jobs, got ${d.first ? `${d.first.status} ${d.first.text.slice(0, 200)}` : "no answer"}`);
    }
    for (const m of d.mismatches) add(f, "repeated", `delivery ${d.guid}: a re-send answered ${m.status} ${m.jobIds.join(",")}, the first answer was ${d.first?.status} ${d.first?.jobIds.join(",")}`);
    jobIds.push(...(d.first?.jobIds ?? []));
  }
  const known = new Set(jobIds);
  const listed = (await api(url, `/api/targets/${TARGET}/jobs?limit=200`)).body.jobs as any[];
  for (const j of listed) if (!known.has(j.id)) add(f, "repeated", `job ${j.id} (${j.agent}, ${j.status}) is in the list but in no delivery's answer`);

  for (const id of doubleRuns(world)) add(f, "double_runs", `job ${id}: its marker was already there when its step started`);
  const runs = runsOf(world.runsFile);
  const jobs = new Map<string, any>();
  for (const id of jobIds) {
    const r = await api(url, `/api/targets/${TARGET}/jobs/${id}`);
    if (r.status !== 200) {
      add(f, "lost", `job ${id}: GET answered ${r.status} ${r.text.slice(0, 200)}`);
      continue;
    }
    const job = r.body;
    jobs.set(id, job);
    f.seen.jobs++;
    f.seen.byStatus[job.status] = (f.seen.byStatus[job.status] ?? 0) + 1;
    const ran = runs.get(id) ?? { starts: 0, lines: 0 };
    const count = job.steps.find((s: any) => s.name === "count");
    const tag = `job ${id} (${job.agent}, ${job.status})`;
    if (ran.starts > 1) add(f, "double_runs", `${tag}: its count step started ${ran.starts} times`);
    if (ran.starts > 0 && (job.startedAt === null || NOT_STARTED.includes(job.status) || ["pending", "skipped"].includes(count?.status))) {
      add(f, "double_runs", `${tag}: its count step ran, yet the worker says the job never started (startedAt ${job.startedAt}, count step ${count?.status})`);
    }
    if (["queued", "running"].includes(job.status)) add(f, "stuck", `${tag}: still ${job.status} after the settle`);
    if (job.status === "timed_out") add(f, "lost", `${tag}: timed out, though its steps take seconds against a 2-minute timeout`);
    const log = await jobLog(url, TARGET, id, "count");
    const shape = logShape(log);
    if (shape === "duplicate") add(f, "repeated", `${tag}: a line of its count log is stored twice: ${JSON.stringify(log.slice(0, 300))}`);
    else if (shape === "gap") add(f, "lost", `${tag}: its count log has a gap: ${JSON.stringify(log.slice(0, 300))}`);
    else if (job.status === "succeeded" && log !== FULL_LOG) add(f, "lost", `${tag}: succeeded with ${log.split("\n").length - 1} of ${LINES} lines`);
    if (log.split("\n").length - 1 > ran.lines) add(f, "repeated", `${tag}: ${log.split("\n").length - 1} lines stored, the step wrote ${ran.lines}`);
  }

  await deploymentChecks(world, f, jobs);
  const recount = recountLogStorage(world.worker.persistTo);
  if (recount.checked === 0) add(f, "storage", `no database with log totals found under ${world.worker.persistTo}`);
  for (const p of recount.problems) add(f, "storage", p);
}

async function deploymentChecks(world: SoakWorld, f: Findings, jobs: Map<string, any>): Promise<void> {
  const url = world.worker.url;
  const ids = new Set<string>();
  for (const job of jobs.values()) if (job.deployment) ids.add(job.deployment);
  const githubDeployments = world.github.deployments(REPO);
  const notifications = world.receiver.received.filter((n) => n.kind === "standard" && n.status >= 200 && n.status < 300);
  f.seen.notifications = notifications.length;
  // A notification re-sent with the same webhook-id is the same message: Standard Webhooks receivers drop
  // the repeat (the one at-least-once window: a worker stopped between the receiver's 2xx and its record).
  // Counted apart; two different ids for one change are a duplicate.
  const byWebhookId = new Map<string, (typeof notifications)[number]>();
  for (const n of notifications) {
    const id = n.headers["webhook-id"] ?? "";
    if (byWebhookId.has(id)) f.seen.redelivered++;
    else byWebhookId.set(id, n);
  }
  const distinct = [...byWebhookId.values()];

  for (const id of ids) {
    const r = await api(url, `/api/targets/${TARGET}/deployments/${id}`);
    if (r.status !== 200) {
      add(f, "lost", `deployment ${id}: GET answered ${r.status}`);
      continue;
    }
    const d = r.body;
    f.seen.deployments++;
    const tag = `deployment ${id} (${d.pipeline}, ${d.status})`;
    // Rollout: after the first halting job nothing else starts, and the deployment's status says so.
    const halt = (d.jobs as any[]).findIndex((j) => HALTING.includes(j.status));
    if (halt >= 0) {
      for (const later of (d.jobs as any[]).slice(halt + 1)) {
        const marked = existsSync(join(world.dir, "marks", later.agent, later.id));
        if (later.startedAt !== null || marked) add(f, "double_runs", `${tag}: ${d.jobs[halt].agent} ${d.jobs[halt].status}, yet ${later.agent} (job ${later.id}, ${later.status}) started after it`);
      }
      if (d.status !== "failed") add(f, "lost", `${tag}: job ${d.jobs[halt].id} ${d.jobs[halt].status}, yet the deployment is ${d.status}`);
    }
    if (d.status === "succeeded" && !(d.jobs as any[]).every((j) => j.status === "succeeded")) add(f, "lost", `${tag}: succeeded with jobs ${(d.jobs as any[]).map((j) => j.status).join(", ")}`);

    // GitHub: one deployment, each state once, in order; as many statuses as github reports sent.
    const reports = (d.reports ?? []) as any[];
    const sentGithub = reports.filter((x) => x.channel === "github" && x.state === "sent" && String(x.what).startsWith("GitHub status")).length;
    const mine = githubDeployments.filter((g) => (g.payload as any)?.deployment === id);
    if (mine.length > 1) add(f, "reports_dup", `${tag}: ${mine.length} GitHub deployments`);
    const states = mine.flatMap((g) => world.github.statusesOf(REPO, g.id).map((s) => s.state));
    f.seen.githubStatuses += states.length;
    if (states.length !== sentGithub) add(f, states.length > sentGithub ? "reports_dup" : "lost", `${tag}: GitHub holds statuses [${states.join(", ")}], the worker sent ${sentGithub} (reports ${reports.map((x) => `${x.channel}:${x.what}:${x.state}`).join(", ")})`);
    for (let i = 1; i < states.length; i++) {
      if ((GITHUB_RANK[states[i]!] ?? 9) <= (GITHUB_RANK[states[i - 1]!] ?? 9)) add(f, "reports_dup", `${tag}: GitHub statuses out of order or repeated: [${states.join(", ")}]`);
    }
    // Notifications: as many as the notification reports sent, each once (webhook-id).
    const sentNotify = reports.filter((x) => x.channel !== "github" && x.state === "sent").length;
    const told = distinct.filter((n) => (n.event as any)?.data?.deployment === id).length;
    if (told !== sentNotify) add(f, told > sentNotify ? "reports_dup" : "lost", `${tag}: ${told} notifications received, the worker sent ${sentNotify}`);
  }
}
