/**
 * Reading a request body with a byte cap, into one buffer: the declared length is checked first (and
 * sizes the buffer), then the bytes are counted while streaming. Each chunk is copied in and dropped,
 * so an unverified body is held once, not as chunks plus a joined copy. The buffer is reserved in a
 * BodyReservation (body-budget.ts) before it is allocated or grown; the caller releases it.
 */
import type { BodyReservation } from "./body-budget.ts";

export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

/** Without a Content-Length the buffer starts here and doubles (capped), so a small body stays small. */
const INITIAL_BYTES = 64 * 1024;

/** ES2024's resizable ArrayBuffer: workerd has it; the ES2023 lib this project compiles against does not. */
interface ResizableArrayBuffer extends ArrayBuffer {
  resize(byteLength: number): void;
}
const ResizableArrayBuffer = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableArrayBuffer;

export type BodyResult =
  | { ok: true; bytes: Uint8Array<ArrayBuffer> }
  /** 413: past the cap; 503: the budget has no room now; 400: the body stream failed (the sender went away). */
  | { ok: false; status: 400 | 413 | 503; reason: string };

/** No budget: for callers that hold nothing unverified. */
const UNBOUNDED: BodyReservation = { limitBytes: Infinity, grow: () => true, release: () => {} };

export function tooLargeReason(maxBytes: number): string {
  return `body larger than ${maxBytes} bytes`;
}

/** The Content-Length header as a number, or null when absent or not a plain decimal. */
function declaredLength(request: Request): number | null {
  const declared = request.headers.get("Content-Length");
  return declared !== null && /^\d{1,16}$/.test(declared) ? Number(declared) : null;
}

export function declaredTooLarge(request: Request, maxBytes: number): boolean {
  const declared = declaredLength(request);
  return declared !== null && declared > maxBytes;
}

export function overBudgetReason(limitBytes: number): string {
  return `busy: unverified webhook bodies already hold this worker's ${limitBytes}-byte budget; retry later`;
}

export async function readCappedBody(request: Request, maxBytes: number, reservation: BodyReservation = UNBOUNDED): Promise<BodyResult> {
  const tooLarge: BodyResult = { ok: false, status: 413, reason: tooLargeReason(maxBytes) };
  const overBudget: BodyResult = { ok: false, status: 503, reason: overBudgetReason(reservation.limitBytes) };
  const declared = declaredLength(request);
  if (declared !== null && declared > maxBytes) return tooLarge;
  if (request.body === null) return { ok: true, bytes: new Uint8Array(0) };
  const initial = declared ?? Math.min(INITIAL_BYTES, maxBytes);
  // Before a byte is read: a body the budget cannot hold is never started (and left alone, as an
  // unsigned one is: the runtime drops it with the request).
  if (!reservation.grow(initial)) return overBudget;
  const reader = request.body.getReader();
  // Without a (truthful) Content-Length the buffer grows in place (a resizable ArrayBuffer, never past
  // the cap): no grown-out copies left behind for the collector.
  const buffer = new ResizableArrayBuffer(initial, { maxByteLength: maxBytes });
  let bytes = new Uint8Array(buffer);
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const needed = total + value.byteLength;
      if (needed > maxBytes) {
        await reader.cancel().catch(() => {});
        return tooLarge;
      }
      if (needed > buffer.byteLength) {
        const size = Math.min(maxBytes, Math.max(needed, buffer.byteLength * 2));
        if (!reservation.grow(size)) {
          await reader.cancel().catch(() => {});
          return overBudget;
        }
        buffer.resize(size);
        bytes = new Uint8Array(buffer);
      }
      bytes.set(value, total);
      total = needed;
    }
  } catch (e) {
    return { ok: false, status: 400, reason: `the body could not be read: ${e instanceof Error ? e.message : String(e)}` };
  }
  return { ok: true, bytes: new Uint8Array(buffer, 0, total) };
}
