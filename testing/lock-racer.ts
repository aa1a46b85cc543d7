/**
 * For tests: a separate process that opens a state_dir's spool (taking its lock) once it reads a
 * line on stdin, prints `won` or `lost <why>`, and then stays until it is killed or stdin closes.
 * Usage: node lock-racer.ts STATE_DIR
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { memoryLogger } from "../agent/common/logger.ts";
import { Spool } from "../agent/runtime/spool.ts";
import { errorMessage } from "../shared/errors.ts";

export interface LockRacer {
  child: ChildProcessWithoutNullStreams;
  /** Its stdout so far. */
  output(): string;
  /** Tells it to open the spool now. */
  go(): void;
  exited: Promise<unknown>;
}

export function startLockRacer(dir: string, env: NodeJS.ProcessEnv = process.env): LockRacer {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), dir], { env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return { child, output: () => out, go: () => child.stdin.write("go\n"), exited };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: lock-racer.ts STATE_DIR");
  const lines = createInterface({ input: process.stdin });
  lines.once("line", () => {
    Spool.open(dir, memoryLogger()).then(
      () => process.stdout.write("won\n"),
      (e: unknown) => process.stdout.write(`lost ${errorMessage(e)}\n`),
    );
  });
  process.stdout.write("ready\n");
}
