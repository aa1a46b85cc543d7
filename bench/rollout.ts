/**
 * A 3-host rollout's overhead per batch boundary: from the previous host's last step ended to the next
 * host's first step started, as the steps themselves wrote it (`date +%s%N`). That is the job-end event
 * reaching the worker, the DO ending the batch and sending the next one, the agent accepting it and
 * spawning the step. Three real agents (bench-1..3, the default rollout: one host at a time) on one
 * worker. `npm run bench` prints its row (`rolloutRow`); `node bench/rollout.ts` runs it alone on a
 * worker of its own: each deployment's boundaries, then that row.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { waitForAgent, waitForDeployment } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { fileLines } from "../dev/file-lines.ts";
import { createRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { startWorker, TEST_SECRETS } from "../dev/worker-process.ts";
import { percentile, printTable, type Row, settle } from "./stats.ts";

const TARGET = "rollout-bench";
const REPO = "bench/fleet";
const HOSTS = ["bench-1", "bench-2", "bench-3"];
const WARM_UP = 1;
const MEASURED = 10;

export interface RolloutRun {
  deployment: string;
  status: string;
  /** How long the webhook took to answer the push that made the deployment (ms). */
  answerMs: number;
  /** GET /healthz just before that push (ms): the answer's yardstick, measured alongside. */
  healthMs: number;
  /** ms from host i's last step ended to host i+1's first step started; empty when the steps' stamps are incomplete. */
  boundaries: number[];
  /**
   * Each boundary cut at the worker's own times (ms, its clock; approximate): last step ended → the worker
   * had the job's end (finishedAt) → it had the next job accepted (startedAt) → the next first step started.
   */
  parts: { jobEnd: number; nextAccepted: number; stepSpawned: number }[];
  problem?: string;
}

/** `<delivery> <host> start|end <ns>` lines, one per step that ran. */
function stampsOf(file: string, delivery: string): { host: string; what: string; ns: bigint }[] {
  return fileLines(file)
    .map((line) => line.split(" "))
    .filter((f) => f.length === 4 && f[0] === delivery)
    .map(([, host, what, ns]) => ({ host: host!, what: what!, ns: BigInt(ns!) }));
}

async function oneRollout(url: string, sha: string, file: string): Promise<RolloutRun> {
  const delivery = randomUUID();
  const asked = performance.now();
  await fetch(`${url}/healthz`).then((r) => r.text());
  const healthMs = performance.now() - asked;
  const sent = performance.now();
  const res = await sendWebhook(url, { target: TARGET, delivery, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: "refs/heads/fleet", after: sha }) });
  const answerMs = performance.now() - sent;
  const deployment = res.body?.deployments?.[0];
  if (res.status !== 202 || res.body.deployments.length !== 1 || deployment.jobs.length !== HOSTS.length) {
    return { deployment: "none", answerMs, healthMs, status: `push answered ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`, boundaries: [], parts: [], problem: "no 3-job deployment" };
  }
  // The stamps first (the file, every 2 ms), then the API: asking the worker every 100 ms while the
  // batches move would compete with them on this 2-core machine. A host that never ends falls through.
  await eventually("every host's last step", () => (stampsOf(file, delivery).filter((s) => s.what === "end").length === HOSTS.length ? true : undefined), 60_000, 2).catch(() => undefined);
  let dep: any;
  try {
    dep = await waitForDeployment(url, TARGET, deployment.id, undefined, 60_000);
  } catch (e) {
    return { deployment: deployment.id, answerMs, healthMs, status: "not finished", boundaries: [], parts: [], problem: e instanceof Error ? e.message : String(e) };
  }
  const stamps = stampsOf(file, delivery);
  const at = (host: string, what: string) => stamps.filter((s) => s.host === host && s.what === what);
  const complete = HOSTS.every((h) => at(h, "start").length === 1 && at(h, "end").length === 1);
  if (!complete) return { deployment: dep.id, answerMs, healthMs, status: dep.status, boundaries: [], parts: [], problem: `stamps: ${stamps.map((s) => `${s.host} ${s.what}`).join(", ") || "none"}` };
  const boundaries = HOSTS.slice(1).map((host, i) => Number(at(host, "start")[0]!.ns - at(HOSTS[i]!, "end")[0]!.ns) / 1e6);
  const ms = (ns: bigint) => Number(ns / 1000n) / 1000;
  const jobOf = (host: string) => dep.jobs.find((j: any) => j.agent === host);
  const parts = HOSTS.slice(1).map((host, i) => {
    const end = ms(at(HOSTS[i]!, "end")[0]!.ns);
    const finished = Date.parse(jobOf(HOSTS[i]!)?.finishedAt);
    const accepted = Date.parse(jobOf(host)?.startedAt);
    return { jobEnd: finished - end, nextAccepted: accepted - finished, stepSpawned: ms(at(host, "start")[0]!.ns) - accepted };
  });
  // A boundary below zero means two hosts ran at once: not a one-host-at-a-time rollout.
  const problem = boundaries.some((b) => b < 0) ? "hosts overlapped" : undefined;
  return { deployment: dep.id, answerMs, healthMs, status: dep.status, boundaries, parts, problem };
}

/**
 * Runs WARM_UP + MEASURED deployments of one pipeline over three agents and returns the row: p50 of the
 * measured boundaries; ok only if every deployment (the warm-up too) succeeded with every host's steps
 * run once, in name order, one after the other, and the p50 is within 50 ms.
 */
/** The boundary row, and the webhook's answer time for the pushes that made the deployments (p50, ms). */
export async function rolloutRow(url: string, opts: { bundle?: boolean; log?: (run: RolloutRun) => void } = {}): Promise<{ row: Row; answerP50: number; healthP50: number; ok: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-bench-rollout-"));
  const file = join(dir, "stamps");
  const repo = createRepo({ VERSION: "1\n" }, { dir });
  const agents: AgentProcess[] = [];
  try {
    for (const host of HOSTS) {
      const workdir = join(dir, host);
      mkdirSync(workdir);
      agents.push(
        await startAgent({
          server: url,
          target: TARGET,
          name: host,
          bundle: opts.bundle,
          pipelines: [
            {
              name: "fleet",
              repo: REPO,
              branches: ["fleet"],
              workdir,
              env: { BENCH_HOST: host, STAMPS: file },
              steps: [
                { name: "first", run: 'echo "$HOOKRELAY_DELIVERY $BENCH_HOST start $(date +%s%N)" >> "$STAMPS"' },
                { name: "last", run: 'echo "$HOOKRELAY_DELIVERY $BENCH_HOST end $(date +%s%N)" >> "$STAMPS"' },
              ],
            },
          ],
        }),
      );
    }
    for (const host of HOSTS) await waitForAgent(url, TARGET, host);
    const sha = repo.head(repo.work);
    const runs: RolloutRun[] = [];
    for (let i = 0; i < WARM_UP + MEASURED; i++) {
      await settle();
      const run = await oneRollout(url, sha, file);
      opts.log?.(run);
      runs.push(run);
    }
    const bad = runs.filter((r) => r.status !== "succeeded" || r.problem !== undefined);
    const measured = runs.slice(WARM_UP).flatMap((r) => r.boundaries);
    const p50 = percentile(measured, 50);
    const parts = runs.slice(WARM_UP).flatMap((r) => r.parts);
    const part = (k: keyof RolloutRun["parts"][number]) => percentile(parts.map((p) => p[k]), 50).toFixed(0);
    const failed = bad.length === 0 ? "" : `; FAILED: ${bad.map((r) => `${r.deployment} ${r.status}${r.problem ? ` (${r.problem})` : ""}`).join("; ")}`;
    const row: Row = {
      metric: "3-host rollout: overhead per batch boundary p50 (last step end → next host's first step start)",
      value: `${measured.length ? `${p50.toFixed(1)} ms (max ${Math.max(...measured).toFixed(1)} ms, ${measured.length} boundaries; p50 by the worker's clock: job end stored +${part("jobEnd")}, next accepted +${part("nextAccepted")}, step started +${part("stepSpawned")} ms)` : "not measured"}; ${runs.length - bad.length}/${runs.length} deployments succeeded${failed}`,
      target: "≤ 50 ms",
      ok: bad.length === 0 && measured.length > 0 && p50 <= 50,
    };
    const measuredRuns = runs.slice(WARM_UP);
    return { row, answerP50: percentile(measuredRuns.map((r) => r.answerMs), 50), healthP50: percentile(measuredRuns.map((r) => r.healthMs), 50), ok: bad.length === 0 };
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  execFileSync(process.execPath, [join(import.meta.dirname, "../scripts/build-agent.ts"), "--no-sea"], { stdio: "ignore" });
  const worker = await startWorker();
  const rows: Row[] = [];
  try {
    const result = await rolloutRow(worker.url, {
        bundle: true,
        log: (r) =>
          console.log(
            `${r.deployment} ${r.status}: ${r.boundaries.map((b, i) => `${b.toFixed(1)} ms [${Object.values(r.parts[i]!).map((v) => v.toFixed(0)).join(" + ")}]`).join(", ")}${r.problem ? ` (${r.problem})` : ""}`,
          ),
      });
    rows.push(result.row, { metric: "webhook answer p50, 3-host rollout push", value: `${result.answerP50.toFixed(2)} ms`, target: "", ok: undefined });
  } finally {
    await worker.stop();
    printTable(rows);
  }
}
