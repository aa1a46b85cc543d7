/**
 * A job's log as a byte stream, read from `job_events` page by page (a log can be up to the output
 * cap, far more than one RPC message should carry in one piece).
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

/**
 * `step` set: that step's raw output only, byte-exact. Otherwise the whole job in seq order,
 * with a header line per step start/end (always starting on a fresh line).
 */
export function logStream(sql: SqlStorage, jobId: string, step: string | null, droppedBytes: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let afterSeq = 0;
  let atLineStart = true;
  let done = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (done) return;
      const rows = step
        ? sql
            .exec<EventRow>(
              "SELECT seq, kind, step, data, status, exit_code FROM job_events WHERE job_id = ? AND seq > ? AND kind = 'output' AND step = ? ORDER BY seq LIMIT ?",
              jobId,
              afterSeq,
              step,
              PAGE_ROWS,
            )
            .toArray()
        : sql
            .exec<EventRow>(
              "SELECT seq, kind, step, data, status, exit_code FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
              jobId,
              afterSeq,
              PAGE_ROWS,
            )
            .toArray();
      let text = "";
      for (const row of rows) {
        afterSeq = row.seq;
        const header = step ? null : headerLine(row);
        if (header !== null) {
          text += `${atLineStart ? "" : "\n"}${header}\n`;
          atLineStart = true;
        } else if (row.data) {
          text += row.data;
          atLineStart = row.data.endsWith("\n");
        }
      }
      if (rows.length < PAGE_ROWS) {
        done = true;
        if (!step && droppedBytes > 0) {
          text += `${atLineStart ? "" : "\n"}--- [hookrelay] ${droppedBytes} bytes of output omitted (past the worker's ${OUTPUT_CAP_BYTES}-byte log cap)\n`;
        }
      }
      if (text) controller.enqueue(encoder.encode(text));
      if (done) controller.close();
    },
  });
}
