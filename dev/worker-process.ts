/**
 * The real worker under `wrangler dev` (workerd, local Durable Object storage) on a free loopback port.
 * Secrets come from a private env file, never the repo's .dev.vars.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startProcess, type RunningProcess } from "./process.ts";

export const REPO_ROOT = new URL("../", import.meta.url).pathname;
export const BIN = join(REPO_ROOT, "node_modules/.bin");

export const TEST_SECRETS = {
  GITHUB_WEBHOOK_SECRET: "e2e-webhook-secret",
  ADMIN_TOKEN: "e2e-admin-token-0123456789abcdef",
} as const;

export interface WorkerOptions {
  /** Durable Object storage directory; reuse it across restarts to keep state. */
  persistTo?: string;
  vars?: Record<string, string>;
  /** Over TEST_SECRETS; any other worker secret too (GITHUB_TOKEN, NOTIFY_URLS, …). */
  secrets?: Partial<Record<keyof typeof TEST_SECRETS, string>> & Record<string, string>;
  port?: number;
  /**
   * wrangler's --log-level: "info" (default) prints its own lines only; "log" prints the worker's
   * console lines too (console-lines.ts) — at "info" those reach only wrangler's log file.
   */
  logLevel?: "info" | "log";
}

export interface WorkerProcess {
  readonly url: string;
  readonly port: number;
  readonly persistTo: string;
  process: RunningProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stop and start again on the same port and storage (a worker restart / code update). */
  restart(): Promise<void>;
}

/**
 * What every `wrangler dev` we start runs with. No metrics (no network here). And wrangler's local
 * observability off: since wrangler 4.16x it attaches a trace collector to the worker by default and
 * commits each invocation's trace to a SQLite Durable Object of its own (state/v3/observability),
 * an fsync'd write per request and per Durable Object call. Measured on loopback (160 requests of
 * each kind): GET /healthz 13.2–13.7 → 7.4–8.3 ms, a push to an offline agent 19.5–20.7 → 13.9–14.6 ms.
 * Deployed workers have no such store, so the numbers `npm run bench` reports are taken without it.
 * X_LOCAL_OBSERVABILITY=true in the environment turns it back on (wrangler's local explorer then
 * lists the traces).
 */
export function wranglerDevEnv(): NodeJS.ProcessEnv {
  return { X_LOCAL_OBSERVABILITY: "false", ...process.env, WRANGLER_SEND_METRICS: "false", PATH: `${BIN}:${process.env.PATH ?? ""}` };
}

export function wranglerEnv(): NodeJS.ProcessEnv {
  return { ...wranglerDevEnv(), CI: "true" };
}

async function launch(opts: Required<Pick<WorkerOptions, "persistTo">> & WorkerOptions, envFile: string, port: number) {
  const args = [
    "dev",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", "0",
    "--persist-to", opts.persistTo,
    "--env-file", envFile,
    "--show-interactive-dev-session=false",
    "--log-level", opts.logLevel ?? "info",
  ];
  for (const [k, v] of Object.entries(opts.vars ?? {})) args.push("--var", `${k}:${v}`);
  const proc = startProcess(join(BIN, "wrangler"), args, { cwd: REPO_ROOT, env: wranglerEnv(), label: "worker" });
  const m = await proc.waitForOutput(/Ready on http:\/\/127\.0\.0\.1:(\d+)/, 60_000);
  return { proc, port: Number(m[1]) };
}

export async function startWorker(options: WorkerOptions = {}): Promise<WorkerProcess> {
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-worker-"));
  const persistTo = options.persistTo ?? join(dir, "state");
  const envFile = join(dir, "secrets.env");
  const secrets = { ...TEST_SECRETS, ...options.secrets };
  writeFileSync(envFile, Object.entries(secrets).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n", { mode: 0o600 });
  let { proc, port } = await launch({ ...options, persistTo }, envFile, options.port ?? 0);
  const worker: WorkerProcess = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    persistTo,
    get process() {
      return proc;
    },
    async stop(signal = "SIGTERM") {
      await proc.stop(signal);
    },
    async restart() {
      await proc.stop("SIGTERM");
      ({ proc, port } = await launch({ ...options, persistTo }, envFile, port));
    },
  };
  return worker;
}
