/**
 * What masking secrets costs the 50 MB step: two real agents on one worker run the same step, one
 * without secrets and one holding three (a database URL, an API token and a 27-line PEM key: 29
 * patterns every output byte is checked against), alternating, as the step's own start and end in
 * the worker's record say. The step ends by printing the URL, so the masked run's stored tail must
 * end in `***` (and the plain run's in an empty line): a run that did not mask is not counted.
 * `npm run bench` prints its row (`maskingRow`); `node bench/masking.ts` runs it alone.
 */
import { AGENT_MALLOC_ENV, AGENT_V8_FLAGS } from "../agent/common/sea.ts";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { jobLog, waitForAgent, waitForJob } from "../dev/api.ts";
import { createRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { startWorker, TEST_SECRETS } from "../dev/worker-process.ts";
import { percentile, printTable, type Row } from "./stats.ts";

const TARGET = "masking-bench";
const REPO = "bench/masking";
const BIG_BYTES = 50_000_000;
// Not `yes | head` (under pipefail, yes's SIGPIPE fails the step): the step must succeed to count.
const STEP = `head -c ${BIG_BYTES} < <(yes 'hookrelay benchmark output line 0123456789abcdef'); echo; echo "$DB_URL"`;
const PAIRS = 6;

/** The process's CPU time (user + system) in ms, from /proc (10 ms ticks). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export async function maskingRow(url: string, opts: { bundle?: boolean } = {}): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-masking-bench-"));
  const secrets = join(dir, "secrets");
  mkdirSync(secrets, { mode: 0o700 });
  const secret = (name: string, value: string) => {
    writeFileSync(join(secrets, name), value);
    chmodSync(join(secrets, name), 0o600);
    return join(secrets, name);
  };
  const pem = ["-----BEGIN RSA PRIVATE KEY-----", ...Array.from({ length: 25 }, () => randomBytes(48).toString("base64")), "-----END RSA PRIVATE KEY-----"].join("\n");
  const repo = createRepo({ VERSION: "1\n" });
  const pipeline = (name: string) => ({ name, repo: REPO, branches: [name], workdir: repo.live, timeout: "5m", steps: [{ name: "print", run: STEP }] });
  const agents: AgentProcess[] = [];
  try {
    agents.push(await startAgent({ server: url, target: TARGET, name: "plain", bundle: opts.bundle, env: { NODE_OPTIONS: AGENT_V8_FLAGS, ...AGENT_MALLOC_ENV }, pipelines: [pipeline("plain")] }));
    agents.push(
      await startAgent({
        server: url, target: TARGET, name: "masked", bundle: opts.bundle, env: { NODE_OPTIONS: AGENT_V8_FLAGS, ...AGENT_MALLOC_ENV },
        extra: { secrets: { DB_URL: secret("db", "postgres://app:Xk29sLq0vB7@db.internal:5432/app"), API_TOKEN: secret("api", `tok_${randomBytes(18).toString("hex")}`), TLS_KEY: secret("pem", `${pem}\n`) } },
        pipelines: [pipeline("masked")],
      }),
    );
    await waitForAgent(url, TARGET, "plain");
    await waitForAgent(url, TARGET, "masked");
    const sha = repo.head(repo.work);
    const times: Record<"plain" | "masked", number[]> = { plain: [], masked: [] };
    // The agent's own CPU per step: what masking costs, whatever else this shared machine is doing.
    const cpu: Record<"plain" | "masked", number[]> = { plain: [], masked: [] };
    const pids = { plain: agents[0]!.process.pid, masked: agents[1]!.process.pid };
    const problems: string[] = [];
    for (let i = 0; i < PAIRS; i++) {
      for (const which of i % 2 === 0 ? (["plain", "masked"] as const) : (["masked", "plain"] as const)) {
        const cpu0 = cpuMs(pids[which]);
        const res = await sendWebhook(url, { target: TARGET, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: `refs/heads/${which}`, after: sha }) });
        const job = await waitForJob(url, TARGET, res.body.jobs[0].id, undefined, 300_000);
        const tail = (await jobLog(url, TARGET, job.id, "print")).slice(-64);
        const want = which === "masked" ? "\n***\n" : "\n\n";
        if (job.status !== "succeeded" || !tail.endsWith(want)) {
          problems.push(`${which} run ${i}: ${job.status}, log ends ${JSON.stringify(tail.slice(-12))}`);
          continue;
        }
        times[which].push(Date.parse(job.steps[0].finishedAt) - Date.parse(job.steps[0].startedAt));
        cpu[which].push(cpuMs(pids[which]) - cpu0);
      }
    }
    if (problems.length > 0 || times.plain.length === 0 || times.masked.length === 0) {
      return { metric: "50 MB step: masking 3 secrets (29 patterns)", value: `FAILED: ${problems.join("; ")}`, target: "≤ 1.05×", ok: false };
    }
    const plain = percentile(times.plain, 50);
    const masked = percentile(times.masked, 50);
    const cpuPlain = percentile(cpu.plain, 50);
    const cpuMasked = percentile(cpu.masked, 50);
    return {
      metric: "50 MB step: masking 3 secrets (29 patterns) ÷ none",
      value: `${masked.toFixed(0)} / ${plain.toFixed(0)} ms = ${(masked / plain).toFixed(3)}× (p50 of ${PAIRS} each); agent CPU ${cpuMasked} / ${cpuPlain} ms = ${(cpuMasked / cpuPlain).toFixed(3)}×`,
      target: "≤ 1.05×",
      ok: masked / plain <= 1.05,
    };
  } finally {
    for (const a of agents) await a.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const worker = await startWorker();
  try {
    printTable([await maskingRow(worker.url)]);
  } finally {
    await worker.stop();
  }
}
