/**
 * One step = one `bash -eo pipefail -c <run>` in its own process group, so a timeout or cancel
 * can reach every process it started (SIGTERM to the group, SIGKILL after the grace), not just bash.
 * Output is read with back-pressure: the next chunk is read only after `onData` settled, so a step
 * printing gigabytes never fills our memory — the pipe fills and the step waits.
 *
 * Each pipe's reads land in one buffer for the step's whole life (net.Socket's `onread`), not in a new
 * one per read as Node's streams do: a step printing 50 MB made ~2,700 reads, and the C allocator kept
 * what they had used (glibc's main heap 2 → 14–16 MB, still there long after; measured in a bare Node
 * process and in the agent). So `onData` gets a view that the next read overwrites: it must take what
 * it keeps (a copy, a decoded string) before its first await.
 */
import { errorCode, errorMessage } from "../../shared/errors.ts";
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { OutputStream } from "../../shared/protocol.ts";
import { sleep } from "../common/sleep.ts";


/** Waits are measured on the monotonic clock: a wall clock jumped back an hour must not stretch a kill grace or a drain. */
const monotonicNow = (): number => performance.now();

export type StepExit =
  | { kind: "exited"; code: number | null; signal: NodeJS.Signals | null }
  | { kind: "spawn-error"; message: string };

export interface StepProcessOptions {
  run: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** `chunk` is overwritten by the next read: keep a copy of what outlives the call's synchronous part. */
  onData(stream: OutputStream, chunk: Buffer): Promise<void>;
  /** After bash exits, keep reading until the pipes go quiet this long (a background grandchild may hold them open). */
  drainIdleMs?: number;
  /** …but never longer than this in total. */
  drainMaxMs?: number;
}

export interface StepProcess {
  readonly pid: number | undefined;
  /** Resolves when bash has exited and its output has been read (or the drain gave up). */
  readonly finished: Promise<StepExit>;
  /** SIGTERM to the whole group, SIGKILL after `graceMs` if anything in it is still alive. */
  killGroup(graceMs: number): Promise<void>;
  /** SIGKILL to the whole group now (a `killGroup` under way then ends as soon as the group is gone). */
  killNow(): void;
}

/** Per pipe, for the step's whole life (64 KiB: what Node reads a pipe in). */
const READ_BUFFER_BYTES = 64 * 1024;

export function spawnStep(options: StepProcessOptions): StepProcess {
  let child: ChildProcess & { stdout: Readable; stderr: Readable };
  try {
    child = spawn("bash", ["-eo", "pipefail", "-c", options.run], {
      cwd: options.cwd,
      env: options.env,
      detached: true, // own process group (setsid): signals to -pid reach every descendant that stays in it
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    // spawn throws synchronously on arguments it refuses (e.g. a NUL byte): that is a step that could not start.
    return {
      pid: undefined,
      finished: Promise.resolve({ kind: "spawn-error", message: errorMessage(e) }),
      killGroup: async () => {},
      killNow: () => {},
    };
  }
  const pid = child.pid;

  const exited = new Promise<StepExit>((resolve) => {
    child.once("error", (e) => resolve({ kind: "spawn-error", message: e.message }));
    child.once("exit", (code, signal) => resolve({ kind: "exited", code, signal }));
  });

  let lastActivity = monotonicNow();
  const readers: Socket[] = [];
  const pump = (stream: OutputStream, pipe: Readable): Promise<void> =>
    new Promise<void>((resolve) => {
      const handle = (pipe as unknown as { _handle?: unknown })._handle;
      if (!handle) {
        // A Node whose child pipes have no handle to wrap: read them as streams (a buffer per read).
        void (async () => {
          try {
            for await (const chunk of pipe) {
              lastActivity = monotonicNow();
              await options.onData(stream, chunk as Buffer);
              lastActivity = monotonicNow();
            }
          } catch {
            // destroyed by the drain deadline below, or a read error: output ends here either way
          }
          resolve();
        })();
        return;
      }
      const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
      // `handle` is the pipe the child's stdio Socket wraps (not read by it: nobody listens to it).
      const reader: Socket = new Socket({
        handle,
        readable: true,
        writable: false,
        onread: {
          buffer,
          callback: (nread: number, buf: Uint8Array) => {
            lastActivity = monotonicNow();
            // No next read (into the same buffer) until onData has settled.
            reader.pause();
            options.onData(stream, Buffer.from(buf.buffer, buf.byteOffset, nread)).then(
              () => {
                lastActivity = monotonicNow();
                if (!reader.destroyed) reader.resume();
              },
              () => reader.destroy(),
            );
            return true; // paused above already
          },
        },
      } as ConstructorParameters<typeof Socket>[0]);
      readers.push(reader);
      // Ends with the pipe, or a read error, or the drain deadline below destroying it: output ends here either way.
      reader.once("end", () => resolve());
      reader.once("close", () => resolve());
      reader.once("error", () => resolve());
    });
  const pumps = Promise.all([pump("stdout", child.stdout), pump("stderr", child.stderr)]);

  const finished = exited.then(async (exit) => {
    const idle = options.drainIdleMs ?? 250;
    const deadline = monotonicNow() + (options.drainMaxMs ?? 5000);
    let done = false;
    void pumps.then(() => (done = true));
    while (!done) {
      const now = monotonicNow();
      if (now - lastActivity >= idle || now >= deadline) break;
      await Promise.race([pumps, sleep(Math.min(idle, 50))]);
    }
    if (!done) {
      for (const reader of readers) reader.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
      await pumps;
    }
    return exit;
  });

  return {
    pid,
    finished,
    killGroup: async (graceMs: number) => {
      if (pid === undefined) return;
      signalGroup(pid, "SIGTERM");
      const deadline = monotonicNow() + graceMs;
      while (groupAlive(pid) && monotonicNow() < deadline) await sleep(25);
      if (groupAlive(pid)) {
        signalGroup(pid, "SIGKILL");
        const hard = monotonicNow() + 5000;
        while (groupAlive(pid) && monotonicNow() < hard) await sleep(25);
      }
    },
    killNow: () => {
      if (pid !== undefined) signalGroup(pid, "SIGKILL");
    },
  };
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

/**
 * True while a live process of the group exists. Zombies do not count: an orphaned grandchild's
 * zombie waits for PID 1 to reap it, which can take a while in containers, and it holds nothing.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    if (errorCode(e) !== "EPERM") return false;
  }
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return true; // no procfs: the signal check above is all we have
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp …" — comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z") return true;
  }
  return false;
}
