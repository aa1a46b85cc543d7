/**
 * What the storage budget for logs costs the hot path: log appends and deliveries per second on a
 * target that sits at its budget (each job's log pushes the total past it, so the oldest finished
 * job's log is dropped as it goes) against one far below it. Two workers under `wrangler dev`, one
 * with LOG_BUDGET_MB = 16, one with the default 1024; one real agent each. A round on each, in turn:
 * a job whose step prints LOG_BYTES (under the agent's 8 MiB log cap, so all of it is stored), then
 * DELIVERIES deliveries for a second pipeline of the same agent, one after another. Appends/s = log
 * rows the job stored ÷ the job's run time (worker clock); deliveries/s = 2xx answers ÷ the time they took. `npm run bench` prints its row (`logBudgetRow`);
 * `node bench/log-budget.ts` runs it alone, printing each round.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, waitForAgent, waitForJob } from "../dev/api.ts";
import { createRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";
import { percentile, printTable, type Row } from "./stats.ts";

const TARGET = "budget-bench";
const REPO = "bench/logs";
const BUDGET_MB = 16;
const LOG_BYTES = 6_000_000;
// `yes` ends by SIGPIPE when head is done, which pipefail (steps run under bash -eo pipefail) would count as a failure.
const PRINT = `{ yes 'hookrelay log budget benchmark line 0123456789abcdef' || true; } | head -c ${LOG_BYTES}`;
/** Rounds per side; the first two fill the small budget (not measured). */
const FILL = 2;
const MEASURED = 8;
/** Deliveries per round, sent after its job. */
const DELIVERIES = 40;

export interface BudgetRound {
  side: "at budget" | "far below";
  appendsPerSec: number;
  deliveriesPerSec: number;
  logBytes: number;
  logRows: number;
  problem?: string;
}

interface Side {
  name: BudgetRound["side"];
  worker: WorkerProcess;
  agent: AgentProcess;
}

const storage = async (url: string) => (await api(url, `/api/targets/${TARGET}/storage`)).body as { logBytes: number; logRows: number; logBudgetBytes: number; oldestLoggedJob: { id: string } | null };
const push = (url: string, branch: string) =>
  sendWebhook(url, { target: TARGET, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: `refs/heads/${branch}`, after: randomBytes(20).toString("hex") }) });

async function oneRound(side: Side): Promise<BudgetRound> {
  const url = side.worker.url;
  const before = await storage(url);
  const res = await push(url, "print");
  const id = res.body?.jobs?.[0]?.id as string | undefined;
  if (res.status !== 202 || !id) return { side: side.name, appendsPerSec: 0, deliveriesPerSec: 0, logBytes: before.logBytes, logRows: before.logRows, problem: `push answered ${res.status}` };
  const job = await waitForJob(url, TARGET, id, undefined, 120_000);
  // Then deliveries one after another: each queues a job of the other pipeline (a noop, whose few
  // events are appends too: at the budget, each may drop the oldest log).
  let answered = 0;
  let bad = 0;
  const t0 = performance.now();
  for (let i = 0; i < DELIVERIES; i++) {
    const d = await push(url, "queue");
    if (d.status >= 200 && d.status < 300) answered++;
    else bad++;
  }
  const deliveriesPerSec = answered / ((performance.now() - t0) / 1000);
  const after = await storage(url);
  const runMs = Date.parse(job.finishedAt) - Date.parse(job.startedAt);
  const log = await api(url, `/api/targets/${TARGET}/jobs/${id}/log?step=print`);
  // The job's own log rows (its log is the newest, never the one dropped): one append each.
  const rows: number = (await api(url, `/api/targets/${TARGET}/jobs/${id}`)).body.logRows;
  const problems = [
    job.status !== "succeeded" ? `job ${job.status}` : "",
    !(rows > 0) ? "no log rows" : "",
    log.text.length !== LOG_BYTES ? `stored log ${log.text.length} bytes, not ${LOG_BYTES}` : "",
    bad > 0 ? `${bad} deliveries not 2xx` : "",
    after.logBytes > after.logBudgetBytes ? `log bytes ${after.logBytes} over the budget ${after.logBudgetBytes}` : "",
  ].filter(Boolean);
  return {
    side: side.name,
    appendsPerSec: rows / (runMs / 1000),
    deliveriesPerSec,
    logBytes: after.logBytes,
    logRows: after.logRows,
    ...(problems.length ? { problem: problems.join("; ") } : {}),
  };
}

async function startSide(name: BudgetRound["side"], vars: Record<string, string>, opts: { bundle?: boolean }): Promise<Side> {
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-bench-budget-"));
  const repo = createRepo({ VERSION: "1\n" }, { dir });
  const worker = await startWorker({ vars });
  const agent = await startAgent({
    server: worker.url,
    target: TARGET,
    name: "bench-logs",
    bundle: opts.bundle,
    pipelines: [
      { name: "print", repo: REPO, branches: ["print"], workdir: repo.live, timeout: "5m", steps: [{ name: "print", run: PRINT }] },
      { name: "queue", repo: REPO, branches: ["queue"], workdir: repo.live, steps: [{ name: "noop", run: "true" }] },
    ],
  });
  await waitForAgent(worker.url, TARGET, "bench-logs");
  return { name, worker, agent };
}

/**
 * Runs FILL + MEASURED rounds on each side, alternating, and returns the row: the at-budget side's p50
 * appends/s and deliveries/s as a share of the far-below side's; ok only if every round succeeded (job
 * succeeded, its log stored byte-exact, every delivery 2xx, the total within the budget), the small
 * budget was really passed (logs dropped), and neither rate fell by more than 10 %.
 */
export async function logBudgetRow(opts: { bundle?: boolean; log?: (r: BudgetRound) => void } = {}): Promise<Row> {
  const sides: Side[] = [];
  try {
    sides.push(await startSide("at budget", { LOG_BUDGET_MB: String(BUDGET_MB) }, opts));
    sides.push(await startSide("far below", {}, opts));
    const rounds: BudgetRound[] = [];
    for (let i = 0; i < FILL + MEASURED; i++) {
      for (const side of i % 2 === 0 ? sides : [...sides].reverse()) {
        const r = await oneRound(side);
        opts.log?.(r);
        if (i >= FILL || r.problem) rounds.push(r);
      }
    }
    const [full, roomy] = sides as [Side, Side];
    const fullNow = await storage(full.worker.url);
    const roomyNow = await storage(roomy.worker.url);
    const jobsRun = FILL + MEASURED;
    const problems = rounds.filter((r) => r.problem).map((r) => `${r.side}: ${r.problem}`);
    // At budget: only the newest jobs' logs fit, so older ones were dropped; far below: every job's log is there.
    if (fullNow.logBytes > BUDGET_MB * 1048576 || fullNow.logBytes < (BUDGET_MB * 1048576) / 2) problems.push(`at budget: ${fullNow.logBytes} log bytes, not near the ${BUDGET_MB} MiB budget`);
    if (roomyNow.logBytes < jobsRun * LOG_BYTES) problems.push(`far below: ${roomyNow.logBytes} log bytes, fewer than its ${jobsRun} jobs printed (something was dropped)`);
    const p50 = (side: BudgetRound["side"], k: "appendsPerSec" | "deliveriesPerSec") => percentile(rounds.filter((r) => r.side === side && !r.problem).map((r) => r[k]), 50);
    const appends = p50("at budget", "appendsPerSec") / p50("far below", "appendsPerSec");
    const deliveries = p50("at budget", "deliveriesPerSec") / p50("far below", "deliveriesPerSec");
    return {
      metric: `log budget: appends/s and deliveries/s at a ${BUDGET_MB} MiB budget (dropping) ÷ far below it (p50 of ${MEASURED} rounds)`,
      value:
        `appends ${p50("at budget", "appendsPerSec").toFixed(0)}/s vs ${p50("far below", "appendsPerSec").toFixed(0)}/s (${(appends * 100).toFixed(0)} %), ` +
        `deliveries ${p50("at budget", "deliveriesPerSec").toFixed(0)}/s vs ${p50("far below", "deliveriesPerSec").toFixed(0)}/s (${(deliveries * 100).toFixed(0)} %); ` +
        `stored ${(fullNow.logBytes / 1048576).toFixed(1)} MiB vs ${(roomyNow.logBytes / 1048576).toFixed(1)} MiB` +
        (problems.length ? `; FAILED: ${problems.join("; ")}` : ""),
      target: "≥ 90 % each",
      ok: problems.length === 0 && appends >= 0.9 && deliveries >= 0.9,
    };
  } finally {
    for (const s of sides) {
      await s.agent.stop();
      await s.worker.stop();
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  execFileSync(process.execPath, [join(import.meta.dirname, "../scripts/build-agent.ts"), "--no-arm64"], { stdio: "ignore" });
  const rows: Row[] = [];
  try {
    rows.push(
      await logBudgetRow({
        bundle: true,
        log: (r) => console.log(`${r.side}: ${r.appendsPerSec.toFixed(0)} appends/s, ${r.deliveriesPerSec.toFixed(0)} deliveries/s, stored ${r.logBytes} bytes in ${r.logRows} rows${r.problem ? ` (${r.problem})` : ""}`),
      }),
    );
  } finally {
    printTable(rows);
  }
}
