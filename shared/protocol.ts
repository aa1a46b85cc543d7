/**
 * The hookrelay wire protocol: JSON text frames between the worker's Target Durable Object
 * and an agent. Both sides validate every frame they receive with `parseAgentMessage` /
 * `parseWorkerMessage` and answer a bad one with an `error` frame; they never act on it.
 * Heartbeats are the bare text frames "ping" / "pong" (answered by the DO's auto-response).
 */
import { assertNever } from "./assert-never.ts";
import { errorMessage } from "./errors.ts";
import { InvalidInput, Reader } from "./reader.ts";
import { fitsUtf8 } from "./utf8.ts";
import { jobFieldsFrom, type JobFields } from "./job-fields.ts";
import { JOB_ID_PATTERN, NAME_HINT, NAME_PATTERN } from "./patterns.ts";
import { batchProblem, DEFAULT_ROLLOUT, type Rollout } from "./rollout.ts";

export type { JobFields } from "./job-fields.ts";

/**
 * 2: pipelines declare `timeoutMs` (the DO's job deadline). An agent speaking 1 is refused with a clear error.
 * (A pipeline's optional `rollout` was added within 2: a declaration without it gets DEFAULT_ROLLOUT,
 * which is what such an agent's hosts did before — one at a time is no change for a single server.)
 */
export const PROTOCOL_VERSION = 2;
/** Outgoing frames stay at or under this size (UTF-8 bytes). */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Frames received above this size are refused (the ws client's maxPayload is about this). */
export const MAX_INCOMING_FRAME_BYTES = 1024 * 1024;
/** hello.unfinished lists at most this many jobs; the agent's spool never keeps more (it drops the oldest, saying so). */
export const MAX_UNFINISHED = 1000;
/** Event times (`at`, the agent's clock) outside [0, this] are refused: year 2100, well inside Date's range. */
export const MAX_EVENT_TIME = Date.UTC(2100, 0, 1);
/** Each payload field of a job frame; the agent checks them strictly (and fails the job, saying why) before running. */
export const MAX_JOB_FIELD_BYTES = 16 * 1024;
export const HEARTBEAT_PING = "ping";
export const HEARTBEAT_PONG = "pong";

/** `skipped`: its deployment's rollout halted (or its agent stopped declaring the pipeline) before this host's turn; nothing ran there. */
export const JOB_STATUSES = ["queued", "running", "succeeded", "failed", "timed_out", "canceled", "superseded", "interrupted", "skipped"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
/** Statuses an agent may end a job with. */
export const JOB_END_STATUSES = ["succeeded", "failed", "timed_out", "canceled", "interrupted"] as const;
export type JobEndStatus = (typeof JOB_END_STATUSES)[number];
export const FINAL_JOB_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "timed_out", "canceled", "superseded", "interrupted", "skipped"];

export const STEP_STATUSES = ["pending", "running", "succeeded", "failed", "timed_out", "canceled", "skipped"] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
export const STEP_END_STATUSES = ["succeeded", "failed", "timed_out", "canceled", "skipped"] as const;
export type StepEndStatus = (typeof STEP_END_STATUSES)[number];

export const OUTPUT_STREAMS = ["stdout", "stderr"] as const;
export type OutputStream = (typeof OUTPUT_STREAMS)[number];

/** What an agent declares about one of its pipelines (the commands themselves never leave the host). */
export interface PipelineDecl {
  name: string;
  repo: string;
  events: string[];
  branches: string[];
  steps: string[];
  onFailure: string[];
  /** The pipeline's `timeout` (ms): the agent ends the main steps by then and gives on_failure as long again. */
  timeoutMs: number;
  /** How a deployment of this pipeline rolls out over the agents declaring it (shared/rollout.ts). */
  rollout: Rollout;
}

export type JobEventBody =
  | { kind: "step-start"; step: string }
  /** `step` is null for the agent's own lines about the job (e.g. why it was interrupted). */
  | { kind: "output"; step: string | null; stream: OutputStream; data: string }
  | { kind: "step-end"; step: string; status: StepEndStatus; exitCode: number | null }
  | { kind: "job-end"; status: JobEndStatus };

export type AgentMessage =
  | {
      type: "hello";
      protocol: number;
      agent: string;
      version: string;
      pipelines: PipelineDecl[];
      /** Accepted jobs whose job-end has not been acked yet, with the last seq the agent wrote. */
      unfinished: { jobId: string; lastSeq: number }[];
    }
  | { type: "accepted"; jobId: string }
  /** `at` is the agent's clock in epoch milliseconds. */
  | { type: "event"; jobId: string; seq: number; at: number; body: JobEventBody }
  | { type: "error"; code: string; message: string };

export type WorkerMessage =
  | { type: "welcome"; protocol: number; target: string; agent: string }
  | ({ type: "job"; jobId: string; pipeline: string } & JobFields)
  | { type: "ack"; jobId: string; seq: number }
  /** Answer to hello's `unfinished`: re-send that job's events from ackedSeq + 1. */
  | { type: "resume"; jobId: string; ackedSeq: number }
  | { type: "cancel"; jobId: string }
  | { type: "error"; code: string; message: string };

export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

function parseFrame<T>(text: string, read: (r: Reader) => T): ParseResult<T> {
  if (!fitsUtf8(text, MAX_INCOMING_FRAME_BYTES)) return { ok: false, error: `frame larger than ${MAX_INCOMING_FRAME_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `frame is not JSON: ${errorMessage(e)}` };
  }
  try {
    return { ok: true, message: read(new Reader(value)) };
  } catch (e) {
    if (e instanceof InvalidInput) return { ok: false, error: e.message };
    throw e;
  }
}

const name = (r: Reader) => r.string({ pattern: NAME_PATTERN, patternHint: NAME_HINT });
const jobId = (r: Reader) => r.string({ pattern: JOB_ID_PATTERN, patternHint: "must be 1-64 characters of letters, digits, '_' or '-'" });
const shortText = (r: Reader, max = 1024) => r.string({ max });
const seq = (r: Reader) => r.int({ min: 1 });
/** A job's payload fields are only bounded here; the agent's checkJob validates them and fails the job with the reason. */
const jobField = (r: Reader) => r.string({ maxBytes: MAX_JOB_FIELD_BYTES });
/** 30 days: no pipeline timeout is longer. */
export const MAX_TIMEOUT_MS = 30 * 86_400_000;

function readPipelineDecl(r: Reader): PipelineDecl {
  return {
    name: name(r.field("name")),
    repo: r.field("repo").string({ max: 200, pattern: /^[^/\s]+\/[^/\s]+$/, patternHint: "must be owner/name" }),
    events: r.field("events").array({ max: 50 }).map((e) => shortText(e, 100)),
    branches: r.field("branches").array({ max: 100 }).map((b) => shortText(b, 255)),
    steps: r.field("steps").array({ max: 200 }).map(name),
    onFailure: r.field("onFailure").array({ max: 200 }).map(name),
    timeoutMs: r.field("timeoutMs").int({ min: 1, max: MAX_TIMEOUT_MS }),
    rollout: r.has("rollout") ? readRollout(r.field("rollout")) : { ...DEFAULT_ROLLOUT },
  };
}

export function readRollout(r: Reader): Rollout {
  const field = r.field("batch");
  const batch = field.value;
  const problem = batchProblem(batch);
  if (problem !== null || (typeof batch !== "number" && typeof batch !== "string")) return field.fail(problem ?? "expected a number or a string");
  return { batch, haltOnFailure: r.field("haltOnFailure").boolean() };
}

function readEventBody(r: Reader): JobEventBody {
  const kind = r.field("kind").oneOf(["step-start", "output", "step-end", "job-end"] as const);
  switch (kind) {
    case "step-start":
      return { kind, step: name(r.field("step")) };
    case "output": {
      const step = r.field("step").value === null ? null : name(r.field("step"));
      return { kind, step, stream: r.field("stream").oneOf(OUTPUT_STREAMS), data: r.field("data").string({ maxBytes: MAX_FRAME_BYTES }) };
    }
    case "step-end":
      return {
        kind,
        step: name(r.field("step")),
        status: r.field("status").oneOf(STEP_END_STATUSES),
        exitCode: r.field("exitCode").nullableInt({ min: -1, max: 255 }),
      };
    case "job-end":
      return { kind, status: r.field("status").oneOf(JOB_END_STATUSES) };
    default:
      return assertNever(kind, "event kind");
  }
}

function readError(r: Reader): { type: "error"; code: string; message: string } {
  return { type: "error", code: shortText(r.field("code"), 100), message: shortText(r.field("message"), 4096) };
}

export function parseAgentMessage(text: string): ParseResult<AgentMessage> {
  return parseFrame(text, (r): AgentMessage => {
    const type = r.field("type").oneOf(["hello", "accepted", "event", "error"] as const);
    switch (type) {
      case "hello":
        return {
          type,
          protocol: r.field("protocol").int({ min: 1 }),
          agent: name(r.field("agent")),
          version: shortText(r.field("version"), 100),
          pipelines: r.field("pipelines").array({ max: 100 }).map(readPipelineDecl),
          unfinished: r
            .field("unfinished")
            .array({ max: MAX_UNFINISHED })
            .map((u) => ({ jobId: jobId(u.field("jobId")), lastSeq: u.field("lastSeq").int({ min: 0 }) })),
        };
      case "accepted":
        return { type, jobId: jobId(r.field("jobId")) };
      case "event":
        return {
          type,
          jobId: jobId(r.field("jobId")),
          seq: seq(r.field("seq")),
          at: r.field("at").int({ min: 0, max: MAX_EVENT_TIME }),
          body: readEventBody(r.field("body")),
        };
      case "error":
        return readError(r);
      default:
        return assertNever(type, "message type");
    }
  });
}

export function parseWorkerMessage(text: string): ParseResult<WorkerMessage> {
  return parseFrame(text, (r): WorkerMessage => {
    const type = r.field("type").oneOf(["welcome", "job", "ack", "resume", "cancel", "error"] as const);
    switch (type) {
      case "welcome":
        return { type, protocol: r.field("protocol").int({ min: 1 }), target: name(r.field("target")), agent: name(r.field("agent")) };
      case "job":
        // Payload-derived fields are only bounded here, so a job with a bad one is still accepted and
        // then ended `failed` by the agent's checkJob with the reason (never left undelivered).
        return {
          type,
          jobId: jobId(r.field("jobId")),
          pipeline: name(r.field("pipeline")),
          ...jobFieldsFrom((field) => jobField(r.field(field))),
        };
      case "ack":
        return { type, jobId: jobId(r.field("jobId")), seq: seq(r.field("seq")) };
      case "resume":
        return { type, jobId: jobId(r.field("jobId")), ackedSeq: r.field("ackedSeq").int({ min: 0 }) };
      case "cancel":
        return { type, jobId: jobId(r.field("jobId")) };
      case "error":
        return readError(r);
      default:
        return assertNever(type, "message type");
    }
  });
}
