/**
 * The state_dir's lock (two agents sharing a spool would run jobs twice) and the writability check
 * `check` runs. The lock is flock(2) on `agent.lock`, taken through flock(1) from util-linux (Node
 * has no flock): the kernel drops it when our process dies, however it dies, so there is no stale
 * lock to judge by pid and no window between checking and taking. The pid in the file is for people.
 */
import { errorCode, errorMessage } from "../../shared/errors.ts";
import { spawnSync } from "node:child_process";
import { accessSync, closeSync, constants, ftruncateSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export class SpoolError extends Error {
  override name = "SpoolError";
}

export const LOCK_FILE = "agent.lock";

/** state_dir → the open lock file (the lock lives as long as this descriptor). */
const held = new Map<string, number>();

/** Takes `dir/agent.lock`, or throws a SpoolError saying who has it. */
export function lockStateDir(dir: string): void {
  if (held.has(dir)) throw new SpoolError(`state_dir ${dir} is already in use by this process`);
  const file = join(dir, LOCK_FILE);
  let fd: number;
  try {
    // Not truncated here: until we hold the lock, the pid in it is the holder's.
    fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o600);
  } catch (e) {
    throw new SpoolError(`state_dir ${dir} is not writable: ${errorCode(e) ?? errorMessage(e)}`);
  }
  // flock(1) locks the open file description it inherits as fd 3, which is ours too: the lock stays
  // after flock exits, until our descriptor is closed (or we die). Our other descriptors are
  // close-on-exec, so steps never inherit it.
  const r = spawnSync("flock", ["-xn", "3"], { stdio: ["ignore", "ignore", "pipe", fd], encoding: "utf8" });
  if (r.error || r.status !== 0) {
    closeSync(fd);
    if (errorCode(r.error) === "ENOENT") {
      throw new SpoolError(`state_dir ${dir}: cannot lock ${file}: the agent needs flock(1) from util-linux (not found in PATH; install util-linux)`);
    }
    if (r.error) throw new SpoolError(`state_dir ${dir}: cannot lock ${file}: ${r.error.message}`);
    if (r.status === 1) {
      const pid = lockPid(file);
      throw new SpoolError(
        `state_dir ${dir} is in use by another agent (${pid === null ? "its pid not yet in the lock file" : `pid ${pid} from the lock file`} ${file}); two agents must not share a state_dir`,
      );
    }
    throw new SpoolError(`state_dir ${dir}: cannot lock ${file}: flock exited ${r.status ?? r.signal}: ${(r.stderr ?? "").trim()}`);
  }
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch {
    // only information for people: the lock is held all the same
  }
  held.set(dir, fd);
}

function lockPid(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Releases the lock (closing its descriptor). The file stays: removing it would let two agents lock two different files. */
export function unlockStateDir(dir: string): void {
  const fd = held.get(dir);
  if (fd === undefined) return;
  held.delete(dir);
  closeSync(fd);
}

/** For `check`: a problem with the state_dir, or null. Creates nothing and takes no lock. */
export function stateDirProblem(dir: string): string | null {
  // The nearest existing directory must be writable: the agent creates the rest at start.
  let probe = resolve(dir);
  for (;;) {
    try {
      if (!statSync(probe).isDirectory()) return `state_dir ${dir}: ${probe} is not a directory`;
      break;
    } catch {
      const parent = dirname(probe);
      if (parent === probe) break;
      probe = parent;
    }
  }
  try {
    accessSync(probe, constants.W_OK | constants.X_OK);
    return null;
  } catch (e) {
    return `state_dir ${dir} is not writable${probe === resolve(dir) ? "" : ` (cannot create it in ${probe})`}: ${errorCode(e) ?? errorMessage(e)}`;
  }
}
