/**
 * The agent's config file (YAML) → a typed `AgentConfig`. This is an edge: every problem is
 * collected (not just the first) and named by file, key path and why, e.g.
 * `/etc/hookrelay/agent.yaml: pipelines[0].steps[2].run: expected a string, got nothing`.
 * Unknown keys are errors, so a typo never silently disables a setting.
 */
import { errorCode, errorMessage } from "../../shared/errors.ts";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseDocument } from "yaml";
import { branchFiltersProblem, globProblem } from "../../shared/glob.ts";
import {
  DEFAULT_GATE_TIMEOUT_MS, MAX_BRANCH_GLOBS_PER_PIPELINE, MAX_DECLARED_STEPS_PER_PIPELINE, MAX_GATE_NAMES_PER_LIST, MAX_GATE_TIMEOUT_MS,
  MAX_PATH_GLOBS_PER_PIPELINE, MAX_PIPELINE_TIMEOUT_MS, MAX_PIPELINES_PER_AGENT, MAX_TAG_GLOBS_PER_PIPELINE,
} from "../../shared/limits.ts";
import { NAME_HINT, NAME_PATTERN } from "../../shared/patterns.ts";
import { InvalidInput, Reader } from "../../shared/reader.ts";
import { ENVIRONMENT_HINT, ENVIRONMENT_PATTERN, ENVIRONMENT_URL_HINT, ENVIRONMENT_URL_PATTERN, GATE_NAME_HINT, GATE_NAME_PATTERN, type WaitForDecl } from "../../shared/protocol.ts";
import { batchProblem, DEFAULT_ROLLOUT, type Rollout } from "../../shared/rollout.ts";
import { textValueProblem } from "../../shared/text-value.ts";
import { formatDuration, parseDuration, parseSize } from "./units.ts";

export interface StepConfig {
  name: string;
  run: string;
  /** null: bounded only by the pipeline's timeout. */
  timeoutMs: number | null;
}

export interface PipelineConfig {
  name: string;
  repo: string;
  events: string[];
  branches: string[];
  workdir: string;
  env: Record<string, string>;
  timeoutMs: number;
  steps: StepConfig[];
  onFailure: StepConfig[];
  /** How a push rolls out across the agents declaring this pipeline (sent in hello; the worker runs it). */
  rollout: Rollout;
  /** GitHub's deployment environment (the worker's default: the target's name) and the URL GitHub links to. */
  environment: string | null;
  environmentUrl: string | null;
  /** GitHub's production_environment (null: GitHub's default, true only for an environment named production or prod) and transient_environment (null: false). */
  productionEnvironment: boolean | null;
  transientEnvironment: boolean | null;
  /** This pipeline's own `secrets:` (NAME → absolute file path), over the top-level ones. Values are read by secrets.ts. */
  secrets: Record<string, string>;
  /** Tag globs whose pushes deploy (without refs/tags/); [] (the default): no tag push deploys, and the agent refuses tag jobs. */
  tags: string[];
  /** GitHub Actions' path filters on a push's changed files (null: not set; never both set). */
  paths: string[] | null;
  pathsIgnore: string[] | null;
  /** What a deployment waits for before any host runs it (null: nothing, it is queued at once). */
  waitFor: WaitFor | null;
}

/** `wait_for:` as read (the hello's WaitForDecl). */
export type WaitFor = WaitForDecl;

export interface AgentConfig {
  /** Absolute path of the file this came from. */
  file: string;
  server: string;
  target: string;
  name: string;
  tokenFile: string | null;
  token: string | null;
  stateDir: string;
  heartbeatMs: number;
  killGraceMs: number;
  logCapBytes: number;
  /** `secrets:` for every pipeline: NAME → absolute path of the file holding the value. */
  secrets: Record<string, string>;
  pipelines: PipelineConfig[];
}

export type ConfigResult = { ok: true; config: AgentConfig } | { ok: false; problems: string[] };

export const DEFAULTS = {
  target: "default",
  heartbeatMs: 30_000,
  killGraceMs: 10_000,
  logCapBytes: 8 * 1024 * 1024,
  pipelineTimeoutMs: 30 * 60_000,
  events: ["push"],
} as const;

const SUPPORTED_EVENTS = ["push"];
const TOP_KEYS = ["server", "target", "name", "token_file", "token", "state_dir", "heartbeat", "kill_grace", "log_cap", "secrets", "pipelines"];
const PIPELINE_KEYS = [
  "name", "repo", "events", "branches", "tags", "paths", "paths_ignore", "wait_for", "workdir", "env", "timeout", "steps", "on_failure", "rollout",
  "environment", "environment_url", "production_environment", "transient_environment", "secrets",
];
const WAIT_FOR_KEYS = ["workflows", "checks", "approval", "timeout"];
const ROLLOUT_KEYS = ["batch", "halt_on_failure"];
const STEP_KEYS = ["name", "run", "timeout"];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ENV_NAME = 255;
/** An `env:` value: any text a process environment can hold (tabs and newlines too, e.g. a certificate), bounded. */
const ENV_VALUE_RULES = { maxBytes: 32 * 1024, multiline: true };
/** Per `secrets:` mapping; each is a pattern every output byte is checked against. */
const MAX_SECRETS = 100;

export function loadConfig(path: string): ConfigResult {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    return { ok: false, problems: [`${file}: cannot read: ${errorCode(e) ?? errorMessage(e)}`] };
  }
  return parseConfig(text, file);
}

/** `file` names the source in problems and anchors relative `token_file`/`state_dir` paths. */
export function parseConfig(text: string, file: string): ConfigResult {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const why = (e: Error) => (e.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
    return { ok: false, problems: doc.errors.map((e) => `${file}: line ${e.linePos?.[0]?.line ?? "?"}: ${why(e)}`) };
  }
  const problems: string[] = [];
  const config = readConfig(new Reader(doc.toJS()), file, problems);
  if (problems.length > 0 || config === undefined) return { ok: false, problems: problems.map((p) => `${file}: ${p}`) };
  return { ok: true, config };
}

/** Runs one read; an InvalidInput becomes a collected problem and `undefined`. */
function tryRead<T>(problems: string[], read: () => T): T | undefined {
  try {
    return read();
  } catch (e) {
    if (e instanceof InvalidInput) {
      problems.push(e.message);
      return undefined;
    }
    throw e;
  }
}

function checkKeys(r: Reader, allowed: readonly string[], problems: string[]): void {
  for (const key of r.keys()) {
    if (allowed.includes(key)) continue;
    const near = allowed.find((a) => editDistance(a, key) <= 2);
    const path = r.path ? `${r.path}.${key}` : key;
    problems.push(`${path}: unknown key${near ? ` (did you mean ${near}?)` : ""}; allowed: ${allowed.join(", ")}`);
  }
}

function duration(r: Reader): number {
  const v = r.value;
  const result = parseDuration(typeof v === "number" ? `${v}s` : r.string());
  if (typeof result !== "number") r.fail(result.error);
  return result;
}

/** The worker refuses a hello declaring longer (its running job's log escapes the storage budget until it ends). */
function pipelineTimeout(r: Reader): number {
  const ms = duration(r);
  if (ms > MAX_PIPELINE_TIMEOUT_MS) r.fail(`${formatDuration(ms)} is longer than a pipeline may run: at most ${formatDuration(MAX_PIPELINE_TIMEOUT_MS)} (the worker refuses a longer timeout)`);
  return ms;
}

function size(r: Reader): number {
  const v = r.value;
  const result = parseSize(typeof v === "number" ? String(v) : r.string());
  if (typeof result !== "number") r.fail(result.error);
  return result;
}

const name = (r: Reader) => r.string({ pattern: NAME_PATTERN, patternHint: NAME_HINT });

function readConfig(r: Reader, file: string, problems: string[]): AgentConfig | undefined {
  if (!r.isObject()) {
    problems.push(`expected a YAML mapping with server, state_dir and pipelines, got ${r.value === null || r.value === undefined ? "an empty file" : "something else"}`);
    return undefined;
  }
  checkKeys(r, TOP_KEYS, problems);
  const base = dirname(file);
  const opt = <T>(key: string, read: (f: Reader) => T, fallback: T): T | undefined =>
    r.has(key) ? tryRead(problems, () => read(r.field(key))) : fallback;

  const server = tryRead(problems, () => {
    const s = r.field("server").string({ max: 2000 });
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      return r.field("server").fail("not a URL");
    }
    if (url.protocol !== "ws:" && url.protocol !== "wss:") r.field("server").fail("must start with ws:// or wss://");
    if (url.search || url.hash) r.field("server").fail("must not have a query or fragment");
    return s.replace(/\/+$/, "");
  });
  const target = opt("target", name, DEFAULTS.target);
  const agentName = opt("name", name, defaultName());
  const tokenFile = opt("token_file", (f) => resolve(base, f.string()), null);
  const token = opt("token", (f) => f.string({ max: 4096 }).trim(), null);
  const stateDir = tryRead(problems, () => resolve(base, r.field("state_dir").string()));
  const heartbeatMs = opt("heartbeat", duration, DEFAULTS.heartbeatMs);
  const killGraceMs = opt("kill_grace", duration, DEFAULTS.killGraceMs);
  const logCapBytes = opt("log_cap", size, DEFAULTS.logCapBytes);
  if (logCapBytes !== undefined && logCapBytes < 1024) problems.push("log_cap: must be at least 1KiB");
  const secrets = r.has("secrets") ? tryRead(problems, () => readSecrets(r.field("secrets"), base, problems)) : {};

  const pipelines: PipelineConfig[] = [];
  const list = tryRead(problems, () => r.field("pipelines").array({ max: MAX_PIPELINES_PER_AGENT }));
  if (list !== undefined && list.length === 0) problems.push("pipelines: at least one pipeline is required");
  for (const p of list ?? []) {
    const pipeline = readPipeline(p, base, problems);
    if (pipeline) pipelines.push(pipeline);
  }
  const seen = new Set<string>();
  for (const [i, p] of pipelines.entries()) {
    if (seen.has(p.name)) problems.push(`pipelines[${i}].name: duplicate pipeline name ${JSON.stringify(p.name)}`);
    seen.add(p.name);
    for (const key of Object.keys(p.env)) {
      if (secrets && Object.hasOwn(secrets, key)) problems.push(`pipelines[${i}].env.${key}: also in secrets: a value is either a secret or not (remove it from env)`);
    }
  }
  if (
    server === undefined || target === undefined || agentName === undefined || tokenFile === undefined || token === undefined ||
    stateDir === undefined || heartbeatMs === undefined || killGraceMs === undefined || logCapBytes === undefined || secrets === undefined
  ) {
    return undefined;
  }
  return { file, server, target, name: agentName, tokenFile, token, stateDir, heartbeatMs, killGraceMs, logCapBytes, secrets, pipelines };
}

function defaultName(): string {
  const h = hostname().split(".")[0] ?? "";
  return NAME_PATTERN.test(h) ? h : "agent";
}

function readPipeline(r: Reader, base: string, problems: string[]): PipelineConfig | undefined {
  if (!r.isObject()) {
    problems.push(`${r.path}: expected a mapping with name, repo, branches, workdir and steps`);
    return undefined;
  }
  const before = problems.length;
  checkKeys(r, PIPELINE_KEYS, problems);
  const get = <T>(read: () => T) => tryRead(problems, read);
  const pname = get(() => name(r.field("name")));
  const repo = get(() => r.field("repo").string({ max: 200, pattern: /^[^/\s]+\/[^/\s]+$/, patternHint: "must be owner/name (the repository's full_name)" }));
  const events = r.has("events")
    ? get(() => {
        const list = r.field("events").array({ max: 50 }).map((e) => e.string());
        if (list.length === 0) r.field("events").fail("must list at least one event");
        for (const [i, e] of list.entries()) {
          if (!SUPPORTED_EVENTS.includes(e)) problems.push(`${r.path}.events[${i}]: unsupported event ${JSON.stringify(e)}: only push is supported for now`);
        }
        return list;
      })
    : [...DEFAULTS.events];
  const tagOnly = !r.has("branches") && r.has("tags");
  const branches = tagOnly ? [] : get(() => {
    if (!r.has("branches")) r.field("branches").fail("required for push: a list of branch globs, e.g. [main] (or leave it out and list tags to deploy tag pushes only)");
    const list = r.field("branches").array({ max: MAX_BRANCH_GLOBS_PER_PIPELINE }).map((b) => b.string({ max: 255 }));
    if (list.length === 0) r.field("branches").fail("must list at least one branch glob");
    for (const [i, b] of list.entries()) {
      const why = b.trim() === "" || /^!?refs\//.test(b) ? "must be a branch name or glob without refs/heads/, e.g. main or release/*" : globProblem(b);
      if (why !== null) problems.push(`${r.path}.branches[${i}]: ${why}`);
    }
    const listWhy = branchFiltersProblem(list);
    if (listWhy !== null) problems.push(`${r.path}.branches: ${listWhy}`);
    return list;
  });
  const tags = r.has("tags") ? get(() => readGlobList(r.field("tags"), MAX_TAG_GLOBS_PER_PIPELINE, tagGlobProblem, problems)) : [];
  const paths = r.has("paths") ? get(() => readGlobList(r.field("paths"), MAX_PATH_GLOBS_PER_PIPELINE, pathGlobProblem, problems)) : null;
  const pathsIgnore = r.has("paths_ignore") ? get(() => readGlobList(r.field("paths_ignore"), MAX_PATH_GLOBS_PER_PIPELINE, pathGlobProblem, problems)) : null;
  if (r.has("paths") && r.has("paths_ignore")) {
    problems.push(`${r.path}.paths_ignore: paths and paths_ignore together: GitHub Actions refuses both for one event, and so does hookrelay; use paths with ! patterns to leave files out (e.g. [app/**, "!app/**/*.md"])`);
  }
  const waitFor = r.has("wait_for") ? get(() => readWaitFor(r.field("wait_for"), problems)) : null;
  const workdir = get(() => {
    const w = r.field("workdir").string();
    if (!isAbsolute(w)) r.field("workdir").fail("must be an absolute path");
    return w;
  });
  const env = r.has("env")
    ? get(() => {
        const out: Record<string, string> = {};
        const e = r.field("env");
        for (const key of e.keys()) {
          const v = e.field(key);
          if (!ENV_NAME.test(key)) problems.push(`${v.path}: not a valid environment variable name`);
          else if (key.length > MAX_ENV_NAME) problems.push(`${v.path}: not a valid environment variable name (at most ${MAX_ENV_NAME} characters)`);
          else if (key.startsWith("HOOKRELAY_")) problems.push(`${v.path}: HOOKRELAY_* names are set by the agent`);
          else if (typeof v.value === "number" || typeof v.value === "boolean") out[key] = String(v.value);
          else {
            const value = v.string();
            const why = textValueProblem(value, ENV_VALUE_RULES);
            if (why) problems.push(`${v.path}: ${why}`);
            else out[key] = value;
          }
        }
        return out;
      })
    : {};
  const timeoutMs = r.has("timeout") ? get(() => pipelineTimeout(r.field("timeout"))) : DEFAULTS.pipelineTimeoutMs;
  const steps = get(() => {
    const list = r.field("steps").array({ max: 200 });
    if (list.length === 0) r.field("steps").fail("at least one step is required");
    return list;
  })?.map((s) => readStep(s, problems));
  const rollout = r.has("rollout") ? get(() => readRollout(r.field("rollout"), problems)) : { ...DEFAULT_ROLLOUT };
  const environment = r.has("environment") ? get(() => r.field("environment").string({ pattern: ENVIRONMENT_PATTERN, patternHint: ENVIRONMENT_HINT })) : null;
  const environmentUrl = r.has("environment_url")
    ? get(() => r.field("environment_url").string({ pattern: ENVIRONMENT_URL_PATTERN, patternHint: ENVIRONMENT_URL_HINT }))
    : null;
  const productionEnvironment = r.has("production_environment") ? get(() => r.field("production_environment").boolean()) : null;
  const transientEnvironment = r.has("transient_environment") ? get(() => r.field("transient_environment").boolean()) : null;
  const secrets = r.has("secrets") ? get(() => readSecrets(r.field("secrets"), base, problems)) : {};
  for (const key of Object.keys(env ?? {})) {
    if (secrets && Object.hasOwn(secrets, key)) problems.push(`${r.path}.env.${key}: also in secrets: a value is either a secret or not (remove it from env)`);
  }
  const onFailure = r.has("on_failure") ? get(() => r.field("on_failure").array({ max: 200 }))?.map((s) => readStep(s, problems)) : [];
  const allSteps = [...(steps ?? []), ...(onFailure ?? [])];
  if (allSteps.length > MAX_DECLARED_STEPS_PER_PIPELINE) {
    problems.push(`${r.path}: ${allSteps.length} steps (steps and on_failure together): at most ${MAX_DECLARED_STEPS_PER_PIPELINE}`);
  }
  const names = new Set<string>();
  for (const [i, s] of allSteps.entries()) {
    if (!s) continue;
    const where = i < (steps?.length ?? 0) ? `steps[${i}]` : `on_failure[${i - (steps?.length ?? 0)}]`;
    if (names.has(s.name)) problems.push(`${r.path}.${where}.name: duplicate step name ${JSON.stringify(s.name)} (names are unique across steps and on_failure)`);
    names.add(s.name);
  }
  if (problems.length > before) return undefined;
  return {
    name: pname!, repo: repo!, events: events!, branches: branches!, workdir: workdir!, env: env!, timeoutMs: timeoutMs!,
    steps: steps as StepConfig[], onFailure: (onFailure ?? []) as StepConfig[], rollout: rollout!,
    environment: environment ?? null, environmentUrl: environmentUrl ?? null,
    productionEnvironment: productionEnvironment ?? null, transientEnvironment: transientEnvironment ?? null, secrets: secrets!,
    tags: tags!, paths: paths ?? null, pathsIgnore: pathsIgnore ?? null, waitFor: waitFor ?? null,
  };
}

/**
 * `tags`, `paths`, `paths_ignore`: a non-empty list of GitHub filter globs (shared/glob.ts), each named
 * by its index when it is not one, with at least one positive pattern.
 */
function readGlobList(r: Reader, max: number, entryProblem: (glob: string) => string | null, problems: string[]): string[] {
  const list = r.array({ max }).map((g) => g.string({ max: 255 }));
  if (list.length === 0) r.fail("must list at least one glob (leave the key out for none)");
  for (const [i, g] of list.entries()) {
    const why = entryProblem(g);
    if (why !== null) problems.push(`${r.path}[${i}]: ${why}`);
  }
  const listWhy = branchFiltersProblem(list);
  if (listWhy !== null) problems.push(`${r.path}: ${listWhy}`);
  return list;
}

function tagGlobProblem(g: string): string | null {
  if (g.trim() === "" || /^!?refs\//.test(g)) return "must be a tag name or glob without refs/tags/, e.g. v* or v[0-9]+.[0-9]+.[0-9]+";
  return globProblem(g);
}

function pathGlobProblem(g: string): string | null {
  if (g.trim() === "") return "must be a path or glob from the repository's root, e.g. app/** or requirements.txt";
  if (/^!?(\/|\.\/)/.test(g)) return "paths are relative to the repository's root: write app/**, not /app/** or ./app/**";
  return globProblem(g);
}

/** `wait_for: { workflows: [CI], checks: [lint], approval: true, timeout: 2h }`: every key optional, but it must wait for something. */
function readWaitFor(r: Reader, problems: string[]): WaitFor | undefined {
  if (!r.isObject()) r.fail("expected a mapping like { workflows: [CI], checks: [lint], approval: true, timeout: 2h }");
  checkKeys(r, WAIT_FOR_KEYS, problems);
  const names = (key: "workflows" | "checks"): string[] | undefined => {
    if (!r.has(key)) return [];
    return tryRead(problems, () => {
      const f = r.field(key);
      const list = f.array({ max: MAX_GATE_NAMES_PER_LIST }).map((n) => n.string({ pattern: GATE_NAME_PATTERN, patternHint: GATE_NAME_HINT }));
      const seen = new Set<string>();
      for (const [i, n] of list.entries()) {
        if (seen.has(n)) problems.push(`${f.path}[${i}]: ${JSON.stringify(n)} is listed twice`);
        seen.add(n);
      }
      return list;
    });
  };
  const workflows = names("workflows");
  const checks = names("checks");
  const approval = r.has("approval") ? tryRead(problems, () => r.field("approval").boolean()) : false;
  const timeoutMs = r.has("timeout")
    ? tryRead(problems, () => {
        const ms = duration(r.field("timeout"));
        if (ms > MAX_GATE_TIMEOUT_MS) r.field("timeout").fail(`${formatDuration(ms)} is longer than a deployment may wait: at most ${formatDuration(MAX_GATE_TIMEOUT_MS)}`);
        return ms;
      })
    : DEFAULT_GATE_TIMEOUT_MS;
  if (workflows === undefined || checks === undefined || approval === undefined || timeoutMs === undefined) return undefined;
  if (workflows.length === 0 && checks.length === 0 && !approval) {
    r.fail("waits for nothing: name workflows (GitHub Actions workflow names), checks (check run names) or set approval: true; or leave wait_for out");
  }
  return { workflows, checks, approval, timeoutMs };
}

/**
 * `secrets: { NAME: /path/to/file }`: names as in env (not HOOKRELAY_*), paths relative to the config's
 * directory. The files are read (and their modes checked) by secrets.ts, at start and on reload.
 */
function readSecrets(r: Reader, base: string, problems: string[]): Record<string, string> {
  if (!r.isObject()) r.fail("expected a mapping of environment variable names to files, e.g. { DATABASE_URL: /etc/hookrelay/secrets/database_url }");
  const out: Record<string, string> = {};
  const keys = r.keys();
  if (keys.length > MAX_SECRETS) r.fail(`${keys.length} secrets: at most ${MAX_SECRETS}`);
  for (const key of keys) {
    const v = r.field(key);
    if (!ENV_NAME.test(key) || key.length > MAX_ENV_NAME) problems.push(`${v.path}: not a valid environment variable name`);
    else if (key.startsWith("HOOKRELAY_")) problems.push(`${v.path}: HOOKRELAY_* names are set by the agent`);
    else {
      const path = tryRead(problems, () => v.string({ max: 4096 }));
      if (path === undefined) continue;
      if (path.trim() === "") problems.push(`${v.path}: expected the path of a file holding the value (the value itself never goes in the config)`);
      else out[key] = resolve(base, path);
    }
  }
  return out;
}

/** `rollout: { batch: 1 | "N%", halt_on_failure: true }`, both optional. */
function readRollout(r: Reader, problems: string[]): Rollout | undefined {
  if (!r.isObject()) r.fail('expected a mapping like { batch: 1, halt_on_failure: true } (or "50%" as the batch)');
  checkKeys(r, ROLLOUT_KEYS, problems);
  const batch = r.has("batch")
    ? tryRead(problems, () => {
        const b = r.field("batch");
        const why = batchProblem(b.value);
        if (why !== null) b.fail(why);
        return b.value as Rollout["batch"];
      })
    : DEFAULT_ROLLOUT.batch;
  const haltOnFailure = r.has("halt_on_failure") ? tryRead(problems, () => r.field("halt_on_failure").boolean()) : DEFAULT_ROLLOUT.haltOnFailure;
  if (batch === undefined || haltOnFailure === undefined) return undefined;
  return { batch, haltOnFailure };
}

function readStep(r: Reader, problems: string[]): StepConfig | undefined {
  if (!r.isObject()) {
    problems.push(`${r.path}: expected a mapping like { name: build, run: make }`);
    return undefined;
  }
  checkKeys(r, STEP_KEYS, problems);
  const sname = tryRead(problems, () => name(r.field("name")));
  const run = tryRead(problems, () => {
    const s = r.field("run").string();
    if (s.trim() === "") r.field("run").fail("must not be empty");
    if (s.includes("\u0000")) r.field("run").fail("contains a NUL character (U+0000), which no command line can hold");
    return s;
  });
  const timeoutMs = r.has("timeout") ? tryRead(problems, () => duration(r.field("timeout"))) : null;
  if (sname === undefined || run === undefined || timeoutMs === undefined) return undefined;
  return { name: sname, run, timeoutMs };
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}
