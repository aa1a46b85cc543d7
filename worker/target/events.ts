/**
 * Storing a job's events exactly once and in order: an event is stored only when its seq is the
 * next contiguous one, applied to the job's state in the same transaction, and acked.
 */
import { assertNever } from "../../shared/assert-never.ts";
import { type JobEventBody, utf8Length } from "../../shared/protocol.ts";
import { finishJob, type JobRow, jobStatusOf, stepEnded, stepStarted } from "./jobs.ts";

/** Stored output per job; past it, output events keep their seq but not their data. */
export const OUTPUT_CAP_BYTES = 64 * 1024 * 1024;

export type EventOutcome =
  /** Stored and applied; ack `acked`. */
  | { kind: "stored"; acked: number }
  /** Seen before; re-ack `acked`, apply nothing. */
  | { kind: "duplicate"; acked: number }
  /** Not the next seq: not stored, not acked (the agent re-sends after its next resume). */
  | { kind: "gap"; acked: number };

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

  switch (body.kind) {
    case "step-start":
      sql.exec("INSERT OR IGNORE INTO job_events (job_id, seq, at, kind, step) VALUES (?, ?, ?, ?, ?)", job.id, seq, at, body.kind, body.step);
      stepStarted(sql, job.id, body.step, at);
      break;
    case "output": {
      const bytes = utf8Length(body.data);
      const fits = job.output_dropped === 0 && job.output_bytes + bytes <= capBytes; // head only: once dropping, keep dropping
      sql.exec(
        "INSERT OR IGNORE INTO job_events (job_id, seq, at, kind, step, stream, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        job.id,
        seq,
        at,
        body.kind,
        body.step,
        body.stream,
        fits ? body.data : "",
      );
      if (fits) sql.exec("UPDATE jobs SET output_bytes = output_bytes + ? WHERE id = ?", bytes, job.id);
      else sql.exec("UPDATE jobs SET output_dropped = output_dropped + ? WHERE id = ?", bytes, job.id);
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
      sql.exec("UPDATE jobs SET end_seq = ? WHERE id = ?", seq, job.id);
      // A job the DO already gave up on (interrupted while its agent was away) takes the agent's real ending;
      // one canceled while queued, or ended by a deadline (timed out, cancel not confirmed), stays as it is.
      const current = jobStatusOf(job.status);
      if (current === "running" || current === "interrupted" || current === "queued") finishJob(sql, job.id, body.status, now);
      break;
    }
    default:
      assertNever(body, "event body");
  }
  sql.exec("UPDATE jobs SET acked_seq = ? WHERE id = ?", seq, job.id);
  return { kind: "stored", acked: seq };
}
