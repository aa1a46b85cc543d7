/**
 * Crash recovery: jobs a previous run left without a job-end were interrupted by an agent restart.
 * They end `interrupted`, with a line saying why, and are never re-run (deploy steps need not be
 * idempotent).
 */
import type { JobEventBody } from "../../shared/protocol.ts";
import type { SpooledFrame } from "./job-log.ts";

/** What recovery needs of the spool. */
export interface RecoverableSpool {
  unfinished(): { jobId: string; lastSeq: number }[];
  hasEnded(jobId: string): boolean;
  append(jobId: string, body: JobEventBody): Promise<SpooledFrame>;
}

/** Ends every spooled job without a job-end `interrupted`; returns their ids, oldest first. */
export async function recoverInterrupted(spool: RecoverableSpool): Promise<string[]> {
  const ids = spool.unfinished().flatMap((u) => (spool.hasEnded(u.jobId) ? [] : [u.jobId]));
  for (const id of ids) await endInterrupted(spool, id);
  return ids;
}

/** Appends the interrupted note and `job-end interrupted` to a job a crash left without an end. */
export async function endInterrupted(spool: Pick<RecoverableSpool, "append">, jobId: string): Promise<void> {
  await spool.append(jobId, {
    kind: "output",
    step: null,
    stream: "stderr",
    data: "[hookrelay] the agent stopped while this job was running (agent restart); the job is reported interrupted and is not re-run\n",
  });
  await spool.append(jobId, { kind: "job-end", status: "interrupted" });
}
