// A real Flask site to deploy to: bare git origin, live checkout, venv, SQLite,
// gunicorn on a free loopback port. Built from examples/flask-app so the tests
// deploy the same app and run the same agent/examples/flask.yml a user copies.
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../dev/free-port.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const EXAMPLE_APP = join(ROOT, "examples", "flask-app");
export const EXAMPLE_PIPELINE = join(ROOT, "agent", "examples", "flask.yml");
/** Debian's interpreter: the Flask stack from apt belongs to it, not to whatever `python3` is on PATH. */
export const SYSTEM_PYTHON = "/usr/bin/python3";
export const BRANCH = "main";
export const REPO = "owner/flask-app";

// The paths flask.yml is written with, and what pipelineYaml() puts in their place.
const YML_VENV = "/srv/flask-app/venv";
const YML_LIVE = "/srv/flask-app";
const YML_PIDFILE = "/run/gunicorn/flask-app.pid";
const YML_URL = "http://127.0.0.1:8000";

const GIT_IDENTITY = ["-c", "user.name=hookrelay test", "-c", "user.email=test@hookrelay.invalid", "-c", "commit.gpgsign=false"];

/** The alembic revision of the example's committed initial migration. */
export const INITIAL_REVISION: string = readInitialRevision();

function readInitialRevision(): string {
  const dir = join(EXAMPLE_APP, "migrations", "versions");
  for (const file of readdirSync(dir)) {
    if (!file.endsWith(".py")) continue;
    const src = readFileSync(join(dir, file), "utf8");
    if (/^down_revision = None$/m.test(src)) {
      const m = /^revision = '([^']+)'$/m.exec(src);
      if (m?.[1]) return m[1];
    }
  }
  throw new Error(`flask-site: no initial migration in ${dir}`);
}

/** Why a Flask site cannot be built here, or null when it can. Tests skip with this reason. */
export function flaskSiteUnavailable(): string | null {
  const py = spawnSync(SYSTEM_PYTHON, ["-c", "import flask, flask_restful, flask_migrate, flask_sqlalchemy, gunicorn, ensurepip"], {
    encoding: "utf8",
    timeout: 20_000,
  });
  if (py.error) return `${SYSTEM_PYTHON} not runnable (${py.error.message}); install the packages in .ci/apt-packages.txt`;
  if (py.status !== 0) {
    const last = py.stderr.trim().split("\n").pop() ?? "";
    return `Debian's Flask stack is missing (${last}); apt-get install -y $(cat .ci/apt-packages.txt)`;
  }
  const git = spawnSync("git", ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (git.error || git.status !== 0) return "git is not installed";
  return null;
}

export type Migration = "none" | "add column" | "raise";

/** The column a release's "add column" migration adds to the `note` table. */
export function columnAddedIn(release: number): string {
  return `added_in_v${release}`;
}

/** The alembic revision id versionFiles() gives release n's migration. */
export function releaseRevision(release: number): string {
  return release <= 1 ? INITIAL_REVISION : `release_${release}`;
}

/**
 * The files that turn the example into release n: VERSION becomes "n.0.0" and, on request, a
 * migration that adds column `added_in_v<n>` to `note` or one that raises. The migration follows
 * release n-1's (pass `parent` when n-1 had none). Give the result to commit().
 */
export function versionFiles(release: number, opts: { migration?: Migration; parent?: string } = {}): Record<string, string> {
  if (!Number.isInteger(release) || release < 2) throw new TypeError(`flask-site: release must be an integer ≥ 2, got ${release}`);
  const files: Record<string, string> = { VERSION: `${release}.0.0\n` };
  const migration = opts.migration ?? "none";
  if (migration === "none") return files;
  const parent = opts.parent ?? releaseRevision(release - 1);
  const body =
    migration === "add column"
      ? [
          `    with op.batch_alter_table('note') as batch_op:`,
          `        batch_op.add_column(sa.Column('${columnAddedIn(release)}', sa.String(length=100), nullable=True))`,
        ]
      : [`    raise RuntimeError("release ${release}'s migration fails on purpose")`];
  const down =
    migration === "add column"
      ? [`    with op.batch_alter_table('note') as batch_op:`, `        batch_op.drop_column('${columnAddedIn(release)}')`]
      : [`    pass`];
  files[`migrations/versions/${releaseRevision(release)}.py`] = [
    `"""release ${release}: ${migration}`,
    ``,
    `Revision ID: ${releaseRevision(release)}`,
    `Revises: ${parent}`,
    `"""`,
    `from alembic import op`,
    `import sqlalchemy as sa`,
    ``,
    `revision = '${releaseRevision(release)}'`,
    `down_revision = '${parent}'`,
    `branch_labels = None`,
    `depends_on = None`,
    ``,
    ``,
    `def upgrade():`,
    ...body,
    ``,
    ``,
    `def downgrade():`,
    ...down,
    ``,
  ].join("\n");
  return files;
}

export interface VersionInfo {
  version: string;
  revision: string;
  schema: string | null;
}

export interface PipelineOverrides {
  server?: string;
  target?: string;
  name?: string;
  tokenFile?: string;
  stateDir?: string;
  repo?: string;
  branch?: string;
}

export interface FlaskSiteOptions {
  /** How long gunicorn may take to answer /version at start. Default 30 s. */
  startTimeoutMs?: number;
}

export interface FlaskSite {
  dir: string;
  originPath: string;
  /** The clone commit() writes to before pushing to origin. */
  workPath: string;
  livePath: string;
  venvPath: string;
  pidfile: string;
  dbPath: string;
  logPath: string;
  port: number;
  baseUrl: string;
  /** The seeded commit (release 1), checked out in live/ and served at start. */
  initialSha: string;
  getVersion(): Promise<VersionInfo>;
  /** Poll /version until it reports `sha`; throws with the last answer after `timeoutMs`. */
  waitForRevision(sha: string, timeoutMs?: number): Promise<VersionInfo>;
  /**
   * Write (string) or delete (null) files in the work clone, commit, push to origin; returns the sha.
   * With `branch` (not BRANCH): on that branch, created from BRANCH's tip; the clone is back on BRANCH after.
   */
  commit(files: Record<string, string | null>, message: string, opts?: { branch?: string }): Promise<string>;
  /** `git rev-parse HEAD` of the live checkout. */
  liveHead(): Promise<string>;
  /** Column names of a table in the site's SQLite database. */
  columns(table: string): Promise<string[]>;
  /** PID of the gunicorn master (HUP keeps it; a restart would not). */
  masterPid(): number;
  /** agent/examples/flask.yml with this site's paths, port and the overrides. */
  pipelineYaml(overrides?: PipelineOverrides): string;
  stop(): Promise<void>;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env ?? cleanEnv(), timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`flask-site: ${cmd} ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

/** The test's environment without what would point git or python somewhere else. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "FLASK_APP", "DATABASE_URL"]) {
    delete env[key];
  }
  return { ...env, ...extra };
}

function git(args: string[], cwd?: string): Promise<RunResult> {
  return run("git", [...GIT_IDENTITY, ...args], { cwd });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function parseVersion(body: unknown): VersionInfo {
  if (typeof body !== "object" || body === null) throw new Error(`flask-site: /version answered ${JSON.stringify(body)}`);
  const { version, revision, schema } = body as Record<string, unknown>;
  if (typeof version !== "string" || typeof revision !== "string" || !(typeof schema === "string" || schema === null)) {
    throw new Error(`flask-site: unexpected /version body ${JSON.stringify(body)}`);
  }
  return { version, revision, schema };
}

function copyExample(to: string): void {
  const skip = new Set(["venv", "instance", "__pycache__", ".git"]);
  cpSync(EXAMPLE_APP, to, {
    recursive: true,
    filter: (src) => !skip.has(src.split("/").pop() ?? "") && !src.endsWith(".pyc") && !src.endsWith(".db"),
  });
}

function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export async function createFlaskSite(opts: FlaskSiteOptions = {}): Promise<FlaskSite> {
  const dir = await mkdtemp(join(tmpdir(), "hookrelay-flask-"));
  let gunicorn: ChildProcess | undefined;
  let exited = false;

  const stopGunicorn = async (): Promise<void> => {
    if (!gunicorn?.pid || exited) return;
    const pid = gunicorn.pid;
    const gone = new Promise<void>((resolve) => gunicorn?.once("exit", () => resolve()));
    const signal = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-pid, sig); // the whole group: master and every worker
      } catch {
        // already gone
      }
    };
    signal("SIGTERM");
    const timedOut = await Promise.race([gone.then(() => false), sleep(10_000).then(() => true)]);
    if (timedOut) {
      signal("SIGKILL");
      await Promise.race([gone, sleep(5_000)]);
    }
    signal("SIGKILL"); // stragglers that outlived the master
  };

  try {
    const originPath = join(dir, "origin.git");
    const workPath = join(dir, "work");
    const livePath = join(dir, "live");
    // Inside the checkout like on the host (/srv/flask-app/venv): untracked, ignored, kept by reset --hard.
    const venvPath = join(livePath, "venv");
    const pidfile = join(dir, "run", "gunicorn.pid");
    const dbPath = join(livePath, "instance", "app.db");
    const logPath = join(dir, "gunicorn.log");
    mkdirSync(join(dir, "run"));

    await git(["init", "--bare", "-b", BRANCH, originPath]);
    await git(["init", "-b", BRANCH, workPath]);
    copyExample(workPath);
    await git(["add", "-A"], workPath);
    await git(["commit", "-q", "-m", "release 1"], workPath);
    await git(["remote", "add", "origin", originPath], workPath);
    await git(["push", "-q", "origin", BRANCH], workPath);
    const initialSha = (await git(["rev-parse", "HEAD"], workPath)).stdout.trim();
    await git(["clone", "-q", "-b", BRANCH, originPath, livePath]);

    await run(SYSTEM_PYTHON, ["-m", "venv", "--system-site-packages", venvPath], { timeoutMs: 120_000 });
    const appEnv = cleanEnv({
      PATH: `${join(venvPath, "bin")}:/usr/bin:/bin`,
      VIRTUAL_ENV: venvPath,
      PIP_DISABLE_PIP_VERSION_CHECK: "1",
    });
    const python = join(venvPath, "bin", "python");
    await run(python, ["-m", "flask", "--app", "app", "db", "upgrade"], { cwd: livePath, env: appEnv });

    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const logFd = openSync(logPath, "a");
    try {
      gunicorn = spawn(python, ["-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], {
        cwd: livePath,
        env: { ...appEnv, GUNICORN_BIND: `127.0.0.1:${port}`, GUNICORN_PIDFILE: pidfile },
        detached: true, // own process group, so stop() reaches the workers too
        stdio: ["ignore", logFd, logFd],
      });
    } finally {
      closeSync(logFd);
    }
    const child = gunicorn;
    child.once("exit", () => {
      exited = true;
    });
    child.once("error", () => {
      exited = true;
    });

    const getVersion = async (): Promise<VersionInfo> => {
      const res = await fetch(`${baseUrl}/version`, { signal: AbortSignal.timeout(2_000) });
      if (!res.ok) throw new Error(`flask-site: /version answered ${res.status}`);
      return parseVersion(await res.json());
    };

    const waitFor = async (accept: (v: VersionInfo) => boolean, what: string, timeoutMs: number): Promise<VersionInfo> => {
      const deadline = Date.now() + timeoutMs;
      let last = "no answer";
      while (Date.now() < deadline) {
        if (exited) throw new Error(`flask-site: gunicorn exited while waiting for ${what}\n${tail(logPath)}`);
        try {
          const v = await getVersion();
          if (accept(v)) return v;
          last = JSON.stringify(v);
        } catch (e) {
          last = String(e);
        }
        await sleep(100);
      }
      throw new Error(`flask-site: no ${what} within ${timeoutMs} ms; last: ${last}\n${tail(logPath)}`);
    };

    await waitFor((v) => v.revision === initialSha, `release 1 on ${baseUrl}`, opts.startTimeoutMs ?? 30_000);
    // gunicorn writes the pidfile before it answers; the reload step depends on it.
    if (!existsSync(pidfile)) throw new Error(`flask-site: gunicorn wrote no pidfile at ${pidfile}`);

    const site: FlaskSite = {
      dir,
      originPath,
      workPath,
      livePath,
      venvPath,
      pidfile,
      dbPath,
      logPath,
      port,
      baseUrl,
      initialSha,
      getVersion,
      waitForRevision: (sha, timeoutMs = 20_000) => waitFor((v) => v.revision === sha, `revision ${sha}`, timeoutMs),
      async commit(files, message, opts = {}) {
        const branch = opts.branch ?? BRANCH;
        if (branch !== BRANCH) await git(["checkout", "-q", "-B", branch, BRANCH], workPath);
        try {
          for (const [path, content] of Object.entries(files)) {
            const full = join(workPath, path);
            if (content === null) {
              rmSync(full, { force: true });
            } else {
              mkdirSync(dirname(full), { recursive: true });
              writeFileSync(full, content);
            }
          }
          await git(["add", "-A"], workPath);
          await git(["commit", "-q", "-m", message], workPath);
          await git(["push", "-q", "origin", branch], workPath);
          return (await git(["rev-parse", "HEAD"], workPath)).stdout.trim();
        } finally {
          if (branch !== BRANCH) await git(["checkout", "-q", BRANCH], workPath);
        }
      },
      async liveHead() {
        return (await git(["rev-parse", "HEAD"], livePath)).stdout.trim();
      },
      async columns(table) {
        const script = "import json, sqlite3, sys\nrows = sqlite3.connect(sys.argv[1]).execute('SELECT name FROM pragma_table_info(?)', (sys.argv[2],))\nprint(json.dumps([r[0] for r in rows]))";
        const { stdout } = await run(SYSTEM_PYTHON, ["-c", script, dbPath, table]);
        const names: unknown = JSON.parse(stdout);
        if (!Array.isArray(names) || !names.every((n): n is string => typeof n === "string")) {
          throw new Error(`flask-site: unexpected columns ${stdout}`);
        }
        return names;
      },
      masterPid() {
        return Number(readFileSync(pidfile, "utf8").trim());
      },
      pipelineYaml(overrides = {}) {
        let text = readFileSync(EXAMPLE_PIPELINE, "utf8")
          .replaceAll(YML_VENV, venvPath)
          .replaceAll(YML_PIDFILE, pidfile)
          .replaceAll(YML_URL, baseUrl)
          .replaceAll(YML_LIVE, livePath);
        const set = (key: string, value: string | undefined, indent = ""): void => {
          if (value === undefined) return;
          const re = new RegExp(`^${indent}${key}:.*$`, "m");
          if (!re.test(text)) throw new Error(`flask-site: no "${key}:" in ${EXAMPLE_PIPELINE}`);
          text = text.replace(re, `${indent}${key}: ${JSON.stringify(value)}`);
        };
        set("server", overrides.server);
        set("target", overrides.target);
        set("name", overrides.name);
        set("token_file", overrides.tokenFile);
        set("state_dir", overrides.stateDir ?? join(dir, "state"));
        set("repo", overrides.repo ?? REPO, "    ");
        if (overrides.branch !== undefined) {
          text = text.replace(/^ {4}branches:.*$/m, `    branches: [${JSON.stringify(overrides.branch)}]`);
        }
        return text;
      },
      async stop() {
        await stopGunicorn();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return site;
  } catch (error) {
    await stopGunicorn();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
