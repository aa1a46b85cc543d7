// A real Flask site to deploy to: bare git origin, live checkout, venv, SQLite,
// gunicorn on a free loopback port. Built from examples/flask-app so the tests
// deploy the same app and run the same agent/examples/flask.yml a user copies.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../dev/free-port.ts";
import { createRepo, type FileChange, git } from "../dev/git-repo.ts";
import { BRANCH, exampleFiles } from "./flask-example.ts";
import { flaskPipelineYaml, type PipelineOverrides } from "./flask-pipeline.ts";
import { createVenv, sqliteColumns } from "./flask-python.ts";
import { type Gunicorn, startGunicorn, type VersionInfo } from "./gunicorn.ts";

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
  commit(files: Record<string, FileChange>, message: string, opts?: { branch?: string }): Promise<string>;
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

export async function createFlaskSite(opts: FlaskSiteOptions = {}): Promise<FlaskSite> {
  const dir = await mkdtemp(join(tmpdir(), "hookrelay-flask-"));
  let gunicorn: Gunicorn | undefined;
  try {
    const repo = createRepo(exampleFiles(), { dir, branch: BRANCH, message: "release 1" });
    // Inside the checkout like on the host (/srv/flask-app/venv): untracked, ignored, kept by reset --hard.
    const venvPath = join(repo.live, "venv");
    const pidfile = join(dir, "run", "gunicorn.pid");
    const dbPath = join(repo.live, "instance", "app.db");
    const logPath = join(dir, "gunicorn.log");
    mkdirSync(join(dir, "run"));
    const initialSha = repo.head(repo.work);

    const venv = await createVenv(venvPath, repo.live);
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const server = startGunicorn({ venv, appDir: repo.live, port, pidfile, logPath });
    gunicorn = server;

    await server.waitFor((v) => v.revision === initialSha, `release 1 on ${baseUrl}`, opts.startTimeoutMs ?? 30_000);
    // gunicorn writes the pidfile before it answers; the reload step depends on it.
    if (!existsSync(pidfile)) throw new Error(`flask-site: gunicorn wrote no pidfile at ${pidfile}`);

    return {
      dir,
      originPath: repo.origin,
      workPath: repo.work,
      livePath: repo.live,
      venvPath,
      pidfile,
      dbPath,
      logPath,
      port,
      baseUrl,
      initialSha,
      getVersion: server.getVersion,
      waitForRevision: (sha, timeoutMs = 20_000) => server.waitFor((v) => v.revision === sha, `revision ${sha}`, timeoutMs),
      async commit(files, message, opts = {}) {
        const branch = opts.branch ?? BRANCH;
        if (branch === BRANCH) return repo.commit(files, message);
        git(repo.work, "checkout", "-q", "-B", branch, BRANCH);
        try {
          return repo.commit(files, message, branch);
        } finally {
          git(repo.work, "checkout", "-q", BRANCH);
        }
      },
      async liveHead() {
        return repo.head();
      },
      columns: (table) => sqliteColumns(dbPath, table),
      masterPid() {
        return Number(readFileSync(pidfile, "utf8").trim());
      },
      pipelineYaml: (overrides = {}) => flaskPipelineYaml({ venvPath, pidfile, baseUrl, livePath: repo.live, defaultStateDir: join(dir, "state") }, overrides),
      async stop() {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await gunicorn?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
