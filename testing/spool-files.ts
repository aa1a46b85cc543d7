/** For tests: a state_dir as a previous run left it, written directly as files (fast; the Spool API keeps to its bounds). */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AgentMessage, JobEventBody } from "../shared/protocol.ts";

/**
 * `count` accepted jobs, oldest first, each ended (`succeeded`) but never acked; `unended` of the
 * oldest ones have only a step-start (a crash mid-job). Returns their ids in accepted order.
 */
export function writeUnfinishedJobs(stateDir: string, count: number, options: { prefix?: string; unended?: number } = {}): string[] {
  mkdirSync(join(stateDir, "jobs"), { recursive: true });
  const ids = Array.from({ length: count }, (_, i) => `${options.prefix ?? "old"}${String(i).padStart(5, "0")}`);
  for (const [i, id] of ids.entries()) {
    const body: JobEventBody = i < (options.unended ?? 0) ? { kind: "step-start", step: "s" } : { kind: "job-end", status: "succeeded" };
    const frame = Buffer.from(JSON.stringify({ type: "event", jobId: id, seq: 1, at: Date.now(), body } satisfies AgentMessage));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(frame.length);
    mkdirSync(join(stateDir, "jobs", id));
    // One record (agent/runtime/job-log.ts): the frame's length, then the frame.
    writeFileSync(join(stateDir, "jobs", id, "events-1.frames"), Buffer.concat([length, frame]));
  }
  writeFileSync(join(stateDir, "accepted"), ids.map((id) => `${id}\n`).join(""));
  return ids;
}
