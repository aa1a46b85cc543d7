/** `hookrelay-agent check`: every problem with a config and the host it runs on, and what it declares. */
import { statSync } from "node:fs";
import type { AgentConfig } from "./config.ts";
import { stateDirProblem } from "./state-dir.ts";
import { resolveToken } from "./token.ts";
import { formatDuration, formatSize } from "./units.ts";
import { describeBatch, type Rollout } from "../shared/rollout.ts";

export interface CheckReport {
  problems: string[];
  warnings: string[];
  summary: string[];
}

export function checkHost(config: AgentConfig, env: NodeJS.ProcessEnv): CheckReport {
  const problems: string[] = [];
  const warnings: string[] = [];
  const token = resolveToken(config, env);
  warnings.push(...token.warnings);
  if (!token.ok) problems.push(`${config.file}: ${token.problem}`);
  const stateProblem = stateDirProblem(config.stateDir);
  if (stateProblem) problems.push(`${config.file}: state_dir: ${stateProblem}`);
  for (const [i, p] of config.pipelines.entries()) {
    let isDir = false;
    try {
      isDir = statSync(p.workdir).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) problems.push(`${config.file}: pipelines[${i}].workdir: ${p.workdir} does not exist or is not a directory`);
  }
  const summary = [
    `server:    ${config.server}`,
    `target:    ${config.target}`,
    `agent:     ${config.name}`,
    `token:     ${token.ok ? token.source : "missing"}`,
    `state_dir: ${config.stateDir}`,
    `heartbeat ${formatDuration(config.heartbeatMs)}, kill_grace ${formatDuration(config.killGraceMs)}, log_cap ${formatSize(config.logCapBytes)}`,
    ...config.pipelines.flatMap((p) => [
      `pipeline ${p.name}: ${p.repo}, ${p.events.join(", ")} to ${p.branches.join(", ")}; workdir ${p.workdir}; timeout ${formatDuration(p.timeoutMs)}`,
      `  steps:      ${p.steps.map((s) => (s.timeoutMs === null ? s.name : `${s.name} (timeout ${formatDuration(s.timeoutMs)})`)).join(", ")}`,
      ...(p.onFailure.length > 0 ? [`  on_failure: ${p.onFailure.map((s) => s.name).join(", ")}`] : []),
      `  rollout:    ${describeRollout(p.rollout)}`,
    ]),
  ];
  return { problems, warnings, summary };
}

/** `batch 50%, halt on failure`, `batch 1 host, go on after a failure`: the rollout as the config says it. */
export function describeRollout(r: Rollout): string {
  return `batch ${describeBatch(r.batch)}, ${r.haltOnFailure ? "halt on failure" : "go on after a failure"}`;
}
