/**
 * Process probes for tests: is a process (or a whole process group) still running, its memory, and a
 * power-loss kill. A zombie (dead, not yet reaped by whatever PID 1 is here) counts as dead.
 */
import { readdirSync, readFileSync } from "node:fs";

// The agent's own group probe (it waits for a step's group to die); tests ask the same question.
export { groupAlive } from "../agent/runtime/process-group.ts";

/** Whether a process is still running. A zombie (dead, not yet reaped by whatever PID 1 is here) counts as dead. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export function rssMb(pid: number, read: (p: string) => string): number {
  const m = /VmRSS:\s+(\d+)/.exec(read(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : 0;
}

/**
 * SIGKILL every process whose environment holds `key=value` (the agent and every step it started,
 * whatever process group they are in): a power loss, or systemd's KillMode=control-group.
 * Returns how many were signalled.
 */
export function killByEnvMarker(key: string, value: string): number {
  const needle = `${key}=${value}`;
  let killed = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, "latin1");
    } catch {
      continue; // gone, or not ours
    }
    if (!environ.split("\0").includes(needle)) continue;
    try {
      process.kill(Number(entry), "SIGKILL");
      killed++;
    } catch {
      /* already gone */
    }
  }
  return killed;
}
