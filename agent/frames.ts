/**
 * Keeping outgoing `event` frames within MAX_FRAME_BYTES: output data is cut into pieces whose
 * JSON-escaped UTF-8 size fits the frame's budget, never inside a surrogate pair.
 */
import { MAX_FRAME_BYTES, type AgentMessage, type OutputStream, utf8Length } from "../shared/protocol.ts";

/** Bytes one UTF-16 code unit (or pair) takes inside a JSON string, and how many units it spans. */
function escapedSize(text: string, i: number): [bytes: number, units: number] {
  const c = text.charCodeAt(i);
  if (c === 0x22 || c === 0x5c) return [2, 1];
  if (c < 0x20) return c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? [2, 1] : [6, 1];
  if (c < 0x80) return [1, 1];
  if (c < 0x800) return [2, 1];
  if (c >= 0xd800 && c <= 0xdbff) {
    const n = text.charCodeAt(i + 1);
    return n >= 0xdc00 && n <= 0xdfff ? [4, 2] : [6, 1];
  }
  if (c >= 0xdc00 && c <= 0xdfff) return [6, 1]; // lone low surrogate: JSON.stringify escapes it
  return [3, 1];
}

/** Splits `data` into pieces each taking at most `maxBytes` once JSON-escaped. */
export function splitEscaped(data: string, maxBytes: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < data.length; ) {
    const [b, units] = escapedSize(data, i);
    if (bytes + b > maxBytes && i > start) {
      pieces.push(data.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += b;
    i += units;
  }
  if (start < data.length || pieces.length === 0) pieces.push(data.slice(start));
  return pieces;
}

/** Output data split so every `event` frame carrying a piece stays ≤ MAX_FRAME_BYTES. */
export function splitOutput(jobId: string, step: string | null, stream: OutputStream, data: string): string[] {
  const empty = {
    type: "event",
    jobId,
    seq: Number.MAX_SAFE_INTEGER,
    at: 9_999_999_999_999,
    body: { kind: "output", step, stream, data: "" },
  } satisfies AgentMessage;
  const overhead = utf8Length(JSON.stringify(empty));
  return splitEscaped(data, MAX_FRAME_BYTES - overhead);
}
