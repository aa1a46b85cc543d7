/**
 * Storing a job's events exactly once and in order: an event is stored only when its seq is the
 * next contiguous one, applied to the job's state in the same transaction, and acked. Events no
 * agent may send — anything after the job's job-end, a step-start for a step the job does not
 * declare — are refused: not stored, yet their seq is acked (see "refused").
 */
import { assertNever } from "../../shared/assert-never.ts";
import { type JobEventBody } from "../../shared/protocol.ts";
import { utf8Length } from "../../shared/utf8.ts";
import { type JobRow, jobStatusOf } from "./job-record.ts";
import { finishJob } from "./deployments.ts";
import { countOutput, jobEndStored, setAckedSeq, setEndSeq } from "./jobs.ts";
import { isDeclaredStep, stepEnded, stepStarted } from "./steps.ts";

/** Stored output per job; past it, output events keep their seq but not their data. */
export const OUTPUT_CAP_BYTES = 64 * 1024 * 1024;

export type EventOutcome =
  /** Stored and applied; ack `acked`. */
  | { kind: "stored"; acked: number }
  /** Seen before; re-ack `acked`, apply nothing. */
  | { kind: "duplicate"; acked: number }
  /** Not the next seq: not stored, not acked (the agent re-sends after its next resume). */
  | { kind: "gap"; acked: number }
  /**
   * The next seq, but an event no agent may send: not stored, answered with `error {code}` — and
   * still acked. The agent keeps every unacked event in its spool and re-sends it after each
   * reconnect; an event that will never be stored would stay there for good, and the events after it
   * (later seqs) could never be stored either.
   */
  | { kind: "refused"; acked: number; code: "after-job-end" | "unknown-step"; message: string };

/** Text as it came; bytes (a binary frame's, protocol 3) as a BLOB of their own, copied out of the frame. */
function storedData(data: string | Uint8Array): string | ArrayBuffer {
  if (typeof data === "string") return data;
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer ? data.buffer : data.slice().buffer;
}

function refusal(sql: SqlStorage, job: JobRow, seq: number, body: JobEventBody): { code: "after-job-end" | "unknown-step"; message: string } | null {
  if (jobEndStored(job)) {
    return { code: "after-job-end", message: `job ${job.id}: event seq ${seq} (${body.kind}) comes after its job-end (seq ${job.end_seq}): not stored` };
  }
  if (body.kind === "step-start" && !isDeclaredStep(sql, job.id, body.step)) {
    return { code: "unknown-step", message: `job ${job.id}: step-start for ${body.step}, a step its pipeline ${job.pipeline} did not declare: not stored` };
  }
  return null;
}

/**
 * Call inside a transaction, with the job's current row. The agent already caps a job's output
 * (head, marker, tail); `capBytes` is the worker's own guard against an agent that does not.
 */
export function storeEvent(
  sql: SqlStorage,
  job: JobRow,
  seq: number,
  at: number,
  body: JobEventBody,
  now: number,
  capBytes = OUTPUT_CAP_BYTES,
): EventOutcome {
  if (seq <= job.acked_seq) return { kind: "duplicate", acked: job.acked_seq };
  if (seq !== job.acked_seq + 1) return { kind: "gap", acked: job.acked_seq };
  const refused = refusal(sql, job, seq, body);
  if (refused) {
    setAckedSeq(sql, job.id, seq);
    return { kind: "refused", acked: seq, ...refused };
  }

  switch (body.kind) {
    case "step-start":
      sql.exec("INSERT OR IGNORE INTO job_events (job_id, seq, at, kind, step) VALUES (?, ?, ?, ?, ?)", job.id, seq, at, body.kind, body.step);
      stepStarted(sql, job.id, body.step, at);
      break;
    case "output": {
      const bytes = typeof body.data === "string" ? utf8Length(body.data) : body.data.byteLength;
      const fits = job.output_dropped === 0 && job.output_bytes + bytes <= capBytes; // head only: once dropping, keep dropping
      sql.exec(
        "INSERT OR IGNORE INTO job_events (job_id, seq, at, kind, step, stream, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        job.id,
        seq,
        at,
        body.kind,
        body.step,
        body.stream,
        fits ? storedData(body.data) : "",
      );
      countOutput(sql, job.id, bytes, fits ? "stored" : "dropped");
      break;
    }
    case "step-end":
      sql.exec(
        "INSERT OR IGNORE INTO job_events (job_id, seq, at, kind, step, status, exit_code) VALUES (?, ?, ?, ?, ?, ?, ?)",
        job.id,
        seq,
        at,
        body.kind,
        body.step,
        body.status,
        body.exitCode,
      );
      stepEnded(sql, job.id, body.step, body.status, body.exitCode, at);
      break;
    case "job-end": {
      sql.exec("INSERT OR IGNORE INTO job_events (job_id, seq, at, kind, status) VALUES (?, ?, ?, ?, ?)", job.id, seq, at, body.kind, body.status);
      setEndSeq(sql, job.id, seq);
      // A job the DO already gave up on (interrupted while its agent was away) takes the agent's real ending;
      // one canceled while queued, or ended by a deadline (timed out, cancel not confirmed), stays as it is.
      const current = jobStatusOf(job.status);
      if (current === "running" || current === "interrupted" || current === "queued") finishJob(sql, job.id, body.status, now);
      break;
    }
    default:
      assertNever(body, "event body");
  }
  setAckedSeq(sql, job.id, seq);
  return { kind: "stored", acked: seq };
}
