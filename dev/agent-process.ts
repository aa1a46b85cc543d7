/** The real agent process (`node agent/commands/cli.ts run`), with a config written to a temp dir. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { agentToken } from "./api.ts";
import { startProcess, type RunningProcess } from "./process.ts";
import { REPO_ROOT } from "./worker-process.ts";

export interface AgentOptions {
  server: string;
  target?: string;
  name?: string;
  pipelines: unknown[];
  /** Extra top-level config keys (heartbeat, kill_grace, log_cap…). */
  extra?: Record<string, unknown>;
  stateDir?: string;
  /** Default: the agent's own token, registered through the admin API (dev/api.ts agentToken). */
  token?: string;
  env?: Record<string, string>;
  /** Run the built bundle (dist/hookrelay-agent.mjs, `npm run build`) instead of the source. */
  bundle?: boolean;
  /** Run this command instead (e.g. [a Node 18 binary, the bundle], or [the single executable]). */
  command?: string[];
}

export interface AgentProcess {
  process: RunningProcess;
  configPath: string;
  stateDir: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start a new agent process with the same config and state_dir. */
  restart(signal?: NodeJS.Signals): Promise<void>;
}

function withoutAgentToken(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.HOOKRELAY_AGENT_TOKEN;
  return copy;
}

export function writeAgentConfig(o: AgentOptions): { configPath: string; stateDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-agent-"));
  const stateDir = o.stateDir ?? join(dir, "state");
  const configPath = join(dir, "agent.yml");
  const config = { server: o.server.replace(/^http/, "ws"), target: o.target ?? "default", name: o.name ?? "web-1", state_dir: stateDir, ...o.extra, pipelines: o.pipelines };
  writeFileSync(configPath, stringify(config));
  return { configPath, stateDir };
}

export async function startAgent(o: AgentOptions): Promise<AgentProcess> {
  const { configPath, stateDir } = writeAgentConfig(o);
  const name = o.name ?? "web-1";
  const token = o.token ?? (await agentToken(o.server, o.target ?? "default", name));
  return startAgentWithConfig(configPath, stateDir, { label: `agent ${name}`, bundle: o.bundle, command: o.command, env: { HOOKRELAY_AGENT_TOKEN: token, ...o.env } });
}

/** Run the agent on a config file written elsewhere (e.g. agent/examples/flask.yml with test paths). */
export function startAgentWithConfig(configPath: string, stateDir: string, opts: { label?: string; env?: Record<string, string>; bundle?: boolean; command?: string[] } = {}): AgentProcess {
  const entry = join(REPO_ROOT, opts.bundle ? "dist/hookrelay-agent.mjs" : "agent/commands/cli.ts");
  const [command, ...args] = opts.command ?? [process.execPath, entry];
  const launch = () =>
    startProcess(command!, [...args, "run", "--config", configPath], {
      cwd: REPO_ROOT,
      env: { ...withoutAgentToken(process.env), ...opts.env },
      label: opts.label ?? "agent",
    });
  let proc = launch();
  return {
    get process() {
      return proc;
    },
    configPath,
    stateDir,
    async stop(signal = "SIGTERM") {
      await proc.stop(signal);
    },
    async restart(signal = "SIGTERM") {
      await proc.stop(signal);
      proc = launch();
    },
  };
}
