/**
 * Storing a job's events exactly once and in order: an event is stored only when its seq is the
 * next contiguous one, applied to the job's state in the same transaction, and acked. Events no
 * agent may send — anything after the job's job-end, a step-start for a step the job does not
 * declare, more step events than its declared steps make — are refused: not stored, yet their seq
 * is acked (see "refused"). A job's log is bounded in bytes and in rows (OUTPUT_CAP_BYTES,
 * OUTPUT_CAP_ROWS): output past either, and empty output, is acked and counted, not stored.
 */
import { assertNever } from "../../../shared/assert-never.ts";
import { type JobEventBody } from "../../../shared/protocol.ts";
import { utf8Length } from "../../../shared/utf8.ts";
import { type JobRow, jobStatusOf } from "./job-record.ts";
import { countOutput, countStepEvent, jobEndStored, leftoverRunningStep, setAckedSeq, setEndSeq } from "./jobs.ts";
import { addNote } from "./notes.ts";
import { declaredStepCount, type EndedByWorker, isDeclaredStep, stepEnded, stepStarted } from "./steps.ts";

/** Stored output per job; past it, output events are acked and not stored (the agent's own cap is 8 MiB by default). */
export const OUTPUT_CAP_BYTES = 64 * 1024 * 1024;
/**
 * A job's rows (var JOB_LOG_ROWS): output events are stored while the job has fewer. Each row costs
 * LOG_ROW_OVERHEAD_BYTES beyond its data, so a flood of tiny events would cost storage without bound.
 * The agent batches output (32 KiB, or 50 ms): a 50 MB step is ~1.6k events, its default 8 MiB cap
 * ≥ 256; 20,000 is a busy step flushing at its timer's fastest for a quarter of an hour. ≤ 2.5 MB of overhead.
 */
export const OUTPUT_CAP_ROWS = 20_000;
/** JOB_LOG_ROWS may lower the row cap, never raise it past this: the bound stays what log-budget.ts says. */
const MAX_OUTPUT_CAP_ROWS = 100_000;

export interface OutputCaps {
  bytes: number;
  rows: number;
}

export const OUTPUT_CAPS: OutputCaps = { bytes: OUTPUT_CAP_BYTES, rows: OUTPUT_CAP_ROWS };

/** JOB_LOG_ROWS (a whole number, 1–100,000); unset, empty or anything else → OUTPUT_CAP_ROWS. */
export function outputCaps(env: { JOB_LOG_ROWS?: string }): OutputCaps {
  const value = env.JOB_LOG_ROWS?.trim() ?? "";
  const n = Number(value);
  const rows = /^\d+$/.test(value) && n >= 1 && n <= MAX_OUTPUT_CAP_ROWS ? n : OUTPUT_CAP_ROWS;
  return { bytes: OUTPUT_CAP_BYTES, rows };
}

type RefusalCode = "after-job-end" | "unknown-step" | "too-many-step-events";

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
  | { kind: "refused"; acked: number; code: RefusalCode; message: string }
  /**
   * Output acked and not stored: `empty` (no bytes: nothing to keep), or `over-cap` (past the job's
   * bytes or rows; counted, and the log says how much was left out). `first`: the job's first over-cap one.
   */
  | { kind: "not-stored"; acked: number; why: "empty" | "over-cap"; first: boolean };

/** Text as it came; bytes (a binary frame's, protocol 3) as a BLOB of their own, copied out of the frame. */
function storedData(data: string | Uint8Array): string | ArrayBuffer {
  if (typeof data === "string") return data;
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer ? data.buffer : data.slice().buffer;
}

function refusal(sql: SqlStorage, job: JobRow, seq: number, body: JobEventBody): { code: RefusalCode; message: string } | null {
  if (jobEndStored(job)) {
    return { code: "after-job-end", message: `job ${job.id}: event seq ${seq} (${body.kind}) comes after its job-end (seq ${job.end_seq}): not stored` };
  }
  if (body.kind === "step-start" && !isDeclaredStep(sql, job.id, body.step)) {
    return { code: "unknown-step", message: `job ${job.id}: step-start for ${body.step}, a step its pipeline ${job.pipeline} did not declare: not stored` };
  }
  if (body.kind === "step-start" || body.kind === "step-end") {
    // A start and an end per declared step: the structural rows stay bounded as the output's do.
    const allowed = 2 * declaredStepCount(sql, job.id);
    if (job.step_events >= allowed) {
      return { code: "too-many-step-events", message: `job ${job.id}: ${body.kind} for ${body.step}: its ${allowed / 2} declared steps allow ${allowed} step events, all stored: not stored` };
    }
  }
  return null;
}

/**
 * Call inside a transaction, with the job's current row. The agent already caps a job's output
 * (head, marker, tail); `caps` are the worker's own guard against an agent that does not.
 */
export function storeEvent(
  sql: SqlStorage,
  job: JobRow,
  seq: number,
  at: number,
  body: JobEventBody,
  now: number,
  caps: OutputCaps = OUTPUT_CAPS,
): EventOutcome {
  if (seq <= job.acked_seq) return { kind: "duplicate", acked: job.acked_seq };
  if (seq !== job.acked_seq + 1) return { kind: "gap", acked: job.acked_seq };
  const refused = refusal(sql, job, seq, body);
  if (refused) {
    setAckedSeq(sql, job.id, seq);
    return { kind: "refused", acked: seq, ...refused };
  }

  const ended = endedByWorker(sql, job, at);
  switch (body.kind) {
    case "step-start":
      sql.exec("INSERT OR IGNORE INTO job_events (job_id, seq, at, kind, step) VALUES (?, ?, ?, ?, ?)", job.id, seq, at, body.kind, body.step);
      countStepEvent(sql, job.id);
      stepStarted(sql, job.id, body.step, at, ended);
      break;
    case "output": {
      const bytes = typeof body.data === "string" ? utf8Length(body.data) : body.data.byteLength;
      // Nothing to keep, and a row would still cost its overhead: acked, not stored.
      if (bytes === 0) return notStored(sql, job.id, seq, "empty", false);
      // Head only: once dropping, keep dropping (so a log never resumes mid-way after a gap).
      const fits = job.output_dropped === 0 && job.output_bytes + bytes <= caps.bytes && job.log_rows < caps.rows;
      if (!fits) {
        countOutput(sql, job.id, bytes, "dropped");
        return notStored(sql, job.id, seq, "over-cap", job.output_dropped === 0);
      }
      sql.exec(
        "INSERT OR IGNORE INTO job_events (job_id, seq, at, kind, step, stream, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        job.id,
        seq,
        at,
        body.kind,
        body.step,
        body.stream,
        storedData(body.data),
      );
      countOutput(sql, job.id, bytes, "stored");
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
      countStepEvent(sql, job.id);
      stepEnded(sql, job.id, body.step, body.status, body.exitCode, at, ended);
      break;
    case "job-end": {
      if (ended) {
        // Before the job-end is acked: the note reads just above the agent's "--- job <status>".
        addNote(sql, job.id, `agent ${job.agent} ended this job ${body.status} after the worker had ended it ${job.status}: its steps show what ran there; the job stays ${job.status}`, now);
      }
      sql.exec("INSERT OR IGNORE INTO job_events (job_id, seq, at, kind, status) VALUES (?, ?, ?, ?, ?)", job.id, seq, at, body.kind, body.status);
      // Stored only: the caller ends the job (deployments/lifecycle.ts endJob) in the same transaction.
      setEndSeq(sql, job.id, seq);
      break;
    }
    default:
      assertNever(body, "event body");
  }
  setAckedSeq(sql, job.id, seq);
  return { kind: "stored", acked: seq };
}

/**
 * A job the DO ended itself (a deadline, a cancel, a revoke) while its agent, cut off, may have gone on
 * running it: its status stays what its deployment and GitHub were told, and the agent's events, when
 * they come, still show what ran — its steps (steps.ts EndedByWorker) and, if the DO never saw it
 * start, its start. Null for a queued or running job.
 */
function endedByWorker(sql: SqlStorage, job: JobRow, at: number): EndedByWorker | null {
  if (job.status === "queued" || job.status === "running" || job.finished_at === null) return null;
  if (job.started_at === null) sql.exec("UPDATE jobs SET started_at = ? WHERE id = ? AND started_at IS NULL", at, job.id);
  return { finishedAt: job.finished_at, leftover: leftoverRunningStep(jobStatusOf(job.status)) };
}

/** Acked without a row: the agent drops it from its spool like any acked event. */
function notStored(sql: SqlStorage, jobId: string, seq: number, why: "empty" | "over-cap", first: boolean): EventOutcome {
  setAckedSeq(sql, jobId, seq);
  return { kind: "not-stored", acked: seq, why, first };
}
