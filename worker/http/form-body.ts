/**
 * An `application/x-www-form-urlencoded` body, read with a size cap (the stream is counted, not trusted
 * to match Content-Length). Outcomes are values: 415 for another content type, 413 past the cap, 400
 * for bytes that are not UTF-8.
 */
export type FormBody = { ok: true; fields: URLSearchParams } | { ok: false; status: 400 | 413 | 415; error: string };

const FORM_TYPE = "application/x-www-form-urlencoded";

export async function readFormBody(request: Request, maxBytes: number): Promise<FormBody> {
  const type = (request.headers.get("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== FORM_TYPE) return { ok: false, status: 415, error: `the body must be ${FORM_TYPE}` };
  const tooLarge = { ok: false, status: 413, error: `the form must be at most ${maxBytes} bytes` } as const;
  const declared = Number(request.headers.get("Content-Length") ?? "0");
  if (declared > maxBytes) return tooLarge;
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        return tooLarge;
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  try {
    return { ok: true, fields: new URLSearchParams(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)) };
  } catch {
    return { ok: false, status: 400, error: "the form is not UTF-8" };
  }
}
