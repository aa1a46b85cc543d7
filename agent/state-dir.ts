/**
 * The state_dir's lock (`agent.pid`: two agents sharing a spool would run jobs twice) and the
 * writability check `check` runs.
 */
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { open, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";

export class SpoolError extends Error {
  override name = "SpoolError";
}

const lockedDirs = new Set<string>();

/** Takes `dir/agent.pid`; a lock whose agent is gone is taken over. */
export async function lockStateDir(dir: string): Promise<void> {
  if (lockedDirs.has(dir)) throw new SpoolError(`state_dir ${dir} is already in use by this process`);
  const file = join(dir, "agent.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, "wx", 0o600);
      await fh.write(`${process.pid}\n`);
      await fh.close();
      lockedDirs.add(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") throw new SpoolError(`state_dir ${dir} is not writable: ${code ?? (e as Error).message}`);
    }
    const pid = Number.parseInt(readFileSync(file, "utf8"), 10);
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAgentProcess(pid)) {
      throw new SpoolError(`state_dir ${dir} is in use by another agent (pid ${pid}, see ${file}); two agents must not share a state_dir`);
    }
    await unlink(file).catch(() => undefined); // stale: its agent is gone
  }
  throw new SpoolError(`state_dir ${dir}: could not take the lock ${file}`);
}

function isAgentProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  try {
    // A recycled pid (after a reboot) belongs to something else.
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return /agent|hookrelay|cli\.ts/.test(cmd);
  } catch {
    return true;
  }
}

export async function unlockStateDir(dir: string): Promise<void> {
  if (!lockedDirs.delete(dir)) return;
  const file = join(dir, "agent.pid");
  try {
    if (Number.parseInt(readFileSync(file, "utf8"), 10) === process.pid) await unlink(file);
  } catch {
    // already gone
  }
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
    return `state_dir ${dir} is not writable${probe === resolve(dir) ? "" : ` (cannot create it in ${probe})`}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
}
