/**
 * `GET …/jobs/:id/log?follow=1`: the log as server-sent events until the job ends. Each `log` event's
 * data is one JSON string holding a piece of the log (the client JSON-parses it and appends it); its
 * `id` is where the piece ended, `<seq>:<note>` (the last agent event seq and worker note id it
 * covers), so a reconnecting client resumes with `Last-Event-ID`; an `end` event (data: JSON) closes it.
 *
 * SSE ends a line at "\r\n", "\n" and a lone "\r" alike, so raw log text in a `data:` line would let
 * step output (git and pip progress bars print bare "\r") end the line and forge `id:` or `event:`
 * lines. JSON.stringify escapes both, so nothing from the log reaches the framing.
 */
import { LOG_START, type LogCursor } from "../target-object/jobs/log-reader.ts";

const POLL_MS = 500;

export interface LogPageSource {
  getLogPage(
    id: string,
    step: string | null,
    after: LogCursor,
    atLineStart: boolean,
  ): Promise<{ text: string; cursor: LogCursor; atLineStart: boolean; more: boolean; ended: boolean } | null>;
}

/** `Last-Event-ID` back into a cursor: `<seq>:<note>`, or a bare `<seq>`; anything else starts over. */
export function cursorFromEventId(header: string | undefined): LogCursor {
  const m = /^(\d{1,15})(?::(\d{1,15}))?$/.exec(header ?? "");
  return m ? { seq: Number(m[1]), note: Number(m[2] ?? "0") } : LOG_START;
}

/** `json` must be JSON.stringify output: it holds no CR or LF, so it is one `data:` line. */
function sseEvent(event: string, json: string, cursor?: LogCursor): string {
  return `${cursor === undefined ? "" : `id: ${cursor.seq}:${cursor.note}\n`}event: ${event}\ndata: ${json}\n\n`;
}

export function followLog(source: LogPageSource, jobId: string, step: string | null, after: LogCursor): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let cursor = after;
  let atLineStart = true;
  let canceled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (canceled) return;
        const page = await source.getLogPage(jobId, step, cursor, atLineStart);
        if (!page) {
          controller.enqueue(encoder.encode(sseEvent("end", JSON.stringify({ error: "no such job" }))));
          controller.close();
          return;
        }
        cursor = page.cursor;
        atLineStart = page.atLineStart;
        if (page.text) controller.enqueue(encoder.encode(sseEvent("log", JSON.stringify(page.text), cursor)));
        if (!page.more && page.ended) {
          controller.enqueue(encoder.encode(sseEvent("end", JSON.stringify({ lastSeq: cursor.seq }))));
          controller.close();
          return;
        }
        if (page.text) return; // let the client read; the next pull continues
        // A full page without text (rows with no data) is read past at once; only the live end waits.
        if (!page.more) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    },
    cancel() {
      canceled = true;
    },
  });
}
