/** The webhook body, after its signature checked out: content type, JSON, and a push's typed fields. */
import { SHA_HINT, SHA_PATTERN } from "../../shared/protocol.ts";
import { InvalidInput, Reader } from "../../shared/reader.ts";

export type ParsedBody = { ok: true; value: unknown } | { ok: false; status: 400 | 415; error: string };

const decoder = new TextDecoder();

function parseJson(text: string, what: string): ParsedBody {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    return { ok: false, status: 400, error: `${what} is not valid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** `application/json`, or `application/x-www-form-urlencoded` with the JSON in its `payload` field. */
export function parseBody(contentType: string | null, bytes: Uint8Array): ParsedBody {
  const mediaType = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  switch (mediaType) {
    case "application/json":
      return parseJson(decoder.decode(bytes), "body");
    case "application/x-www-form-urlencoded": {
      const payload = new URLSearchParams(decoder.decode(bytes)).get("payload");
      if (payload === null) return { ok: false, status: 400, error: "form body has no payload field" };
      return parseJson(payload, "payload field");
    }
    default:
      return {
        ok: false,
        status: 415,
        error: `Content-Type ${contentType ? JSON.stringify(contentType) : "missing"}: expected application/json or application/x-www-form-urlencoded`,
      };
  }
}

export interface PushFields {
  repo: string;
  ref: string;
  sha: string;
  before: string;
  deleted: boolean;
  pusher: string;
}

export type PushResult = { ok: true; push: PushFields } | { ok: false; error: string };

export function readPush(payload: unknown): PushResult {
  try {
    const r = new Reader(payload);
    if (!r.isObject()) r.fail("expected a JSON object");
    const deleted = r.has("deleted") ? r.field("deleted").boolean() : false;
    return {
      ok: true,
      push: {
        repo: r.field("repository").field("full_name").string({ max: 200, pattern: /^[^/\s]+\/[^/\s]+$/, patternHint: "must be owner/name" }),
        ref: r.field("ref").string({ max: 300, pattern: /^refs\/[^\x00-\x1f\x7f]+$/, patternHint: "must be refs/…" }),
        sha: r.field("after").string({ pattern: SHA_PATTERN, patternHint: SHA_HINT }),
        before: r.field("before").string({ pattern: SHA_PATTERN, patternHint: SHA_HINT }),
        deleted,
        pusher: r.field("pusher").field("name").string({ max: 200 }),
      },
    };
  } catch (e) {
    if (e instanceof InvalidInput) return { ok: false, error: `invalid push payload: ${e.message}` };
    throw e;
  }
}

/** `hook_id` from a ping payload, if it is there. */
export function pingHookId(payload: unknown, header: string | null): number | string | null {
  const r = new Reader(payload);
  const fromPayload = r.isObject() ? r.field("hook_id").value : undefined;
  if (typeof fromPayload === "number") return fromPayload;
  if (header !== null && /^\d+$/.test(header)) return Number(header);
  return header;
}
