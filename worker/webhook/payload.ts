/** The webhook body, after its signature checked out: content type, JSON, and a push's typed fields. */
import { errorMessage } from "../../shared/errors.ts";
import { jobFieldProblem, type JobFields } from "../../shared/job-fields.ts";
import { InvalidInput, Reader } from "../../shared/reader.ts";
import { textValueProblem } from "../../shared/text-value.ts";
import { TAG_PREFIX } from "../../shared/gates.ts";
import { GITHUB_MAX_PUSH_COMMITS, MAX_CHANGED_FILE_CHARS, MAX_CHANGED_FILES } from "../../shared/limits.ts";
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

/** What a push is about, for gates: a branch, a tag, or something no pipeline deploys (and why). */
export type PushRef = { kind: "branch"; branch: string } | { kind: "tag"; tag: string } | { kind: "ignored"; reason: string };

/** A push as the gates read it (docs/operations.md, "Gates"): what it pushed, and which files its commits changed. */
export interface PushScope {
  ref: PushRef;
  /**
   * The files the push's commits added, modified or removed, each once, in the order first listed —
   * or null when the push cannot tell, and then `filesUnknown` says why. The paths filter passes a
   * null list (shared/gates.ts pathsFilter), as GitHub Actions runs when it cannot tell.
   */
  changedFiles: string[] | null;
  filesUnknown: string | null;
}

export type PushScopeResult = { ok: true; scope: PushScope } | { ok: false; error: string };

/**
 * The push's ref kind and changed files, for the DO's matching (route.ts hands `changedFiles` over with
 * the push; a pipeline's `paths` filter reads them). A ref is checked by the job's rule when it
 * can become a job (a branch or tag push, not deleted); the commit lists must be lists of strings.
 * The list is null (cannot tell) for: a tag push (GitHub Actions does not evaluate paths for tags),
 * a deletion, a new branch (`created`), a force-push (`forced`: it may drop commits), no commits listed, GITHUB_MAX_PUSH_COMMITS listed (GitHub cuts
 * the list there), more than MAX_CHANGED_FILES distinct files, or a path past MAX_CHANGED_FILE_CHARS.
 */
export function readPushScope(payload: unknown): PushScopeResult {
  try {
    const r = new Reader(payload);
    if (!r.isObject()) r.fail("expected a JSON object");
    const deleted = r.has("deleted") ? r.field("deleted").boolean() : false;
    const created = r.has("created") ? r.field("created").boolean() : false;
    const refField = r.field("ref");
    const ref = refField.string();
    const refText = textValueProblem(ref, { maxBytes: MAX_REF_BYTES });
    if (refText !== null) refField.fail(refText);
    const repo = r.field("repository").field("full_name").string({ max: 201 });
    const pushRef = readPushRef(refField, ref, deleted, repo);
    const unknown = (why: string): PushScopeResult => ({ ok: true, scope: { ref: pushRef, changedFiles: null, filesUnknown: why } });
    if (pushRef.kind === "ignored") return unknown(pushRef.reason);
    if (pushRef.kind === "tag") return unknown("a tag push: paths are not evaluated for tags (as in GitHub Actions)");
    if (created) return unknown("a new branch: its commits are not all listed");
    // A force-push's commits are only the new ones: what it dropped (a rollback) changed files too.
    if (r.has("forced") && r.field("forced").boolean()) return unknown("a force-push: its commits do not list what it dropped");
    if (!r.has("commits")) return unknown("no commits listed");
    const commits = r.field("commits").array();
    if (commits.length === 0) return unknown("no commits listed");
    if (commits.length >= GITHUB_MAX_PUSH_COMMITS) return unknown(`${commits.length} commits listed: GitHub lists at most ${GITHUB_MAX_PUSH_COMMITS}, so some may be missing`);
    const files = new Set<string>();
    for (const commit of commits) {
      if (!commit.isObject()) commit.fail("expected a commit object");
      for (const key of ["added", "removed", "modified"]) {
        if (!commit.has(key)) continue;
        for (const file of commit.field(key).array()) {
          const path = file.string();
          if (path.length > MAX_CHANGED_FILE_CHARS) return unknown(`a changed file's path is longer than ${MAX_CHANGED_FILE_CHARS} characters`);
          files.add(path);
          if (files.size > MAX_CHANGED_FILES) return unknown(`more than ${MAX_CHANGED_FILES} changed files`);
        }
      }
    }
    return { ok: true, scope: { ref: pushRef, changedFiles: [...files], filesUnknown: null } };
  } catch (e) {
    if (e instanceof InvalidInput) return { ok: false, error: `invalid push payload: ${e.message}` };
    throw e;
  }
}

function readPushRef(field: Reader, ref: string, deleted: boolean, repo: string): PushRef {
  const isBranch = ref.startsWith(BRANCH_PREFIX);
  const isTag = ref.startsWith(TAG_PREFIX);
  if (deleted) return { kind: "ignored", reason: `${isTag ? "tag" : "branch"} deletion (${ref} of ${repo})` };
  if (!isBranch && !isTag) return { kind: "ignored", reason: `not a branch or tag push (${ref} of ${repo})` };
  const why = jobFieldProblem("ref", ref);
  if (why !== null) field.fail(why);
  return isTag ? { kind: "tag", tag: ref.slice(TAG_PREFIX.length) } : { kind: "branch", branch: ref.slice(BRANCH_PREFIX.length) };
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
