/**
 * Keeping outgoing output frames within MAX_FRAME_BYTES, and every output event whole characters:
 * the worker decodes each event's bytes on its own (worker/target-object/jobs/log-reader.ts), so an event never
 * ends inside a UTF-8 sequence that the next one completes.
 *
 * A cut is safe where the bytes before it do not end with the start of a character that the bytes
 * after it would finish (`incompleteTail`): a decoder there is between characters, or has already
 * given up on malformed bytes; so the two sides decode to the same text as the whole.
 */
import { MAX_FRAME_BYTES, OUTPUT_FRAME_OVERHEAD_BYTES } from "../../shared/protocol.ts";

/** The most output bytes one frame carries. */
export const MAX_OUTPUT_PIECE_BYTES = MAX_FRAME_BYTES - OUTPUT_FRAME_OVERHEAD_BYTES;

const isContinuation = (b: number) => (b & 0xc0) === 0x80;

/**
 * How many bytes at the end of `bytes` begin a character the next bytes would complete (0–3): the
 * bytes from a lead byte (11xxxxxx) among the last three, when fewer follow it than it announces.
 */
export function incompleteTail(bytes: Uint8Array): number {
  for (let i = 1; i <= Math.min(3, bytes.length); i++) {
    const b = bytes[bytes.length - i]!;
    if (isContinuation(b)) continue;
    if (b < 0xc0) return 0; // ASCII: complete
    const needs = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    return needs > i ? i : 0;
  }
  return 0;
}

/** `data` cut into pieces of at most `maxBytes` (≥ 4), each ending on a character boundary. No copies: views of `data`. */
export function splitOutput(data: Uint8Array, maxBytes = MAX_OUTPUT_PIECE_BYTES): Uint8Array[] {
  if (data.length <= maxBytes) return [data];
  const pieces: Uint8Array[] = [];
  let start = 0;
  while (data.length - start > maxBytes) {
    const end = start + maxBytes;
    const cut = end - incompleteTail(data.subarray(start, end));
    pieces.push(data.subarray(start, cut));
    start = cut;
  }
  pieces.push(data.subarray(start));
  return pieces;
}
