/**
 * Keeping outgoing `event` frames within MAX_FRAME_BYTES: output data is cut into pieces whose
 * JSON-escaped UTF-8 size fits the frame's budget, never inside a surrogate pair.
 */
import { MAX_FRAME_BYTES, type AgentMessage, type OutputStream } from "../shared/protocol.ts";

/**
 * Splits `data` into pieces each taking at most `maxBytes` once JSON-escaped (as JSON.stringify
 * writes it, UTF-8), never inside a surrogate pair. One pass, no allocation but the pieces.
 */
export function splitEscaped(data: string, maxBytes: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < data.length; ) {
    // A run of characters that take one byte each (printable ASCII but " and \\), found natively:
    // most output is such runs, and they need no look at each character.
    PLAIN_END.lastIndex = i;
    const end = PLAIN_END.exec(data)?.index ?? data.length;
    if (end > i) {
      const room = maxBytes - bytes;
      if (end - i > room) {
        if (room > 0) i += room;
        pieces.push(data.slice(start, i));
        start = i;
        bytes = 0;
        continue;
      }
      bytes += end - i;
      i = end;
      if (i >= data.length) break;
    }
    const c = data.charCodeAt(i);
    let b: number;
    let units = 1;
    if (c < 0x80) b = c === 0x22 || c === 0x5c ? 2 : c >= 0x20 ? 1 : c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d ? 2 : 6;
    else if (c < 0x800) b = 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const n = data.charCodeAt(i + 1);
      if (n >= 0xdc00 && n <= 0xdfff) {
        b = 4;
        units = 2;
      } else b = 6; // lone high surrogate: JSON.stringify escapes it
    } else if (c >= 0xdc00 && c <= 0xdfff) b = 6; // lone low surrogate
    else b = 3;
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

/** The first character that does not take exactly one byte in JSON: not printable ASCII, or " or \\. */
const PLAIN_END = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g;

/** Output data split so every `event` frame carrying a piece stays ≤ MAX_FRAME_BYTES. */
export function splitOutput(jobId: string, step: string | null, stream: OutputStream, data: string): string[] {
  const empty = {
    type: "event",
    jobId,
    seq: Number.MAX_SAFE_INTEGER,
    at: 9_999_999_999_999,
    body: { kind: "output", step, stream, data: "" },
  } satisfies AgentMessage;
  const overhead = Buffer.byteLength(JSON.stringify(empty));
  return splitEscaped(data, MAX_FRAME_BYTES - overhead);
}
