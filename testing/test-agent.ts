/** For tests: an in-process agent with a temp config, state_dir and workdir, talking to a FakeWorker. */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { JobServer } from "../agent/runtime/job-server.ts";
import type { BackoffOptions } from "../agent/runtime/backoff.ts";
import { type AgentConfig, parseConfig } from "../agent/common/config.ts";
import { memoryLogger } from "../agent/common/logger.ts";

export const TEST_TOKEN = "test-agent-token-123";
export const FAST_BACKOFF: BackoffOptions = { initialMs: 20, maxMs: 100, longMs: 60_000 };

export interface TestAgentOptions {
  server: string;
  steps?: { name: string; run: string; timeout?: string }[];
  onFailure?: { name: string; run: string; timeout?: string }[];
  pipeline?: Record<string, unknown>;
  extra?: Record<string, unknown>;
  dir?: string;
  env?: NodeJS.ProcessEnv;
  backoff?: BackoffOptions;
  /** Changes the parsed config object before the agent starts: values no config file can hold (e.g. a NUL). */
  adjust?: (config: AgentConfig) => void;
}

export interface TestAgent {
  agent: JobServer;
  config: AgentConfig;
  lines: string[];
  dir: string;
  workdir: string;
  stop(): Promise<void>;
}

export function testDir(prefix = "hookrelay-agent-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeTestConfig(o: TestAgentOptions): { config: AgentConfig; dir: string; workdir: string; file: string } {
  const dir = o.dir ?? testDir();
  const workdir = join(dir, "work");
  mkdirSync(workdir, { recursive: true });
  const doc = {
    server: o.server,
    name: "web-1",
    state_dir: join(dir, "state"),
    heartbeat: "200ms",
    kill_grace: "300ms",
    ...o.extra,
    pipelines: [
      {
        name: "app",
        repo: "owner/app",
        branches: ["main", "x*"],
        workdir,
        steps: o.steps ?? [{ name: "hello", run: "echo hello" }],
        ...(o.onFailure ? { on_failure: o.onFailure } : {}),
        ...o.pipeline,
      },
    ],
  };
  const file = join(dir, "agent.yml");
  writeFileSync(file, stringify(doc));
  const parsed = parseConfig(stringify(doc), file);
  if (!parsed.ok) throw new Error(`test config invalid:\n${parsed.problems.join("\n")}`);
  return { config: parsed.config, dir, workdir, file };
}

export async function startTestAgent(o: TestAgentOptions): Promise<TestAgent> {
  const { config, dir, workdir } = writeTestConfig(o);
  o.adjust?.(config);
  const log = memoryLogger();
  const agent = await JobServer.start({
    config,
    token: TEST_TOKEN,
    log,
    env: { ...process.env, HOOKRELAY_AGENT_TOKEN: TEST_TOKEN, ...o.env },
    backoff: o.backoff ?? FAST_BACKOFF,
    healthyMs: 60_000,
  });
  return { agent, config, lines: log.lines, dir, workdir, stop: () => agent.stop() };
}
