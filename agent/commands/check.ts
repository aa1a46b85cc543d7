/** `hookrelay-agent check`: every problem with a config and the host it runs on, and what it declares. */
import { statSync } from "node:fs";
import type { AgentConfig, PipelineConfig } from "../common/config.ts";
import { stateDirProblem } from "../runtime/state-dir.ts";
import { resolveToken } from "../common/token.ts";
import { formatDuration, formatSize } from "../common/units.ts";
import { describeBatch, type Rollout } from "../../shared/rollout.ts";
import { isProductionEnvironmentName } from "../../shared/environment.ts";
import { loadSecrets } from "../runtime/secrets.ts";

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
  const secrets = loadSecrets(config, env);
  warnings.push(...secrets.warnings);
  if (!secrets.ok) problems.push(...secrets.problems);
  for (const [i, p] of config.pipelines.entries()) {
    for (const [key, value] of Object.entries(p.env)) {
      const why = secretLooking(key, value);
      if (why) warnings.push(`${config.file}: pipelines[${i}].env.${key}: ${why}; env values are stored in the config and not masked in logs: put it in a file (chmod 600) and name it under secrets:`);
    }
    let isDir = false;
    try {
      isDir = statSync(p.workdir).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) problems.push(`${config.file}: pipelines[${i}].workdir: ${p.workdir} does not exist or is not a directory`);
    if (p.waitFor !== null && (p.waitFor.workflows.length > 0 || p.waitFor.checks.length > 0)) {
      const events = [...(p.waitFor.workflows.length > 0 ? ["workflow_run"] : []), ...(p.waitFor.checks.length > 0 ? ["check_run"] : [])].join(" and ");
      warnings.push(`${config.file}: pipelines[${i}].wait_for: the repository's GitHub webhook must send ${events} events (besides push), or every deployment waits until its timeout and ends blocked`);
    }
  }
  const summary = [
    `server:    ${config.server}`,
    `target:    ${config.target}`,
    `agent:     ${config.name}`,
    `token:     ${token.ok ? token.source : "missing"}`,
    `state_dir: ${config.stateDir}`,
    ...(secrets.ok && secrets.secrets.described.length > 0 ? [`secrets:   ${secrets.secrets.described.join("; ")} (masked in every job's output)`] : []),
    `heartbeat ${formatDuration(config.heartbeatMs)}, kill_grace ${formatDuration(config.killGraceMs)}, log_cap ${formatSize(config.logCapBytes)}`,
    ...config.pipelines.flatMap((p) => [
      `pipeline ${p.name}: ${p.repo}, ${p.events.join(", ")} to ${p.branches.length > 0 ? p.branches.join(", ") : "no branch (tags only)"}; workdir ${p.workdir}; timeout ${formatDuration(p.timeoutMs)}`,
      ...describeGates(p),
      `  steps:      ${p.steps.map((s) => (s.timeoutMs === null ? s.name : `${s.name} (timeout ${formatDuration(s.timeoutMs)})`)).join(", ")}`,
      ...(p.onFailure.length > 0 ? [`  on_failure: ${p.onFailure.map((s) => s.name).join(", ")}`] : []),
      `  rollout:    ${describeRollout(p.rollout)}`,
      `  GitHub:     environment ${p.environment ?? `${config.target} (the target's name)`}${p.environmentUrl !== null ? `, ${p.environmentUrl}` : ""}; ${describeEnvironmentKind(p, config.target)}`,
    ]),
  ];
  return { problems, warnings, summary };
}

/**
 * The pipeline's gates as `check` prints them, one line each, only those it sets:
 * `  tags:       v* (HOOKRELAY_TAG is the tag, HOOKRELAY_BRANCH empty)`,
 * `  paths:      app/** (deploys only when a pushed commit changed one of these)`,
 * `  wait_for:   workflows "CI"; checks "lint"; approval; at most 2h, then blocked`.
 */
export function describeGates(p: PipelineConfig): string[] {
  const lines: string[] = [];
  if (p.tags.length > 0) lines.push(`  tags:       ${p.tags.join(", ")} (HOOKRELAY_TAG is the tag, HOOKRELAY_BRANCH empty)`);
  if (p.paths !== null) lines.push(`  paths:      ${p.paths.join(", ")} (deploys only when a pushed commit changed one of these)`);
  if (p.pathsIgnore !== null) lines.push(`  paths_ignore: ${p.pathsIgnore.join(", ")} (deploys only when a pushed commit changed a file outside these)`);
  if (p.waitFor !== null) {
    const w = p.waitFor;
    const names = (list: string[]) => list.map((n) => JSON.stringify(n)).join(", ");
    const parts = [
      ...(w.workflows.length > 0 ? [`workflows ${names(w.workflows)}`] : []),
      ...(w.checks.length > 0 ? [`checks ${names(w.checks)}`] : []),
      ...(w.approval ? ["approval"] : []),
    ];
    lines.push(`  wait_for:   ${parts.join("; ")}; at most ${formatDuration(w.timeoutMs)}, then blocked`);
  }
  return lines;
}

/** `production (the default for its name), not transient`: what GitHub is told of the environment. */
export function describeEnvironmentKind(p: PipelineConfig, target: string): string {
  const production = p.productionEnvironment ?? isProductionEnvironmentName(p.environment ?? target);
  const why = p.productionEnvironment === null ? " (the default for its name)" : "";
  return `${production ? "production" : "not production"}${why}, ${p.transientEnvironment === true ? "transient" : "not transient"}`;
}

/** `batch 50%, halt on failure`, `batch 1 host, go on after a failure`: the rollout as the config says it. */
export function describeRollout(r: Rollout): string {
  return `batch ${describeBatch(r.batch)}, ${r.haltOnFailure ? "halt on failure" : "go on after a failure"}`;
}

const SECRET_NAME = /PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL/i;
const URL_PASSWORD = /[a-z][a-z0-9+.-]*:\/\/[^\s/@:]+:[^\s/@]+@/i;
const ASSIGNMENT = /(?:^|[^a-z])(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\s*[=:]\s*\S/i;
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
/** A run of token characters (base64, base64url, hex…) long enough to be a key. */
const TOKEN_RUN = /[A-Za-z0-9+/=_.~-]{20,}/g;

/**
 * Why an `env:` value looks like a secret, or null: a URL with a password, `password=…`, a private
 * key, a long high-entropy token, or a name like *_PASSWORD / *_TOKEN with a value. A hint only.
 */
export function secretLooking(name: string, value: string): string | null {
  if (URL_PASSWORD.test(value)) return "the value looks like a URL with a password in it (://user:pass@)";
  if (PRIVATE_KEY.test(value)) return "the value looks like a private key";
  if (ASSIGNMENT.test(value)) return "the value looks like it holds a password or key (password=…)";
  for (const run of value.match(TOKEN_RUN) ?? []) {
    if (run.startsWith("/") || run.includes("/.") || !/[0-9]/.test(run) || !/[A-Za-z]/.test(run)) continue;
    if (entropyBits(run) >= 3.5) return "the value looks like a key or token (a long high-entropy string)";
  }
  if (value.trim() !== "" && SECRET_NAME.test(name)) return "the name says it holds a secret";
  return null;
}

/** Shannon entropy per character. */
function entropyBits(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= (n / s.length) * Math.log2(n / s.length);
  return bits;
}
