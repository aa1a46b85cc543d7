/**
 * End to end: secrets on the host. The real worker (wrangler dev) + the real agent process + real
 * bash steps printing secret values every way a step might; the log stored in the worker (read back
 * through its API) holds `***` where each value was, and no occurrence of any of them. Also: `run`
 * refuses a too-open secret file, `exec` masks the terminal, and SIGHUP reads rotated files.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, jobLog, waitForAgent, waitForJob } from "../dev/api.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";
import { runCli } from "../testing/agent-cli.ts";

const REPO = "acme/vault";
const DB_PASSWORD = "s3cr3t-Db-Pa55-7b1e4c";
const API_TOKEN = "tok_9f2c81e0d4b7a6f35e1c";
const PEM_LINES = ["-----BEGIN PRIVATE KEY-----", "MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAq7BFUpkGp3+XQx", "-----END PRIVATE KEY-----"];
/** A job-wide cap: the 1.1 MB line fits in its head (1.5 MiB), the flood passes it. */
const LOG_CAP = 2 * 1024 * 1024;

let worker: WorkerProcess;
let agent: AgentProcess;
let repo: GitRepo;
let scratch: string;
const file = (name: string) => join(scratch, "secrets", name);

function writeSecret(name: string, value: string, mode = 0o600): string {
  const path = file(name);
  writeFileSync(path, value);
  chmodSync(path, mode);
  return path;
}

/** Called once scratch exists (beforeAll). */
const PIPELINE = () => ({
  name: "app",
  repo: REPO,
  branches: ["main"],
  workdir: repo.live,
  timeout: "2m",
  secrets: { API_TOKEN: file("api-token") },
  steps: [
    { name: "whole", run: 'echo "connecting to postgres://app:$DB_PASSWORD@db/app"; echo "token $API_TOKEN" >&2' },
    { name: "drip", run: 's="<$DB_PASSWORD>"; for ((i = 0; i < ${#s}; i++)); do printf "%s" "${s:i:1}"; sleep 0.01; done; echo' },
    { name: "long-line", run: 'head -c 600000 /dev/zero | tr "\\0" a; printf "%s" "$API_TOKEN"; head -c 500000 /dev/zero | tr "\\0" b; echo' },
    { name: "encoded", run: 'printf "%s" "$DB_PASSWORD" | base64' },
    { name: "pem-line", run: 'echo "key: $(printf "%s\\n" "$TLS_KEY" | sed -n 2p)"' },
    { name: "flood", run: 'seq -f "filler %.0f" 1 150000; echo "last: $DB_PASSWORD $API_TOKEN"' },
    { name: "seen", run: `printf "%s" "$DB_PASSWORD" > ${JSON.stringify(join(scratch, "seen"))}` },
  ],
});

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "hookrelay-secrets-e2e-"));
  mkdirSync(join(scratch, "secrets"), { mode: 0o700 });
  writeSecret("db-password", `${DB_PASSWORD}\n`);
  writeSecret("api-token", API_TOKEN);
  writeSecret("tls-key", `${PEM_LINES.join("\n")}\n`);
  repo = createRepo({ "VERSION": "1\n" });
  worker = await startWorker();
  agent = await startAgent({
    server: worker.url,
    name: "web-1",
    extra: { log_cap: `${LOG_CAP / 1024}KiB`, secrets: { DB_PASSWORD: file("db-password"), TLS_KEY: file("tls-key") } },
    pipelines: [PIPELINE()],
  });
  await waitForAgent(worker.url, "default", "web-1");
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await worker?.stop();
});

async function deploy(): Promise<any> {
  const sha = repo.commit({ VERSION: `${Date.now()}\n` }, "deploy");
  const res = await sendWebhook(worker.url, { secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: "refs/heads/main", after: sha }) });
  expect(res.status).toBe(202);
  return waitForJob(worker.url, "default", res.body.jobs[0].id);
}

describe("secrets on the host, end to end", () => {
  it("stores *** where each secret was printed, and no occurrence of any secret", async () => {
    const job = await deploy();
    expect(job.status).toBe("succeeded");
    const step = (name: string) => jobLog(worker.url, "default", job.id, name);
    expect(await step("whole")).toBe("connecting to postgres://app:***@db/app\ntoken ***\n");
    expect(await step("drip")).toBe("<***>\n");
    // Compared without printing a megabyte on failure.
    const long = await step("long-line");
    expect([long.length, long.indexOf("***"), long === `${"a".repeat(600000)}***${"b".repeat(500000)}\n`]).toEqual([1_100_004, 600000, true]);
    // Values are masked, not encodings: the README says so.
    expect(await step("encoded")).toBe(`${Buffer.from(DB_PASSWORD).toString("base64")}\n`);
    expect(await step("pem-line")).toBe("key: ***\n");
    const flood = await step("flood");
    expect(flood).toMatch(/bytes of output omitted \(log cap 2MiB\)/);
    expect(flood.slice(-40)).toMatch(/\nlast: \*\*\* \*\*\*\n$/);
    // The step really had the value (as env DB_PASSWORD, from the file without its line break).
    expect(readFileSync(join(scratch, "seen"), "utf8")).toBe(DB_PASSWORD);

    const all = await jobLog(worker.url, "default", job.id);
    for (const value of [DB_PASSWORD, API_TOKEN, PEM_LINES[1]!]) expect(all).not.toContain(value);
    const view = await api(worker.url, `/api/targets/default/jobs/${job.id}`);
    for (const value of [DB_PASSWORD, API_TOKEN, PEM_LINES[1]!]) expect(view.text).not.toContain(value);
    // And the agent's own log (journald's) names secrets, never their values.
    expect(agent.process.output()).toContain(`secrets: DB_PASSWORD from file ${file("db-password")}`);
    for (const value of [DB_PASSWORD, API_TOKEN, PEM_LINES[1]!]) expect(agent.process.output()).not.toContain(value);
  }, 120_000);

  it("reads rotated secret files on SIGHUP (systemctl reload), for the next job", async () => {
    const rotated = "r0tated-Db-Pa55-88aa11";
    writeSecret("db-password", `${rotated}\n`);
    const from = agent.process.output().length;
    process.kill(agent.process.pid, "SIGHUP");
    await agent.process.waitForOutput(/reload: secrets read again for the next job/, 10_000, from);
    const job = await deploy();
    expect(job.status).toBe("succeeded");
    expect(readFileSync(join(scratch, "seen"), "utf8")).toBe(rotated);
    expect(await jobLog(worker.url, "default", job.id, "whole")).toBe("connecting to postgres://app:***@db/app\ntoken ***\n");

    // A reload that finds a file too open keeps the values it had, and says so.
    chmodSync(file("db-password"), 0o644);
    const at = agent.process.output().length;
    process.kill(agent.process.pid, "SIGHUP");
    await agent.process.waitForOutput(/secrets NOT reloaded/, 10_000, at);
    expect(agent.process.output().slice(at)).toContain(`${file("db-password")}: group or others have access to it (mode 0644)`);
    chmodSync(file("db-password"), 0o600);
  }, 120_000);

  it("run refuses to start when a secret file is group- or world-readable, naming it", async () => {
    const path = writeSecret("too-open", "an-open-secret-value", 0o644);
    const config = readFileSync(agent.configPath, "utf8").replace(/^secrets:\n/m, `secrets:\n  OPEN: ${path}\n`);
    const configPath = join(scratch, "open.yml");
    writeFileSync(configPath, config);
    const r = await runCli(["run", "--config", configPath], { HOOKRELAY_AGENT_TOKEN: "x".repeat(40) });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain(`secrets.OPEN: ${path}: group or others have access to it (mode 0644): run chmod 600 ${path}`);
    expect(r.stdout + r.stderr).toContain("not starting");
    const check = await runCli(["check", "--config", configPath], { HOOKRELAY_AGENT_TOKEN: "x".repeat(40) });
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(`secrets.OPEN: ${path}: group or others have access to it (mode 0644)`);
  }, 60_000);

  it("exec masks the terminal output the same way", async () => {
    const r = await runCli(["exec", "--config", agent.configPath, "--pipeline", "app", "--sha", repo.head(), "--ref", "refs/heads/main"], {}, 60_000);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("connecting to postgres://app:***@db/app\n");
    expect(r.stderr).toContain("token ***\n");
    expect(r.stdout).toContain("<***>\n");
    expect(r.stdout).toContain("key: ***\n");
    for (const value of [API_TOKEN, PEM_LINES[1]!]) expect(r.stdout + r.stderr).not.toContain(value);
    expect(r.stdout + r.stderr).not.toContain(readFileSync(file("db-password"), "utf8").trim());
  }, 90_000);
});
