/** The webhook body, after its signature checked out: content type, JSON, and a push's typed fields. */
import { errorMessage } from "../../shared/errors.ts";
import { jobFieldProblem, type JobFields } from "../../shared/job-fields.ts";
import { InvalidInput, Reader } from "../../shared/reader.ts";
import { textValueProblem } from "../../shared/text-value.ts";
import { BRANCH_PREFIX } from "../target-object/deployments/matching.ts";
import { pushedAtMs } from "./freshness.ts";

export type ParsedBody = { ok: true; value: unknown } | { ok: false; status: 400 | 415; error: string };

const decoder = new TextDecoder();

function parseJson(text: string, what: string): ParsedBody {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    return { ok: false, status: 400, error: `${what} is not valid JSON: ${errorMessage(e)}` };
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

/** A push's job fields (delivery and event come from its headers), and what decides whether it deploys. */
export interface PushFields extends Omit<JobFields, "delivery" | "event"> {
  deleted: boolean;
  /** `repository.pushed_at` in ms, or null when missing or not a time (freshness.ts). */
  pushedAt: number | null;
  /** The head commit's first line, for people (commitTitle); "" when there is none. */
  message: string;
}

/** A commit title is shown, never acted on: at most this many characters (GitHub's own UI cuts at 72). */
export const MAX_TITLE_CHARS = 200;

/**
 * The first line of a commit message, for a deployment's page and reports. Never a reason to refuse a
 * push: anything that is not text becomes "", control characters and unpaired surrogates become
 * U+FFFD, and past MAX_TITLE_CHARS it is cut with "…".
 */
export function commitTitle(value: unknown): string {
  if (typeof value !== "string") return "";
  const first = (value.split(/\r\n|\r|\n/, 1)[0] ?? "").trim();
  const clean = first.replace(/[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
  const chars = Array.from(clean);
  return chars.length > MAX_TITLE_CHARS ? `${chars.slice(0, MAX_TITLE_CHARS - 1).join("")}…` : clean;
}

export type PushResult = { ok: true; push: PushFields } | { ok: false; error: string };

/** A ref that makes no job (tag, deletion) still goes into the answer and the log: it must be text. */
const MAX_REF_BYTES = 1024;

/**
 * The push's fields, each checked by the rules its job field must pass (shared/job-fields.ts), so a
 * value no agent could run with is refused here, naming the field and why, before any job exists.
 */
export function readPush(payload: unknown): PushResult {
  try {
    const r = new Reader(payload);
    if (!r.isObject()) r.fail("expected a JSON object");
    const deleted = r.has("deleted") ? r.field("deleted").boolean() : false;
    const checked = (field: Reader, problem: (value: string) => string | null): string => {
      const value = field.string();
      const why = problem(value);
      if (why !== null) field.fail(why);
      return value;
    };
    const repository = r.field("repository");
    const repo = checked(repository.field("full_name"), (v) => jobFieldProblem("repo", v));
    const ref = checked(r.field("ref"), (v) => {
      const text = textValueProblem(v, { maxBytes: MAX_REF_BYTES });
      if (text !== null) return text;
      if (!v.startsWith("refs/")) return "must be refs/…";
      // Only a branch push becomes a job; tags and deletions are answered `ignored`.
      return v.startsWith(BRANCH_PREFIX) && !deleted ? jobFieldProblem("ref", v) : null;
    });
    return {
      ok: true,
      push: {
        repo,
        ref,
        sha: checked(r.field("after"), (v) => jobFieldProblem("sha", v)),
        before: checked(r.field("before"), (v) => jobFieldProblem("before", v)),
        deleted,
        pusher: checked(r.field("pusher").field("name"), (v) => jobFieldProblem("pusher", v)),
        pushedAt: pushedAtMs(repository.field("pushed_at").value),
        message: commitTitle(headCommitMessage(r)),
      },
    };
  } catch (e) {
    if (e instanceof InvalidInput) return { ok: false, error: `invalid push payload: ${e.message}` };
    throw e;
  }
}

/** `head_commit.message`, when head_commit is an object (it is null for a deleted branch). */
function headCommitMessage(r: Reader): unknown {
  const head = r.field("head_commit");
  return head.isObject() ? head.field("message").value : undefined;
}

/** `hook_id` from a ping payload, if it is there. */
export function pingHookId(payload: unknown, header: string | null): number | string | null {
  const r = new Reader(payload);
  const fromPayload = r.isObject() ? r.field("hook_id").value : undefined;
  if (typeof fromPayload === "number") return fromPayload;
  if (header !== null && /^\d+$/.test(header)) return Number(header);
  return header;
}
