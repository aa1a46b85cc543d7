// The Python side of the Flask site: Debian's interpreter and Flask stack, a venv on top of them,
// and commands run in an environment that nothing of the test's leaks into.
import { execFile, spawnSync } from "node:child_process";
import { join } from "node:path";

/** Debian's interpreter: the Flask stack from apt belongs to it, not to whatever `python3` is on PATH. */
export const SYSTEM_PYTHON = "/usr/bin/python3";

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

/** The test's environment without what would point git or python somewhere else. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "FLASK_APP", "DATABASE_URL"]) {
    delete env[key];
  }
  return { ...env, ...extra };
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
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

export interface Venv {
  /** The venv's interpreter. */
  python: string;
  /** The environment the app's commands run in: the venv first on PATH. */
  env: NodeJS.ProcessEnv;
}

/** A venv over the system site-packages at `venvPath`, and the app's database migrated in `appDir`. */
export async function createVenv(venvPath: string, appDir: string): Promise<Venv> {
  await run(SYSTEM_PYTHON, ["-m", "venv", "--system-site-packages", venvPath], { timeoutMs: 120_000 });
  const env = cleanEnv({
    PATH: `${join(venvPath, "bin")}:/usr/bin:/bin`,
    VIRTUAL_ENV: venvPath,
    PIP_DISABLE_PIP_VERSION_CHECK: "1",
  });
  const python = join(venvPath, "bin", "python");
  await run(python, ["-m", "flask", "--app", "app", "db", "upgrade"], { cwd: appDir, env });
  return { python, env };
}

/** Column names of a table in a SQLite database. */
export async function sqliteColumns(dbPath: string, table: string): Promise<string[]> {
  const script = "import json, sqlite3, sys\nrows = sqlite3.connect(sys.argv[1]).execute('SELECT name FROM pragma_table_info(?)', (sys.argv[2],))\nprint(json.dumps([r[0] for r in rows]))";
  const { stdout } = await run(SYSTEM_PYTHON, ["-c", script, dbPath, table]);
  const names: unknown = JSON.parse(stdout);
  if (!Array.isArray(names) || !names.every((n): n is string => typeof n === "string")) {
    throw new Error(`flask-site: unexpected columns ${stdout}`);
  }
  return names;
}
