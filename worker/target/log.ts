/**
 * A job's log, read from `job_events` page by page (a log can be up to the output cap, far more
 * than one RPC message should carry): the whole job with a header line per step start/end, or one
 * step's raw output, byte-exact.
 */
import { OUTPUT_CAP_BYTES } from "./events.ts";

const PAGE_ROWS = 256;

interface EventRow extends Record<string, SqlStorageValue> {
  seq: number;
  kind: string;
  step: string | null;
  data: string | null;
  status: string | null;
  exit_code: number | null;
}

export interface LogPage {
  text: string;
  /** The last seq this page covered (pass it back as `afterSeq`). */
  lastSeq: number;
  /** Whether the text ended at the start of a line (so the next header needs no newline first). */
  atLineStart: boolean;
  /** Whether more rows may follow right away. */
  more: boolean;
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

export function readLogPage(sql: SqlStorage, jobId: string, step: string | null, afterSeq: number, atLineStart: boolean, limit = PAGE_ROWS): LogPage {
  const columns = "SELECT seq, kind, step, data, status, exit_code FROM job_events";
  const rows = step
    ? sql.exec<EventRow>(`${columns} WHERE job_id = ? AND seq > ? AND kind = 'output' AND step = ? ORDER BY seq LIMIT ?`, jobId, afterSeq, step, limit).toArray()
    : sql.exec<EventRow>(`${columns} WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?`, jobId, afterSeq, limit).toArray();
  let text = "";
  let lastSeq = afterSeq;
  for (const row of rows) {
    lastSeq = row.seq;
    const header = step ? null : headerLine(row);
    if (header !== null) {
      text += `${atLineStart ? "" : "\n"}${header}\n`;
      atLineStart = true;
    } else if (row.data) {
      text += row.data;
      atLineStart = row.data.endsWith("\n");
    }
  }
  return { text, lastSeq, atLineStart, more: rows.length === limit };
}

export function omittedMarker(droppedBytes: number, atLineStart: boolean): string {
  return `${atLineStart ? "" : "\n"}--- [hookrelay] ${droppedBytes} bytes of output omitted (past the worker's ${OUTPUT_CAP_BYTES}-byte log cap)\n`;
}

export function logStream(sql: SqlStorage, jobId: string, step: string | null, droppedBytes: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let afterSeq = 0;
  let atLineStart = true;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const page = readLogPage(sql, jobId, step, afterSeq, atLineStart);
      afterSeq = page.lastSeq;
      atLineStart = page.atLineStart;
      let text = page.text;
      if (!page.more && !step && droppedBytes > 0) text += omittedMarker(droppedBytes, atLineStart);
      if (text) controller.enqueue(encoder.encode(text));
      if (!page.more) controller.close();
    },
  });
}
