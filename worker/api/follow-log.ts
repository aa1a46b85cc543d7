/**
 * `GET …/jobs/:id/log?follow=1`: the log as server-sent events until the job ends. Each `log` event
 * carries a piece of text (one `data:` line per line; the client joins them with "\n") and its last
 * seq as `id`, so a reconnecting client resumes with `Last-Event-ID`; an `end` event closes it.
 */
const POLL_MS = 500;

export interface LogPageSource {
  getLogPage(
    id: string,
    step: string | null,
    afterSeq: number,
    atLineStart: boolean,
  ): Promise<{ text: string; lastSeq: number; atLineStart: boolean; more: boolean; ended: boolean } | null>;
}

function sseEvent(event: string, data: string, id?: number): string {
  const lines = data.split("\n").map((l) => `data: ${l}`);
  return `${id === undefined ? "" : `id: ${id}\n`}event: ${event}\n${lines.join("\n")}\n\n`;
}

export function followLog(source: LogPageSource, jobId: string, step: string | null, afterSeq: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let seq = afterSeq;
  let atLineStart = true;
  let canceled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (canceled) return;
        const page = await source.getLogPage(jobId, step, seq, atLineStart);
        if (!page) {
          controller.enqueue(encoder.encode(sseEvent("end", JSON.stringify({ error: "no such job" }))));
          controller.close();
          return;
        }
        seq = page.lastSeq;
        atLineStart = page.atLineStart;
        if (page.text) controller.enqueue(encoder.encode(sseEvent("log", page.text, seq)));
        if (!page.more && page.ended) {
          controller.enqueue(encoder.encode(sseEvent("end", JSON.stringify({ lastSeq: seq }))));
          controller.close();
          return;
        }
        if (page.text) return; // let the client read; the next pull continues
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    },
    cancel() {
      canceled = true;
    },
  });
}
