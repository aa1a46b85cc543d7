// The Flask site's gunicorn: its own process group on a free loopback port, a pidfile like the
// host's, and /version polled until it serves the revision a test waits for.
import { closeSync, openSync, readFileSync } from "node:fs";
import { spawn, type ChildProcess } from "node:child_process";
import type { Venv } from "./flask-python.ts";
import { sleep } from "../agent/common/sleep.ts";

export interface VersionInfo {
  version: string;
  revision: string;
  schema: string | null;
}

export interface Gunicorn {
  getVersion(): Promise<VersionInfo>;
  /** Poll /version until `accept` takes an answer; throws with the last answer and the log after `timeoutMs`. */
  waitFor(accept: (v: VersionInfo) => boolean, what: string, timeoutMs: number): Promise<VersionInfo>;
  /** SIGTERM the whole group, SIGKILL after a grace; a no-op once it has exited. */
  stop(): Promise<void>;
}

function parseVersion(body: unknown): VersionInfo {
  if (typeof body !== "object" || body === null) throw new Error(`flask-site: /version answered ${JSON.stringify(body)}`);
  const { version, revision, schema } = body as Record<string, unknown>;
  if (typeof version !== "string" || typeof revision !== "string" || !(typeof schema === "string" || schema === null)) {
    throw new Error(`flask-site: unexpected /version body ${JSON.stringify(body)}`);
  }
  return { version, revision, schema };
}

function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Start gunicorn from `appDir` (its gunicorn.conf.py reads the bind and pidfile from the env). */
export function startGunicorn(o: { venv: Venv; appDir: string; port: number; pidfile: string; logPath: string }): Gunicorn {
  const baseUrl = `http://127.0.0.1:${o.port}`;
  let exited = false;
  let gunicorn: ChildProcess | undefined;
  const logFd = openSync(o.logPath, "a");
  try {
    gunicorn = spawn(o.venv.python, ["-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], {
      cwd: o.appDir,
      env: { ...o.venv.env, GUNICORN_BIND: `127.0.0.1:${o.port}`, GUNICORN_PIDFILE: o.pidfile },
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

  return {
    getVersion,
    async waitFor(accept, what, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last = "no answer";
      while (Date.now() < deadline) {
        if (exited) throw new Error(`flask-site: gunicorn exited while waiting for ${what}\n${tail(o.logPath)}`);
        try {
          const v = await getVersion();
          if (accept(v)) return v;
          last = JSON.stringify(v);
        } catch (e) {
          last = String(e);
        }
        await sleep(100);
      }
      throw new Error(`flask-site: no ${what} within ${timeoutMs} ms; last: ${last}\n${tail(o.logPath)}`);
    },
    async stop() {
      if (!child.pid || exited) return;
      const pid = child.pid;
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
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
    },
  };
}
