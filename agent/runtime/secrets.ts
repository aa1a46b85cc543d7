/**
 * Secrets on the host: `secrets: { NAME: /path/to/file }` (top level for every pipeline; a pipeline's
 * own over them). Each file is read at start and on reload (SIGHUP); a file group or others may read
 * or write is refused, as are empty, too short, binary or oversized values — `check` and `run` say
 * which file and why, never the value. Under systemd, `LoadCredential=NAME:/path` (or
 * `PIPELINE.NAME:/path` for a pipeline's own) puts the file in the unit's private credentials
 * directory, where the agent looks first, so the file itself can stay root's alone. A value reaches
 * steps only as env NAME, and every value the agent holds is masked in every job's output.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { errorCode, errorMessage } from "../../shared/errors.ts";
import type { AgentConfig } from "../common/config.ts";
import { Masker, MIN_SECRET_LENGTH } from "./mask.ts";

/** As an `env:` value: a certificate fits, a file that is not a secret value (a tarball) does not. */
export const MAX_SECRET_BYTES = 32 * 1024;

export interface SecretSource {
  name: string;
  path: string;
  /** Its systemd credential ID: NAME, or PIPELINE.NAME for a pipeline's own. */
  credential: string;
  /** The config key that declares it, for messages: `secrets.NAME` or `pipelines[0].secrets.NAME`. */
  key: string;
  /** null: top level, for every pipeline. */
  pipeline: string | null;
}

export interface LoadedSecrets {
  /** Per pipeline: NAME → value, the pipeline's own over the top-level ones. */
  readonly env: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** Every value the agent holds, masked in every job's output (a step may read another pipeline's file too). */
  readonly masker: Masker | null;
  /** Per secret: `NAME from …` (never the value). */
  readonly described: readonly string[];
}

export const NO_SECRETS: LoadedSecrets = { env: new Map(), masker: null, described: [] };

export type SecretsResult = { ok: true; secrets: LoadedSecrets; warnings: string[] } | { ok: false; problems: string[]; warnings: string[] };

export function secretSources(config: AgentConfig): SecretSource[] {
  const top = Object.entries(config.secrets).map(([name, path]) => ({ name, path, credential: name, key: `secrets.${name}`, pipeline: null }));
  const own = config.pipelines.flatMap((p, i) =>
    Object.entries(p.secrets).map(([name, path]) => ({ name, path, credential: `${p.name}.${name}`, key: `pipelines[${i}].secrets.${name}`, pipeline: p.name })),
  );
  return [...top, ...own];
}

/** The unit's `LoadCredential=ID:PATH` for each secret file (the agent reads `$CREDENTIALS_DIRECTORY/ID` first). */
export function secretCredentials(config: AgentConfig): { id: string; path: string; comment: string }[] {
  return secretSources(config).map((s) => ({ id: s.credential, path: s.path, comment: `secret ${s.name}${s.pipeline === null ? "" : ` of pipeline ${s.pipeline}`}` }));
}

/** Reads every secret file; any problem refuses them all (a deploy must not run with half its secrets). */
export function loadSecrets(config: AgentConfig, env: NodeJS.ProcessEnv): SecretsResult {
  const problems: string[] = [];
  const warnings: string[] = [];
  const values = new Map<SecretSource, string>();
  const described: string[] = [];
  for (const source of secretSources(config)) {
    const read = readSecret(source, env.CREDENTIALS_DIRECTORY);
    if (!read.ok) {
      problems.push(`${config.file}: ${source.key}: ${read.problem}`);
      continue;
    }
    warnings.push(...read.warnings.map((w) => `${config.file}: ${source.key}: ${w}`));
    values.set(source, read.value);
    described.push(`${source.pipeline === null ? "" : `${source.pipeline}: `}${source.name} from ${read.from}`);
  }
  if (problems.length > 0) return { ok: false, problems, warnings };
  const top: Record<string, string> = {};
  for (const [s, v] of values) if (s.pipeline === null) top[s.name] = v;
  const byPipeline = new Map<string, Record<string, string>>();
  for (const p of config.pipelines) {
    const own: Record<string, string> = { ...top };
    for (const [s, v] of values) if (s.pipeline === p.name) own[s.name] = v;
    byPipeline.set(p.name, own);
  }
  return { ok: true, secrets: { env: byPipeline, masker: Masker.forValues(values.values()), described }, warnings };
}

type Read = { ok: true; value: string; from: string; warnings: string[] } | { ok: false; problem: string };

function readSecret(source: SecretSource, credentialsDir: string | undefined): Read {
  if (credentialsDir) {
    // systemd's credentials directory is the unit's own (not readable by other users): no mode check.
    const path = join(credentialsDir, source.credential);
    const read = readFile(path, false);
    if (read.ok) return withSource(checkValue(read.text, path), `systemd credential ${path}`);
    if (read.code !== "ENOENT") return { ok: false, problem: `systemd credential ${path}: ${read.problem}` };
  }
  const read = readFile(source.path, true);
  if (!read.ok) return { ok: false, problem: `${source.path}: ${read.problem}` };
  return withSource(checkValue(read.text, source.path), `file ${source.path}`);
}

function withSource(checked: ReturnType<typeof checkValue>, from: string): Read {
  return checked.ok ? { ...checked, from } : checked;
}

type FileRead = { ok: true; text: string } | { ok: false; problem: string; code?: string };

/** Opened once and checked through the open descriptor, so the file checked is the file read. */
function readFile(path: string, checkMode: boolean): FileRead {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = errorCode(e);
    if (code === "ELOOP") return { ok: false, problem: "is a symbolic link: name the file itself", code };
    return { ok: false, problem: `cannot read: ${code ?? errorMessage(e)}${code === "EACCES" ? " (the agent's user must own it; or load it with systemd's LoadCredential=)" : ""}`, code };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, problem: "is not a regular file" };
    const mode = st.mode & 0o777;
    if (checkMode && (mode & 0o077) !== 0) {
      return { ok: false, problem: `group or others have access to it (mode ${mode.toString(8).padStart(4, "0")}): run chmod 600 ${path}` };
    }
    if (st.size > MAX_SECRET_BYTES) return { ok: false, problem: `is ${st.size} bytes: a secret value is at most ${MAX_SECRET_BYTES}` };
    const buf = Buffer.alloc(MAX_SECRET_BYTES + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    if (n > MAX_SECRET_BYTES) return { ok: false, problem: `is more than ${MAX_SECRET_BYTES} bytes: a secret value is at most that` };
    try {
      return { ok: true, text: new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(0, n)) };
    } catch {
      return { ok: false, problem: "is not UTF-8 text: an environment value must be text (base64 it, and decode it in the step)" };
    }
  } catch (e) {
    return { ok: false, problem: `cannot read: ${errorCode(e) ?? errorMessage(e)}` };
  } finally {
    closeSync(fd);
  }
}

/** The value is the file's text without its final line break(s). Never quoted in a problem. */
function checkValue(text: string, path: string): { ok: true; value: string; warnings: string[] } | { ok: false; problem: string } {
  const value = text.replace(/[\r\n]+$/, "");
  if (value.includes("\u0000")) return { ok: false, problem: `${path} contains a NUL character (U+0000), which no process environment can hold` };
  const length = [...value].length;
  if (value.trim() === "") return { ok: false, problem: `${path} is empty` };
  if (length < MIN_SECRET_LENGTH) {
    return { ok: false, problem: `${path} holds ${length} character(s): a secret must be at least ${MIN_SECRET_LENGTH} (masking shorter values would shred the log)` };
  }
  const warnings: string[] = [];
  const lines = value.split(/\r?\n/);
  if (lines.length > 1) {
    const short = lines.flatMap((l, i) => (l !== "" && [...l].length < MIN_SECRET_LENGTH ? [i + 1] : []));
    if (short.length > 0) warnings.push(`line(s) ${short.join(", ")} of ${path} are shorter than ${MIN_SECRET_LENGTH} characters: a multi-line value is masked line by line, and those lines are not masked`);
  }
  return { ok: true, value, warnings };
}
