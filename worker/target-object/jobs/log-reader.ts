/**
 * A job's log, read from `job_events` page by page (a log can be up to the output cap, far more
 * than one RPC message should carry): the whole job with a header line per step start/end and the
 * worker's notes in their place (text: each output event's bytes decoded as UTF-8, bytes that are not
read as U+FFFD), or one step's raw output: the bytes as the agent sent them, byte-exact.
 */
import { OUTPUT_CAP_BYTES } from "./events.ts";
import { noteLine, readNotes } from "./notes.ts";

const PAGE_ROWS = 256;

interface EventRow extends Record<string, SqlStorageValue> {
  seq: number;
  kind: string;
  step: string | null;
  /** Text from a JSON frame, or (protocol 3) the raw bytes of a binary one. */
  data: string | ArrayBuffer | null;
  status: string | null;
  exit_code: number | null;
}

/** Where a page ended: the last event seq and the last note id it covered. */
export interface LogCursor {
  seq: number;
  note: number;
}

export const LOG_START: LogCursor = { seq: 0, note: 0 };

export interface LogPage {
  text: string;
  /** Where this page ended (pass it back as `after`). */
  cursor: LogCursor;
  /** Whether the text ended at the start of a line (so the next header needs no newline first). */
  atLineStart: boolean;
  /** Whether more rows may follow right away. */
  more: boolean;
}

/** A byte-order mark is text like any other here: a decoder meets one at the start of every event, not of the stream. */
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * An output event's bytes as text. The agent ends each event on a character boundary, so decoding
 * events one by one gives what decoding the stream would; bytes that are not UTF-8 read as U+FFFD.
 */
function outputText(bytes: ArrayBuffer): string {
  return decoder.decode(bytes);
}

/** The human header for a step or job boundary, or null for an output row. */
function headerLine(row: EventRow): string | null {
  switch (row.kind) {
    case "step-start":
      return `--- ${row.step ?? ""}`;
    case "step-end":
      return `--- ${row.step ?? ""} ${row.status ?? ""} (exit ${row.exit_code ?? "none"})`;
    case "job-end":
      return `--- job ${row.status ?? ""}`;
    default:
      return null;
  }
}

export function readLogPage(sql: SqlStorage, jobId: string, step: string | null, after: LogCursor, atLineStart: boolean, limit = PAGE_ROWS): LogPage {
  const columns = "SELECT seq, kind, step, data, status, exit_code FROM job_events";
  const rows = step
    ? sql.exec<EventRow>(`${columns} WHERE job_id = ? AND seq > ? AND kind = 'output' AND step = ? ORDER BY seq LIMIT ?`, jobId, after.seq, step, limit).toArray()
    : sql.exec<EventRow>(`${columns} WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?`, jobId, after.seq, limit).toArray();
  // A step's raw output has no notes; the whole log has each after the event it followed.
  const notes = step ? [] : readNotes(sql, jobId, after.note, limit);
  const more = rows.length === limit || notes.length === limit;
  let text = "";
  const cursor = { ...after };
  const line = (l: string) => {
    text += `${atLineStart ? "" : "\n"}${l}\n`;
    atLineStart = true;
  };
  let n = 0;
  const notesBefore = (seq: number) => {
    for (; n < notes.length && notes[n]!.after_seq < seq; n++) {
      line(noteLine(notes[n]!.text));
      cursor.note = notes[n]!.id;
    }
  };
  for (const row of rows) {
    notesBefore(row.seq);
    cursor.seq = row.seq;
    const header = step ? null : headerLine(row);
    if (header !== null) line(header);
    else if (typeof row.data === "string" ? row.data !== "" : row.data !== null && row.data.byteLength > 0) {
      const data = typeof row.data === "string" ? row.data : outputText(row.data!);
      text += data;
      atLineStart = data.endsWith("\n");
    }
  }
  // Every event a note followed is stored before the note is written, so once no more events are
  // stored the remaining notes come last; while more may follow, they wait for the next page.
  if (rows.length < limit) notesBefore(Number.POSITIVE_INFINITY);
  return { text, cursor, atLineStart, more };
}

/** Output past the job's caps (events.ts): acked, counted, not stored. */
export interface DroppedOutput {
  bytes: number;
  events: number;
}

export function omittedMarker(dropped: DroppedOutput, atLineStart: boolean): string {
  const events = `${dropped.events} event${dropped.events === 1 ? "" : "s"}`;
  return `${atLineStart ? "" : "\n"}--- [hookrelay] ${dropped.bytes} bytes of output omitted, ${events} (past the worker's per-job log cap: ${OUTPUT_CAP_BYTES} bytes, or JOB_LOG_ROWS rows)\n`;
}

/** One step's output as stored: an event's bytes as they came (protocol 3), an older agent's text as UTF-8. */
function stepOutputStream(sql: SqlStorage, jobId: string, step: string): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let after = 0;
  return new ReadableStream<Uint8Array>({
    // Every pull enqueues or closes: a pull that does neither is never called again, and a page of
    // rows with no data (empty events, or those past the cap before it bounded rows) enqueues nothing.
    pull(controller) {
      for (;;) {
        const rows = sql
          .exec<{ seq: number; data: string | ArrayBuffer | null }>(
            "SELECT seq, data FROM job_events WHERE job_id = ? AND seq > ? AND kind = 'output' AND step = ? ORDER BY seq LIMIT ?",
            jobId,
            after,
            step,
            PAGE_ROWS,
          )
          .toArray();
        let enqueued = false;
        for (const row of rows) {
          after = row.seq;
          const bytes = typeof row.data === "string" ? (row.data === "" ? null : encoder.encode(row.data)) : row.data !== null && row.data.byteLength > 0 ? new Uint8Array(row.data) : null;
          if (bytes === null) continue;
          controller.enqueue(bytes);
          enqueued = true;
        }
        if (rows.length < PAGE_ROWS) {
          controller.close();
          return;
        }
        if (enqueued) return;
      }
    },
  });
}

/** The whole log as text, or with `step` that step's raw output (no headers, notes or marker). */
export function logStream(sql: SqlStorage, jobId: string, step: string | null, dropped: DroppedOutput): ReadableStream<Uint8Array> {
  if (step !== null) return stepOutputStream(sql, jobId, step);
  const encoder = new TextEncoder();
  let cursor = LOG_START;
  let atLineStart = true;
  return new ReadableStream<Uint8Array>({
    // As above: loop past pages with no text (every page advances the cursor) until one has some, or the end.
    pull(controller) {
      for (;;) {
        const page = readLogPage(sql, jobId, null, cursor, atLineStart);
        cursor = page.cursor;
        atLineStart = page.atLineStart;
        let text = page.text;
        if (!page.more && dropped.bytes > 0) text += omittedMarker(dropped, atLineStart);
        if (text) controller.enqueue(encoder.encode(text));
        if (!page.more) {
          controller.close();
          return;
        }
        if (text) return;
      }
    },
  });
}
