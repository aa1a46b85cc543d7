/**
 * An `application/x-www-form-urlencoded` body, read with a size cap by the webhook's reader
 * (webhook/body.ts: the stream is counted, not trusted to match Content-Length). Outcomes are values:
 * 415 for another content type, 413 past the cap, 400 for bytes that are not UTF-8 or a body stream
 * that failed.
 */
import { readCappedBody } from "../webhook/body.ts";

export type FormBody = { ok: true; fields: URLSearchParams } | { ok: false; status: 400 | 413 | 415; error: string };

const FORM_TYPE = "application/x-www-form-urlencoded";

export async function readFormBody(request: Request, maxBytes: number): Promise<FormBody> {
  const type = (request.headers.get("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== FORM_TYPE) return { ok: false, status: 415, error: `the body must be ${FORM_TYPE}` };
  const body = await readCappedBody(request, maxBytes);
  if (!body.ok) {
    // No reservation is passed, so no 503; a failed stream (the sender went away) is the 400.
    return body.status === 413 ? { ok: false, status: 413, error: `the form must be at most ${maxBytes} bytes` } : { ok: false, status: 400, error: body.reason };
  }
  try {
    return { ok: true, fields: new URLSearchParams(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body.bytes)) };
  } catch {
    return { ok: false, status: 400, error: "the form is not UTF-8" };
  }
}
