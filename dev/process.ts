/**
 * A child process for tests and the benchmark: its own process group (so stop() takes its children too),
 * output captured, and waits that always have a timeout.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

export interface RunningProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout and stderr so far, interleaved. */
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number, from?: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signal the whole process group and wait for the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

export function startProcess(command: string, args: string[], options: SpawnOptions & { label: string }): RunningProcess {
  const child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error(`${options.label}: failed to start ${command}`);
  const pid = child.pid;
  let text = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk.toString("utf8");
    if (process.env.HOOKRELAY_TEST_VERBOSE) process.stderr.write(`[${options.label}] ${chunk.toString("utf8")}`);
    for (const w of waiters) w();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => {
      done = true;
      for (const w of waiters) w();
      resolve({ code, signal });
    });
  });

  return {
    child,
    pid,
    output: () => text,
    exited,
    waitForOutput(pattern, timeoutMs = 30_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const re = new RegExp(pattern.source, pattern.flags.replace("g", ""));
          const m = re.exec(text.slice(from));
          if (m) {
            cleanup();
            resolve(m);
          } else if (done) {
            cleanup();
            reject(new Error(`${options.label} exited before printing ${pattern}; output:\n${text.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${options.label}: no ${pattern} within ${timeoutMs} ms; output:\n${text.slice(-4000)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = "SIGTERM", timeoutMs = 10_000) {
      if (done) return;
      try {
        process.kill(-pid, signal);
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }, timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
