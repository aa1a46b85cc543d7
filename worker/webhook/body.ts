/** Reading a request body with a byte cap: the declared length is checked first, then counted while streaming. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

export type BodyResult = { ok: true; bytes: Uint8Array<ArrayBuffer> } | { ok: false; reason: string };

export async function readCappedBody(request: Request, maxBytes: number): Promise<BodyResult> {
  const tooLarge: BodyResult = { ok: false, reason: `body larger than ${maxBytes} bytes` };
  const declared = request.headers.get("Content-Length");
  if (declared !== null && Number(declared) > maxBytes) return tooLarge;
  if (request.body === null) return { ok: true, bytes: new Uint8Array(0) };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      return tooLarge;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { ok: true, bytes };
}
