/**
 * `GET …/jobs/:id/log?follow=1`: the log as server-sent events until the job ends, through Hono's
 * `streamSSE`. Each `log` event's data is one JSON string holding a piece of the log (the client
 * JSON-parses it and appends it); its `id` is where the piece ended, `<seq>:<note>` (the last agent
 * event seq and worker note id it covers), so a reconnecting client resumes with `Last-Event-ID`; an
 * `end` event (data: JSON) closes it. A client that goes away aborts the stream, and the loop stops
 * asking the Target DO for pages.
 *
 * SSE ends a line at "\r\n", "\n" and a lone "\r" alike, so raw log text in a `data:` line would let
 * step output (git and pip progress bars print bare "\r") end the line and forge `id:` or `event:`
 * lines. JSON.stringify escapes both, so each piece is one `data:` line and nothing from the log
 * reaches the framing (streamSSE would split raw text into several `data:` lines, which is safe too,
 * but the JSON string is the contract the clients read).
 */
import type { Context } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { logError } from "../console-lines.ts";
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

/** Writes the log's pages to `stream` until the job ends or the client goes away (the stream aborts). */
export async function pumpLog(stream: SSEStreamingApi, source: LogPageSource, jobId: string, step: string | null, after: LogCursor): Promise<void> {
  let cursor = after;
  let atLineStart = true;
  while (!stream.aborted) {
    const page = await source.getLogPage(jobId, step, cursor, atLineStart);
    if (!page) {
      await stream.writeSSE({ event: "end", data: JSON.stringify({ error: "no such job" }) });
      return;
    }
    cursor = page.cursor;
    atLineStart = page.atLineStart;
    // writeSSE resolves once the client has room: a slow reader slows the reads from the DO.
    if (page.text) await stream.writeSSE({ event: "log", data: JSON.stringify(page.text), id: `${cursor.seq}:${cursor.note}` });
    if (!page.more && page.ended) {
      await stream.writeSSE({ event: "end", data: JSON.stringify({ lastSeq: cursor.seq }) });
      return;
    }
    // A full page without text (rows with no data) is read past at once; only the live end waits.
    if (!page.text && !page.more && !stream.aborted) await stream.sleep(POLL_MS);
  }
}

export function followLog(c: Context, source: LogPageSource, jobId: string, step: string | null, after: LogCursor): Response {
  // Caught here, not by streamSSE's onError, which would write the error's message to the client. The
  // stream just ends; an EventSource reconnects with Last-Event-ID and resumes.
  return streamSSE(c, async (stream) => {
    try {
      await pumpLog(stream, source, jobId, step, after);
    } catch (e) {
      logError(`[job ${jobId}] the live log stream failed:`, e);
    }
  });
}
