/**
 * Gates (issue 25) in the bench: the webhook's answer to a `workflow_run` that opens a deployment's last
 * gate, and that `workflow_run` → the first step's process started on the host (it writes the time,
 * `date +%s%N`). One agent of its own (target `gates-bench`) declares two pipelines: `gated` waits for
 * the workflow "CI", `plain` waits for nothing. Each round, in turn on the same worker and agent:
 *
 * - plain: healthz, a push (timed), the step's stamp → the push → first step started, its job succeeded;
 * - gated: a push (not timed; its deployment must be `waiting`), a pause, no stamp (nothing ran while it
 *   waited), healthz, a signed `workflow_run` completed/success for that sha (timed; its answer must say
 *   the deployment's gate passed), the step's stamp → the run → first step started, its job succeeded.
 *
 * Every gated push is of a new sha (a conclusion is kept for its sha: a second push of that sha would
 * find its gate already passed and go at once). A round that does not go as above fails the rows (a
 * failed job is not a fast job). `npm run bench` prints the rows (`gatesBench`); `node bench/gates.ts`
 * runs it alone on a worker of its own.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_MALLOC_ENV, AGENT_V8_FLAGS } from "../agent/common/sea.ts";
import { startAgent } from "../dev/agent-process.ts";
import { getDeployment, waitForAgent, waitForJob } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { pushPayload, sendWebhook, workflowRunPayload } from "../dev/github.ts";
import { startWorker, TEST_SECRETS } from "../dev/worker-process.ts";
import { nowNs, percentile, printTable, type Row, settle } from "./stats.ts";

const TARGET = "gates-bench";
const REPO = "bench/gated";
const WARM_UP = 3;
const MEASURED = 25;

export interface GatesBench {
  /** The measured rounds' times (ms), each list in round order. */
  plain: { health: number[]; answer: number[]; start: number[] };
  gated: { health: number[]; answer: number[]; start: number[] };
  rounds: number;
  /** What went wrong, one entry per round that did not go as it must; empty when every round did. */
  failures: string[];
}

export async function gatesBench(url: string, opts: { bundle?: boolean; log?: (line: string) => void } = {}): Promise<GatesBench> {
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-bench-gates-"));
  const stamp = join(dir, "stamp");
  const agent = await startAgent({
    server: url,
    target: TARGET,
    name: "bench-gates",
    bundle: opts.bundle,
    env: { NODE_OPTIONS: AGENT_V8_FLAGS, ...AGENT_MALLOC_ENV }, // as the generated systemd unit runs it
    pipelines: [
      { name: "plain", repo: REPO, branches: ["plain"], workdir: dir, env: { STAMP: stamp }, steps: [{ name: "stamp", run: 'date +%s%N > "$STAMP"' }] },
      { name: "gated", repo: REPO, branches: ["gated"], workdir: dir, env: { STAMP: stamp }, wait_for: { workflows: ["CI"] }, steps: [{ name: "stamp", run: 'date +%s%N > "$STAMP"' }] },
    ],
  });
  const result: GatesBench = { plain: { health: [], answer: [], start: [] }, gated: { health: [], answer: [], start: [] }, rounds: 0, failures: [] };
  const secret = TEST_SECRETS.GITHUB_WEBHOOK_SECRET;
  const healthz = async () => {
    const t = performance.now();
    await fetch(`${url}/healthz`).then((r) => r.text());
    return performance.now() - t;
  };
  /** The stamp the step wrote, polled every ms as bench/run.ts waits for it (not the worker's API). */
  const waitForStamp = () => eventually("the step's stamp", () => (existsSync(stamp) && readFileSync(stamp, "utf8").trim() ? readFileSync(stamp, "utf8").trim() : undefined), 10_000, 1);
  try {
    await waitForAgent(url, TARGET, "bench-gates");
    for (let i = 0; i < WARM_UP + MEASURED; i++) {
      const measured = i >= WARM_UP;
      const sha = randomBytes(20).toString("hex");
      try {
        // plain: a push that goes at once.
        rmSync(stamp, { force: true });
        await settle();
        const plainHealth = await healthz();
        const p0 = nowNs();
        let t = performance.now();
        const pushed = await sendWebhook(url, { target: TARGET, secret, payload: pushPayload({ repo: REPO, ref: "refs/heads/plain", after: sha }) });
        const plainAnswer = performance.now() - t;
        if (pushed.status !== 202 || pushed.body.jobs?.length !== 1) throw new Error(`plain push answered ${pushed.status} ${JSON.stringify(pushed.body).slice(0, 200)}`);
        const plainStamp = await waitForStamp();
        const plainJob = await waitForJob(url, TARGET, pushed.body.jobs[0].id);
        if (plainJob.status !== "succeeded") throw new Error(`plain job ${plainJob.id} ${plainJob.status}`);

        // gated: a push that waits, then the run that opens its gate.
        rmSync(stamp, { force: true });
        await settle();
        const waiting = await sendWebhook(url, { target: TARGET, secret, payload: pushPayload({ repo: REPO, ref: "refs/heads/gated", after: sha }) });
        const dep = waiting.body?.deployments?.[0];
        if (waiting.status !== 202 || dep === undefined || waiting.body.jobs.length !== 1) throw new Error(`gated push answered ${waiting.status} ${JSON.stringify(waiting.body).slice(0, 200)}`);
        const before = await getDeployment(url, TARGET, dep.id);
        if (before.status !== "waiting") throw new Error(`gated deployment ${dep.id} is ${before.status}, not waiting`);
        await settle();
        if (existsSync(stamp)) throw new Error(`the gated step ran before its gate opened (deployment ${dep.id})`);
        const gatedHealth = await healthz();
        const g0 = nowNs();
        t = performance.now();
        const run = await sendWebhook(url, { target: TARGET, event: "workflow_run", secret, payload: workflowRunPayload({ repo: REPO, sha, name: "CI", headBranch: "gated" }) });
        const gatedAnswer = performance.now() - t;
        const opened = run.body?.gates;
        if (run.status !== 200 || !Array.isArray(opened) || opened.length !== 1 || opened[0].deployment !== dep.id || opened[0].state !== "passed") {
          throw new Error(`workflow_run answered ${run.status} ${JSON.stringify(run.body).slice(0, 200)}`);
        }
        const gatedStamp = await waitForStamp();
        const gatedJob = await waitForJob(url, TARGET, waiting.body.jobs[0].id);
        if (gatedJob.status !== "succeeded") throw new Error(`gated job ${gatedJob.id} ${gatedJob.status}`);

        const plainStart = Number(BigInt(plainStamp) - p0) / 1e6;
        const gatedStart = Number(BigInt(gatedStamp) - g0) / 1e6;
        opts.log?.(`${measured ? "round" : "warm-up"} ${i + 1}: push answer ${plainAnswer.toFixed(2)} → step ${plainStart.toFixed(1)} ms; workflow_run answer ${gatedAnswer.toFixed(2)} → step ${gatedStart.toFixed(1)} ms (healthz ${plainHealth.toFixed(2)} / ${gatedHealth.toFixed(2)})`);
        if (!measured) continue;
        result.rounds++;
        result.plain.health.push(plainHealth);
        result.plain.answer.push(plainAnswer);
        result.plain.start.push(plainStart);
        result.gated.health.push(gatedHealth);
        result.gated.answer.push(gatedAnswer);
        result.gated.start.push(gatedStart);
      } catch (e) {
        const why = `round ${i + 1}: ${e instanceof Error ? e.message : String(e)}`;
        opts.log?.(why);
        result.failures.push(why);
      }
    }
    return result;
  } finally {
    await agent.stop();
  }
}

/**
 * The two rows. `peer`: adnanh/webhook's POST → command started p50 and answer p50 (ms), when measured.
 * The answer's bound is the push answer's (≤ healthz + 3 ms); the run → step's, ≤ 3× adnanh/webhook.
 */
export function gatesRows(b: GatesBench, peer?: { start: number; answer: number }): Row[] {
  const failed = b.failures.length === 0 ? "" : `; FAILED ${b.failures.length}: ${b.failures.slice(0, 3).join("; ")}`;
  const ok = (v: boolean) => b.failures.length === 0 && b.rounds > 0 && v;
  const p50 = (xs: number[]) => percentile(xs, 50);
  const health = p50(b.gated.health);
  const answer = p50(b.gated.answer);
  const over = answer - health;
  const plainOver = p50(b.plain.answer) - p50(b.plain.health);
  const start = p50(b.gated.start);
  const plainStart = p50(b.plain.start);
  return [
    {
      metric: "webhook answer p50, workflow_run opening the last gate (job sent at once)",
      value: `${answer.toFixed(2)} ms = healthz ${health.toFixed(2)} + ${over.toFixed(2)} ms (p90 ${percentile(b.gated.answer, 90).toFixed(2)}); a push to an idle agent, in turn: healthz + ${plainOver.toFixed(2)} ms; ${b.rounds} rounds${failed}`,
      target: "≤ healthz + 3 ms",
      ok: ok(over <= 3),
      ratio: peer ? `${(answer / peer.answer).toFixed(1)}× webhook` : undefined,
    },
    {
      metric: "workflow_run (last gate) → first step started p50",
      value: `${start.toFixed(1)} ms (p90 ${percentile(b.gated.start, 90).toFixed(1)}); a push → first step, in turn: ${plainStart.toFixed(1)} ms; ${b.rounds} rounds${failed}`,
      target: "≤ 3× webhook",
      ok: peer ? ok(start / peer.start <= 3) : undefined,
      ratio: peer ? `${(start / peer.start).toFixed(2)}× webhook` : undefined,
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  execFileSync(process.execPath, [join(import.meta.dirname, "../scripts/build-agent.ts"), "--no-sea"], { stdio: "ignore" });
  const worker = await startWorker();
  const rows: Row[] = [];
  try {
    rows.push(...gatesRows(await gatesBench(worker.url, { bundle: true, log: (line) => console.log(line) })));
  } finally {
    await worker.stop();
    printTable(rows);
  }
}
