/**
 * A bounded fault soak. Signed pushes keep arriving (a new commit each, its own delivery GUID) while
 * the worker (wrangler dev) and the agent are SIGKILLed at seeded-random moments and restarted on the
 * same storage (--persist-to dir, state_dir). A killed agent takes its steps with it (power loss).
 * Afterwards, with both up and settled, it checks invariants, never timings:
 *  - every delivery is answered (an unanswered POST is re-sent with the same GUID, as GitHub's
 *    Redeliver does), and a re-send gets the same answer (same job ids) as the first answer;
 *  - no job ran twice, and no step ran for a job whose status says it never started;
 *  - nothing is left queued or running (and an agent away past AGENT_STALE_SECONDS has no running job);
 *  - a succeeded job's log has every numbered line once, in order; any other job's log is an in-order
 *    prefix (no duplicate, no gap).
 * SOAK_SEED replays a seed's choices (timing still varies); SOAK_CYCLES raises the number of kills.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, jobLog, waitForAgent } from "../dev/api.ts";
import { killByEnvMarker } from "../testing/liveness.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload } from "../dev/github.ts";
import { eventually } from "../dev/eventually.ts";
import { redeliverer, seededRandom, type Redeliverer } from "../testing/redeliver.ts";
import { startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";
import { sleep } from "../agent/common/sleep.ts";
import { runsOf } from "../testing/soak/checks.ts";

const SEED = process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) >>> 0 : Math.floor(Math.random() * 2 ** 32);
const CYCLES = Math.max(1, Number(process.env.SOAK_CYCLES ?? 6));
const STALE_SECONDS = 2;
const LINES = 30;
const TARGET = "soak";
const REPO = "acme/soak";
const MARK = "HOOKRELAY_SOAK_MARK";
const OPEN = ["queued", "running"];
const FULL_LOG = Array.from({ length: LINES }, (_, i) => `line ${i + 1}\n`).join("");

type Kill = "worker" | "agent" | "both" | "agent-outage" | "both-outage";
const KINDS: Kill[] = ["worker", "agent", "both", "agent-outage", "both-outage"];

// Two streams, so the kill schedule does not depend on how many pushes happened to be made.
const killRandom = seededRandom(SEED);
const pushRandom = seededRandom((SEED ^ 0x5bd1e995) >>> 0);
const between = (random: () => number, lo: number, hi: number) => lo + random() * (hi - lo);

/** Every kind once (seeded order) when there are enough cycles, then seeded picks. */
function killPlan(cycles: number): Kill[] {
  const plan: Kill[] = [];
  if (cycles >= KINDS.length) {
    const shuffled = [...KINDS];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(killRandom() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    plan.push(...shuffled);
  }
  while (plan.length < cycles) plan.push(KINDS[Math.floor(killRandom() * KINDS.length)]!);
  return plan;
}

let dir: string;
let repo: GitRepo;
let worker: WorkerProcess | undefined;
let agent: AgentProcess | undefined;
let sender: Redeliverer;
let runsFile: string;
const mark = randomUUID();
const outputs: string[] = []; // output of every agent and worker process that has exited
const violations: string[] = [];
let stop = false;
let loops: Promise<unknown>[] = [];
const counts = { workerKills: 0, agentKills: 0, pushes: 0 };

function note(line: string): void {
  appendFileSync(join(dir, "soak.log"), `${new Date().toISOString()} ${line}\n`);
}

async function killAgent(): Promise<void> {
  outputs.push(`--- agent pid ${agent!.process.pid}\n${agent!.process.output()}`);
  await agent!.process.stop("SIGKILL");
  killByEnvMarker(MARK, mark); // its steps, in their own process groups
  counts.agentKills++;
}

async function killWorker(): Promise<void> {
  outputs.push(`--- worker pid ${worker!.process.pid}\n${worker!.process.output()}`);
  await worker!.process.stop("SIGKILL");
  counts.workerKills++;
}

async function openJobs(): Promise<any[]> {
  const r = await api(worker!.url, `/api/targets/${TARGET}/jobs?limit=200`);
  if (r.status !== 200) throw new Error(`jobs list: ${r.status} ${r.text.slice(0, 200)}`);
  return r.body.jobs.filter((j: any) => OPEN.includes(j.status));
}

/** An agent gone past AGENT_STALE_SECONDS must not keep a job running (checked with the worker up). */
async function checkStale(cycle: number, kind: Kill): Promise<void> {
  const timeoutMs = STALE_SECONDS * 1000 + 5000;
  const deadline = Date.now() + timeoutMs;
  let running: any[] = [];
  while (Date.now() < deadline && !stop) {
    try {
      running = (await openJobs()).filter((j) => j.status === "running");
      if (running.length === 0) return;
    } catch {
      /* the worker is still starting: try again */
    }
    await sleep(200);
  }
  if (running.length > 0) {
    const agents = await api(worker!.url, `/api/targets/${TARGET}/agents`).catch((e: unknown) => ({ text: String(e) }));
    violations.push(
      `seed ${SEED} cycle ${cycle} (${kind}): the agent has been dead for ${timeoutMs} ms (AGENT_STALE_SECONDS=${STALE_SECONDS}) with the worker up, ` +
        `yet job(s) still running: ${running.map((j) => j.id).join(", ")}; the agents API says ${agents.text.slice(0, 300)}`,
    );
  }
}

async function killer(plan: Kill[]): Promise<void> {
  for (const [i, kind] of plan.entries()) {
    const cycle = i + 1;
    await sleep(between(killRandom, 800, 3000));
    if (stop) return;
    note(`cycle ${cycle}: kill ${kind}`);
    const agentToo = kind !== "worker";
    const workerToo = kind === "worker" || kind.startsWith("both");
    await Promise.all([agentToo ? killAgent() : undefined, workerToo ? killWorker() : undefined]);
    await sleep(between(killRandom, 0, 1500));
    if (workerToo) await worker!.restart();
    if (kind.endsWith("outage")) await checkStale(cycle, kind);
    if (agentToo) await agent!.restart();
    note(`cycle ${cycle}: restarted`);
  }
}

async function pusher(): Promise<void> {
  while (!stop) {
    counts.pushes++;
    const sha = repo.commit({ VERSION: `${counts.pushes}\n` }, `push ${counts.pushes}`);
    await sender.send(sha, pushPayload({ repo: REPO, ref: "refs/heads/main", after: sha }));
    for (const d of sender.unanswered().slice(0, 3)) await sender.resend(d);
    const answered = sender.deliveries.filter((d) => d.first);
    if (answered.length > 0 && pushRandom() < 0.15) await sender.resend(answered[Math.floor(pushRandom() * answered.length)]!);
    await sleep(between(pushRandom, 100, 400));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hookrelay-soak-"));
  runsFile = join(dir, "runs");
  writeFileSync(runsFile, "");
  repo = createRepo({ VERSION: "0\n" });
  worker = await startWorker({ vars: { AGENT_STALE_SECONDS: String(STALE_SECONDS) } });
  agent = await startAgent({
    server: worker.url,
    target: TARGET,
    name: "web-1",
    env: { [MARK]: mark, HOOKRELAY_RECONNECT_MAX_MS: "1000" },
    // Heartbeats well inside AGENT_STALE_SECONDS: a socket silent past it is closed as a dead one.
    extra: { heartbeat: "500ms" },
    pipelines: [
      {
        name: "app",
        repo: REPO,
        branches: ["main"],
        workdir: repo.live,
        timeout: "2m",
        steps: [
          { name: "verify", run: `git --git-dir=${repo.origin} cat-file -e "$HOOKRELAY_SHA^{commit}" && echo "deploying $HOOKRELAY_SHA"` },
          // The run file is written before the line is printed: a logged line always has its record.
          { name: "count", run: `echo "$HOOKRELAY_JOB_ID start" >> ${runsFile}; for i in $(seq 1 ${LINES}); do echo "$HOOKRELAY_JOB_ID $i" >> ${runsFile}; echo "line $i"; sleep 0.04; done` },
        ],
      },
    ],
  });
  await waitForAgent(worker.url, TARGET, "web-1");
  sender = redeliverer({ url: () => worker!.url, target: TARGET, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET });
}, 90_000);

afterAll(async () => {
  stop = true;
  await Promise.race([Promise.allSettled(loops), sleep(70_000)]);
  if (agent) await agent.stop("SIGKILL");
  if (dir) killByEnvMarker(MARK, mark);
  if (worker) await worker.stop("SIGKILL");
}, 90_000);

/** Lines of every process's output that mention one of `ids`, for the failure message. */
function linesAbout(ids: string[]): string {
  const all = [...outputs, worker!.process.output(), agent!.process.output()].join("\n").split("\n");
  return all.filter((l) => ids.some((id) => l.includes(id))).slice(0, 60).join("\n");
}

describe(`a fault soak (seed ${SEED}, ${CYCLES} cycles)`, () => {
  it("answers every delivery, runs no job twice, leaves none open, and loses or repeats no log line", async () => {
    console.log(`soak: seed ${SEED} (SOAK_SEED=${SEED} to replay), ${CYCLES} cycles, AGENT_STALE_SECONDS=${STALE_SECONDS}, files in ${dir}`);
    const plan = killPlan(CYCLES);
    const started = Date.now();
    const killing = killer(plan);
    const pushing = pusher();
    loops = [killing, pushing];
    try {
      await killing;
    } finally {
      stop = true;
      await pushing;
    }
    note(`soak done after ${Date.now() - started} ms; settling`);

    // Settle: both up, every delivery answered, nothing queued or running.
    await waitForAgent(worker!.url, TARGET, "web-1", 30_000);
    await eventually("every delivery to be answered", async () => {
      for (const d of sender.unanswered()) await sender.resend(d);
      return sender.unanswered().length === 0 ? true : undefined;
    }, 30_000, 250);
    let open: any[] = [];
    try {
      await eventually("no job queued or running", async () => ((open = await openJobs()).length === 0 ? true : undefined), 45_000, 250);
    } catch {
      violations.push(`seed ${SEED}: after settling for 45 s, still open: ${open.map((j) => `${j.id} ${j.status}`).join(", ")}\n${linesAbout(open.map((j) => j.id))}`);
    }

    // Every delivery once more: the same answer as the first.
    for (const d of sender.deliveries) await sender.resend(d);
    const jobIds: string[] = [];
    for (const d of sender.deliveries) {
      if (!d.first || d.first.status !== 202 || d.first.jobIds.length !== 1) {
        violations.push(`delivery ${d.guid}: expected 202 with one job, got ${d.first ? `${d.first.status} ${d.first.text.slice(0, 200)}` : "no answer"}`);
      }
      for (const m of d.mismatches) violations.push(`delivery ${d.guid}: re-send answered ${m.status} ${m.jobIds.join(",")}, first answer was ${d.first?.status} ${d.first?.jobIds.join(",")}`);
      jobIds.push(...(d.first?.jobIds ?? []));
    }
    const known = new Set(jobIds);
    const listed = (await api(worker!.url, `/api/targets/${TARGET}/jobs?limit=200`)).body.jobs as any[];
    for (const j of listed) if (!known.has(j.id)) violations.push(`job ${j.id} (delivery ${j.delivery}, ${j.status}) is in the list but in no delivery's answer`);

    // Per job: ran at most once, only if it started, closed, and its log whole or an in-order prefix.
    const runs = runsOf(runsFile);
    const byStatus: Record<string, number> = {};
    for (const id of jobIds) {
      const r = await api(worker!.url, `/api/targets/${TARGET}/jobs/${id}`);
      if (r.status !== 200) {
        violations.push(`job ${id}: GET answered ${r.status} ${r.text.slice(0, 200)}`);
        continue;
      }
      const job = r.body;
      byStatus[job.status] = (byStatus[job.status] ?? 0) + 1;
      const ran = runs.get(id) ?? { starts: 0, lines: 0 };
      const count = job.steps.find((s: any) => s.name === "count");
      const problems: string[] = [];
      if (ran.starts > 1) problems.push(`its count step ran ${ran.starts} times`);
      if (ran.starts > 0 && (job.startedAt === null || ["queued", "superseded", "skipped"].includes(job.status) || ["pending", "skipped"].includes(count?.status))) {
        problems.push(`its count step ran, yet the job is ${job.status} (startedAt ${job.startedAt}) with count step ${count?.status}`);
      }
      if (OPEN.includes(job.status)) problems.push(`still ${job.status}`);
      const log = await jobLog(worker!.url, TARGET, id, "count");
      const logged = log.split("\n").length - 1;
      if (job.status === "succeeded") {
        if (log !== FULL_LOG) problems.push(`succeeded, but its count log is not lines 1..${LINES} once each in order: ${JSON.stringify(log.slice(0, 400))}`);
        if (ran.starts !== 1) problems.push(`succeeded, but its count step ran ${ran.starts} times`);
      } else if (!FULL_LOG.startsWith(log)) {
        problems.push(`${job.status}, and its count log is not an in-order prefix of lines 1..${LINES}: ${JSON.stringify(log.slice(0, 400))}`);
      }
      if (logged > ran.lines) problems.push(`its log has ${logged} lines, but the step wrote only ${ran.lines}`);
      if (problems.length > 0) violations.push(`seed ${SEED}: job ${id} (${job.status}): ${problems.join("; ")}\n${linesAbout([id])}`);
    }

    const ds = sender.deliveries;
    console.log(
      [
        `soak: seed ${SEED}, ${CYCLES} cycles in ${Math.round((Date.now() - started) / 1000)} s, plan ${plan.join(", ")}`,
        `  deliveries ${ds.length}: answered first time ${ds.filter((d) => d.firstOnAttempt === 1).length}, ` +
          `re-sent until answered ${ds.filter((d) => (d.firstOnAttempt ?? 0) > 1).length} (${ds.reduce((n, d) => n + (d.firstOnAttempt ?? d.attempts) - 1, 0)} re-sends), ` +
          `redelivered after an answer ${ds.reduce((n, d) => n + d.repeatsAfterAnswer, 0)} times (${ds.length} in the final pass)`,
        `  jobs ${jobIds.length}: ${Object.entries(byStatus).map(([s, n]) => `${s} ${n}`).join(", ")}`,
        `  worker kills ${counts.workerKills}, agent kills ${counts.agentKills}; violations ${violations.length}`,
      ].join("\n"),
    );
    if (violations.length > 0) {
      writeFileSync(join(dir, "processes.log"), [...outputs, worker!.process.output(), agent!.process.output()].join("\n"));
      console.log(`soak: process output in ${join(dir, "processes.log")}`);
    }
    expect(violations).toEqual([]);
    rmSync(dir, { recursive: true, force: true }); // kept for a look when something was violated
    rmSync(repo.dir, { recursive: true, force: true });
  }, 120_000 + CYCLES * 15_000);
});
