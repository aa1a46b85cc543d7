/**
 * The hookrelay wire protocol between the worker's Target Durable Object and an agent: JSON text
 * frames, except a step's output, which an agent sends as binary frames carrying the raw bytes
 * (`encodeOutputFrame` / `parseAgentBinaryFrame`). Both sides validate every frame they receive with
 * `parseAgentMessage` / `parseAgentBinaryFrame` / `parseWorkerMessage` and answer a bad one with an
 * `error` frame; they never act on it. Heartbeats are the bare text frames "ping" / "pong"
 * (answered by the DO's auto-response).
 */
import { assertNever } from "./assert-never.ts";
import { errorMessage } from "./errors.ts";
import { InvalidInput, Reader } from "./reader.ts";
import { fitsUtf8 } from "./utf8.ts";
import { jobFieldsFrom, type JobFields } from "./job-fields.ts";
import { JOB_ID_PATTERN, NAME_HINT, NAME_PATTERN } from "./patterns.ts";
import { batchProblem, DEFAULT_ROLLOUT, type Rollout } from "./rollout.ts";
import { branchFiltersProblem, globProblem, MAX_PATTERN_LENGTH } from "./glob.ts";
import { MAX_GATE_NAME_CHARS, MAX_GATE_NAMES_PER_LIST, MAX_GATE_TIMEOUT_MS, MAX_PATH_GLOBS_PER_PIPELINE, MAX_TAG_GLOBS_PER_PIPELINE } from "./limits.ts";

export type { JobFields } from "./job-fields.ts";

/**
 * 3: output events travel as binary frames of raw bytes (OUTPUT_FRAME_TAG), stored as such: no
 * decoding, JSON escaping or splitting by escaped size on the agent. An agent speaking 2 or 1 is
 * refused with a clear error (its hello is answered `unsupported-protocol`, saying to upgrade it).
 * 2: pipelines declare `timeoutMs` (the DO's job deadline). (A pipeline's optional `rollout` was
 * added within 2: a declaration without it gets DEFAULT_ROLLOUT, which is what such an agent's hosts
 * did before — one at a time is no change for a single server.)
 *
 * 4 is 3 with gates: a pipeline's `tags`, `paths`, `pathsIgnore`, `waitFor`. An agent whose config
 * declares any says 4 (helloProtocol), so a worker from before gates — which would take such a
 * pipeline and deploy it at once, every gate ignored — refuses it ("deploy the worker that matches
 * this agent") instead: fail closed. An agent that declares none says 3, and works with either worker.
 */
export const PROTOCOL_VERSION = 3;
/** The protocol of a hello whose pipelines declare gates (above). A worker speaks 3 and 4. */
export const GATES_PROTOCOL_VERSION = 4;

/** Whether a declaration uses any gate key: it needs a worker that honours them. */
export function declaresGates(p: PipelineDecl): boolean {
  return p.tags !== undefined || p.paths !== undefined || p.pathsIgnore !== undefined || p.waitFor !== undefined;
}

/** The protocol an agent's hello says: 4 when a pipeline declares gates, else 3. */
export function helloProtocol(pipelines: readonly PipelineDecl[]): number {
  return pipelines.some(declaresGates) ? GATES_PROTOCOL_VERSION : PROTOCOL_VERSION;
}
/** Outgoing frames stay at or under this size (UTF-8 bytes of a text frame; all bytes of a binary one). */
export const MAX_FRAME_BYTES = 64 * 1024;
/**
 * A binary frame from an agent: this tag byte, the header's length (2 bytes, big-endian), the header
 * (UTF-8 JSON: the `event` without its body's `data`, whose kind must be `output`), then the data —
 * the step's output bytes as read, masked and capped by the agent. A text frame never starts with
 * this byte (JSON starts with "{"), so a spooled frame says by its first byte which kind it is.
 */
export const OUTPUT_FRAME_TAG = 0x01;
/** A binary frame's header is at most this long (a job id, a step name, a stream: well under). */
export const MAX_OUTPUT_HEADER_BYTES = 1024;
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
  /** GitHub's deployment environment (default: the target's name) and its URL, when the config names them. */
  environment?: string;
  environmentUrl?: string;
  /** GitHub's production_environment / transient_environment, when the config sets them (optional: older agents omit them). */
  productionEnvironment?: boolean;
  transientEnvironment?: boolean;
  /**
   * Gates (README, "Deploy only what passed"), each optional: older agents omit them, and a
   * pipeline without them deploys as before. `tags`: tag globs that deploy (none: no tag does).
   * `paths` / `pathsIgnore` (never both): GitHub Actions' path filters on the push's changed files.
   * `waitFor`: what must pass before any host runs the deployment.
   */
  tags?: string[];
  paths?: string[];
  pathsIgnore?: string[];
  waitFor?: WaitForDecl;
}

/** What a deployment waits for before it is queued (the config's `wait_for`). */
export interface WaitForDecl {
  /** GitHub Actions workflow runs, by name, that must conclude passing (shared/gates.ts conclusionPasses). */
  workflows: string[];
  /** Check runs, by name (any CI app), that must conclude passing. */
  checks: string[];
  /** Then a person approves. */
  approval: boolean;
  /** Waiting longer ends the deployment `blocked`. */
  timeoutMs: number;
}

export type JobEventBody =
  | { kind: "step-start"; step: string }
  /**
   * `step` is null for the agent's own lines about the job (e.g. why it was interrupted). `data` is
   * text in a JSON frame, raw bytes in a binary one (UTF-8 as the step printed it; the agent cuts
   * events at character boundaries, and the log decodes each event's bytes on its own).
   */
  | { kind: "output"; step: string | null; stream: OutputStream; data: string | Uint8Array }
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
/** The wire's bound; a declaration past MAX_PIPELINE_TIMEOUT_MS (shared/limits.ts) is refused as over a limit. */
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
    ...readEnvironment(r),
    ...readGates(r),
  };
}

/** A workflow's or check run's name as `wait_for` names it: matched exactly against GitHub's `name`. */
export const GATE_NAME_PATTERN = new RegExp(`^(?!\\s*$)[^\\u0000-\\u001f\\u007f-\\u009f]{1,${MAX_GATE_NAME_CHARS}}$`);
export const GATE_NAME_HINT = `must be a workflow's or check run's name as GitHub shows it: 1-${MAX_GATE_NAME_CHARS} characters, not blank, no control characters`;

/** A list of filter globs: bounded, each a valid pattern, and at least one positive (a list of only ! patterns selects nothing). */
function readGlobs(r: Reader, max: number): string[] {
  const list = r.array({ max }).map((g) => {
    const glob = g.string({ max: MAX_PATTERN_LENGTH });
    const why = globProblem(glob);
    return why === null ? glob : g.fail(why);
  });
  const why = branchFiltersProblem(list);
  return why === null ? list : r.fail(why);
}

function readGateNames(r: Reader): string[] {
  const names = r.array({ max: MAX_GATE_NAMES_PER_LIST }).map((n) => n.string({ pattern: GATE_NAME_PATTERN, patternHint: GATE_NAME_HINT }));
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  return twice === undefined ? names : r.fail(`names ${JSON.stringify(twice)} twice`);
}

function readGates(r: Reader): Pick<PipelineDecl, "tags" | "paths" | "pathsIgnore" | "waitFor"> {
  const out: Pick<PipelineDecl, "tags" | "paths" | "pathsIgnore" | "waitFor"> = {};
  if (r.has("tags")) out.tags = readGlobs(r.field("tags"), MAX_TAG_GLOBS_PER_PIPELINE);
  if (r.has("paths")) out.paths = readGlobs(r.field("paths"), MAX_PATH_GLOBS_PER_PIPELINE);
  if (r.has("pathsIgnore")) {
    if (out.paths !== undefined) r.field("pathsIgnore").fail("a pipeline declares paths or pathsIgnore, not both");
    out.pathsIgnore = readGlobs(r.field("pathsIgnore"), MAX_PATH_GLOBS_PER_PIPELINE);
  }
  if (r.has("waitFor")) {
    const w = r.field("waitFor");
    out.waitFor = {
      workflows: readGateNames(w.field("workflows")),
      checks: readGateNames(w.field("checks")),
      approval: w.field("approval").boolean(),
      timeoutMs: w.field("timeoutMs").int({ min: 1, max: MAX_GATE_TIMEOUT_MS }),
    };
    if (out.waitFor.workflows.length === 0 && out.waitFor.checks.length === 0 && !out.waitFor.approval) {
      w.fail("waits for nothing: name workflows or checks, or set approval");
    }
  }
  return out;
}

/** A URL people follow from GitHub ("View deployment"): https only, bounded. */
export const ENVIRONMENT_URL_PATTERN = /^https:\/\/[^\s]{1,2000}$/;
export const ENVIRONMENT_URL_HINT = "must be an https:// URL of at most 2000 characters, without spaces";
/** GitHub's environment names: up to 255 characters; ours exclude control characters and commas. */
export const ENVIRONMENT_PATTERN = /^[^\u0000-\u001f\u007f,]{1,255}$/;
export const ENVIRONMENT_HINT = "must be 1-255 characters, no control characters or commas";

function readEnvironment(r: Reader): Pick<PipelineDecl, "environment" | "environmentUrl" | "productionEnvironment" | "transientEnvironment"> {
  const out: Pick<PipelineDecl, "environment" | "environmentUrl" | "productionEnvironment" | "transientEnvironment"> = {};
  const environment = r.field("environment").optionalString({ pattern: ENVIRONMENT_PATTERN, patternHint: ENVIRONMENT_HINT });
  const environmentUrl = r.field("environmentUrl").optionalString({ pattern: ENVIRONMENT_URL_PATTERN, patternHint: ENVIRONMENT_URL_HINT });
  if (environment !== undefined) out.environment = environment;
  if (environmentUrl !== undefined) out.environmentUrl = environmentUrl;
  if (r.has("productionEnvironment")) out.productionEnvironment = r.field("productionEnvironment").boolean();
  if (r.has("transientEnvironment")) out.transientEnvironment = r.field("transientEnvironment").boolean();
  return out;
}

export function readRollout(r: Reader): Rollout {
  const field = r.field("batch");
  const batch = field.value;
  const problem = batchProblem(batch);
  if (problem !== null || (typeof batch !== "number" && typeof batch !== "string")) return field.fail(problem ?? "expected a number or a string");
  return { batch, haltOnFailure: r.field("haltOnFailure").boolean() };
}

const outputStep = (r: Reader): string | null => (r.field("step").value === null ? null : name(r.field("step")));

function readEventBody(r: Reader): JobEventBody {
  const kind = r.field("kind").oneOf(["step-start", "output", "step-end", "job-end"] as const);
  switch (kind) {
    case "step-start":
      return { kind, step: name(r.field("step")) };
    case "output":
      return { kind, step: outputStep(r), stream: r.field("stream").oneOf(OUTPUT_STREAMS), data: r.field("data").string({ maxBytes: MAX_FRAME_BYTES }) };
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
      case "hello": {
        const protocol = r.field("protocol").int({ min: 1 });
        const pipelinesField = r.field("pipelines");
        const pipelines = pipelinesField.array({ max: 100 }).map(readPipelineDecl);
        // Gates said under protocol 3 would be taken by a worker that ignores them: never.
        const gated = pipelines.find(declaresGates);
        if (gated && protocol < GATES_PROTOCOL_VERSION) {
          pipelinesField.fail(`pipeline ${gated.name} declares gates (tags, paths, paths_ignore or wait_for): its hello must say protocol ${GATES_PROTOCOL_VERSION}`);
        }
        return {
          type,
          protocol,
          agent: name(r.field("agent")),
          version: shortText(r.field("version"), 100),
          pipelines,
          unfinished: r
            .field("unfinished")
            .array({ max: MAX_UNFINISHED })
            .map((u) => ({ jobId: jobId(u.field("jobId")), lastSeq: u.field("lastSeq").int({ min: 0 }) })),
        };
      }
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

/** The header of a binary output frame: the event minus its data. */
export interface OutputFrameHeader {
  jobId: string;
  seq: number;
  at: number;
  step: string | null;
  stream: OutputStream;
}

const utf8Encoder = new TextEncoder();

/**
 * An output event as a binary frame (OUTPUT_FRAME_TAG). The data is copied in once, into `into` when
 * it is long enough (the frame is then a view of it); the caller keeps the frame within MAX_FRAME_BYTES.
 */
export function encodeOutputFrame(h: OutputFrameHeader, data: Uint8Array, into?: Uint8Array): Uint8Array {
  const header = utf8Encoder.encode(
    JSON.stringify({ type: "event", jobId: h.jobId, seq: h.seq, at: h.at, body: { kind: "output", step: h.step, stream: h.stream } }),
  );
  if (header.length > MAX_OUTPUT_HEADER_BYTES) throw new Error(`output frame header of ${header.length} bytes, more than ${MAX_OUTPUT_HEADER_BYTES}`);
  const length = 3 + header.length + data.length;
  // Into the caller's buffer where it fits (a view of it is the frame), else a new one.
  const frame = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
  frame[0] = OUTPUT_FRAME_TAG;
  frame[1] = header.length >> 8;
  frame[2] = header.length & 0xff;
  frame.set(header, 3);
  frame.set(data, 3 + header.length);
  return frame;
}

/** The bytes a binary frame adds to its data, at most (what a piece of output may take is MAX_FRAME_BYTES minus this). */
export const OUTPUT_FRAME_OVERHEAD_BYTES = 3 + MAX_OUTPUT_HEADER_BYTES;

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * A binary frame from an agent: an output event whose `data` is a view into `frame` (copy it to keep
 * it past the frame). Bounded and validated like a text frame; anything else is refused, saying why.
 */
export function parseAgentBinaryFrame(frame: Uint8Array): ParseResult<AgentMessage> {
  if (frame.length > MAX_INCOMING_FRAME_BYTES) return { ok: false, error: `frame larger than ${MAX_INCOMING_FRAME_BYTES} bytes` };
  if (frame.length < 3 || frame[0] !== OUTPUT_FRAME_TAG) {
    return { ok: false, error: `binary frame does not start with the output tag ${OUTPUT_FRAME_TAG} and a header length` };
  }
  const headerLength = (frame[1]! << 8) | frame[2]!;
  if (headerLength > MAX_OUTPUT_HEADER_BYTES || 3 + headerLength > frame.length) {
    return { ok: false, error: `binary frame's header length ${headerLength} is over ${MAX_OUTPUT_HEADER_BYTES} or past the frame's ${frame.length} bytes` };
  }
  const data = frame.subarray(3 + headerLength);
  if (data.length > MAX_FRAME_BYTES) return { ok: false, error: `binary frame's data is longer than ${MAX_FRAME_BYTES} bytes` };
  let headerText: string;
  try {
    headerText = utf8Decoder.decode(frame.subarray(3, 3 + headerLength));
  } catch {
    return { ok: false, error: "binary frame's header is not UTF-8" };
  }
  const parsed = parseFrame(headerText, (r): AgentMessage => {
    r.field("type").oneOf(["event"] as const);
    const body = r.field("body");
    body.field("kind").oneOf(["output"] as const);
    return {
      type: "event",
      jobId: jobId(r.field("jobId")),
      seq: seq(r.field("seq")),
      at: r.field("at").int({ min: 0, max: MAX_EVENT_TIME }),
      body: { kind: "output", step: outputStep(body), stream: body.field("stream").oneOf(OUTPUT_STREAMS), data },
    };
  });
  return parsed.ok ? parsed : { ok: false, error: `binary frame's header: ${parsed.error}` };
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
