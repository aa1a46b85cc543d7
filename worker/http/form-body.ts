/**
 * An `application/x-www-form-urlencoded` body with a size cap: `formBodyLimit` is Hono's `bodyLimit`
 * (it checks a declared Content-Length, else counts the stream, and answers 413 past the cap),
 * `readFormBody` the fields behind it. Outcomes are values: 415 for another content type, 400 for bytes
 * that are not UTF-8 or a body stream that failed.
 */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./app-env.ts";

export type FormBody = { ok: true; fields: URLSearchParams } | { ok: false; status: 400 | 415; error: string };

const FORM_TYPE = "application/x-www-form-urlencoded";

/** 413 (text, naming the cap) for a body over `maxBytes`; goes before the handler that reads the form. */
export function formBodyLimit(maxBytes: number): MiddlewareHandler<AppEnv> {
  return bodyLimit({ maxSize: maxBytes, onError: (c) => c.text(`the form must be at most ${maxBytes} bytes`, 413) });
}

export async function readFormBody(c: Context<AppEnv>): Promise<FormBody> {
  const type = (c.req.header("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== FORM_TYPE) return { ok: false, status: 415, error: `the body must be ${FORM_TYPE}` };
  let bytes: ArrayBuffer;
  try {
    bytes = await c.req.arrayBuffer();
  } catch (e) {
    return { ok: false, status: 400, error: `the body could not be read: ${e instanceof Error ? e.message : String(e)}` };
  }
  try {
    return { ok: true, fields: new URLSearchParams(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)) };
  } catch {
    return { ok: false, status: 400, error: "the form is not UTF-8" };
  }
}
