/**
 * Runs one job: check the request, then the pipeline's steps in order, each in its own process
 * group; a failure or timeout skips the rest and runs `on_failure`; cancel kills the running step
 * and runs nothing more. Results are events handed to `emit` (awaited: that is the back-pressure
 * from the spool). Payload values reach steps only as HOOKRELAY_* environment variables.
 */
import { errorCode, errorMessage } from "../../shared/errors.ts";
import { statSync } from "node:fs";
import { matchesBranchFilters } from "../../shared/glob.ts";
import { TAG_PREFIX, tagMatches } from "../../shared/gates.ts";
import { jobFieldProblem, jobFieldProblems } from "../../shared/job-fields.ts";
import type { JobEndStatus, JobEventBody, JobFields, OutputStream, StepEndStatus } from "../../shared/protocol.ts";
import type { PipelineConfig, StepConfig } from "../common/config.ts";
import type { Logger } from "../common/logger.ts";
import { LogBudget, StepOutput } from "./output.ts";
import { peerText } from "../common/peer-text.ts";
import { spawnStep, type StepProcess } from "./process-group.ts";
import { AGENT_MALLOC_ENV, AGENT_V8_FLAGS } from "../common/sea.ts";
import { NO_SECRETS, type LoadedSecrets } from "./secrets.ts";
import { formatDuration } from "../common/units.ts";

/**
 * Deadlines are measured on the monotonic clock: the wall clock can jump (an NTP step, a VM resumed),
 * and an hour's jump forward must not time a job out between two steps.
 */
const monotonicNow = (): number => performance.now();

export interface JobRequest {
  jobId: string;
  pipeline: string;
  fields: JobFields;
}

export interface RunnerOptions {
  pipelines: readonly PipelineConfig[];
  killGraceMs: number;
  logCapBytes: number;
  /** The agent's environment; HOOKRELAY_AGENT_TOKEN is removed before steps see it. */
  baseEnv: NodeJS.ProcessEnv;
  /** The secret values as read when the job started (a reload during the job changes nothing in it): env NAME for steps, masked in output. */
  secrets?: LoadedSecrets;
  /**
   * Hands on one event (to the outbox, or the terminal); awaited: that is the back-pressure. Output
   * comes in batches of any size, its `data` the emitter's only until the promise settles (the
   * buffer is reused for later output): copy what is kept.
   */
  emit(body: JobEventBody): Promise<void>;
  log: Logger;
}

/** Why a job stops early: a cancel from the worker, or the agent shutting down. */
export type StopReason = "canceled" | "interrupted";
export interface Stop {
  reason: StopReason;
  why: string;
}

export interface RunningJob {
  readonly jobId: string;
  /** The job's end status. Never rejects: whatever fails inside, the job ends (see `endAfterFailure`). */
  readonly done: Promise<JobEndStatus>;
  stop(reason: StopReason, why: string): void;
  /** After `stop`: SIGKILL the running step's processes now instead of waiting out the grace. */
  hurry(): void;
}

type StepResult = { status: StepEndStatus; exitCode: number | null };

/** What `stop` and `hurry` reach while the job runs. */
interface JobControl {
  signal: AbortSignal;
  hurried: boolean;
  step: StepProcess | null;
}

/** `stopBefore`: the job was stopped before it could start (e.g. canceled while being accepted): nothing runs. */
export function startJob(job: JobRequest, options: RunnerOptions, stopBefore?: Stop): RunningJob {
  const abort = new AbortController();
  if (stopBefore) abort.abort(stopBefore);
  const control: JobControl = { signal: abort.signal, hurried: false, step: null };
  let endedWith: JobEndStatus | null = null;
  const emit = async (body: JobEventBody): Promise<void> => {
    await options.emit(body);
    if (body.kind === "job-end") endedWith = body.status;
  };
  const done = runJob(job, { ...options, emit }, control).catch((e: unknown) => endAfterFailure(job.jobId, e, emit, options.log, () => endedWith));
  return {
    jobId: job.jobId,
    done,
    stop: (reason, why) => {
      if (!abort.signal.aborted) abort.abort({ reason, why } satisfies Stop);
    },
    hurry: () => {
      control.hurried = true;
      control.step?.killNow();
    },
  };
}

/**
 * The one place a job ends when something inside the agent failed while running it (a spool write,
 * a bug): a line saying so and `job-end failed`, unless its end was written already. If even that
 * cannot be spooled, the error is logged; the spool then still lists the job without an end, and the
 * job server writes it once the spool takes writes again (a full disk freed), unless a cancel from the
 * worker ends it `canceled` first, or the next start of the agent ends it `interrupted`.
 */
async function endAfterFailure(jobId: string, error: unknown, emit: (body: JobEventBody) => Promise<void>, log: Logger, endedWith: () => JobEndStatus | null): Promise<JobEndStatus> {
  const tag = `[job ${jobId}]`;
  log.error(`${tag} the agent failed while running this job: ${describeError(error, true)}`);
  const ended = endedWith();
  if (ended !== null) return ended;
  try {
    await emit({ kind: "output", step: null, stream: "stderr", data: `[hookrelay] the agent failed while running this job: ${describeError(error, false).slice(0, 2000)}\n` });
  } catch {
    // the job-end below says the same; its failure is logged there
  }
  try {
    await emit({ kind: "job-end", status: "failed" });
  } catch (e) {
    log.error(`${tag} could not spool the job's end (failed): ${describeError(e, false)}; trying again every second until it can`);
  }
  log.info(`${tag} finished: failed`);
  return "failed";
}

/** An error from the system (a file operation) is its message; anything else is a bug, worth its stack in the log. */
function describeError(e: unknown, withStack: boolean): string {
  if (!(e instanceof Error)) return String(e);
  if (!withStack || errorCode(e) !== undefined || e.name === "SpoolError") return e.message;
  return e.stack ?? e.message;
}

/**
 * Every reason the job cannot run (empty when it can), checked before anything runs: the pipeline
 * exists here, the payload fields pass the shared strict rules (they become environment values),
 * the push is one the pipeline's own repo, events and branches (or tags) allow, the workdir exists.
 */
export function checkJob(job: JobRequest, pipeline: PipelineConfig | undefined, known: readonly PipelineConfig[]): string[] {
  const problems: string[] = [];
  if (!pipeline) problems.push(`pipeline ${JSON.stringify(job.pipeline)} is not configured on this agent (configured: ${known.map((p) => p.name).join(", ") || "none"})`);
  problems.push(...jobFieldProblems(job.fields));
  if (pipeline) {
    problems.push(...configProblems(job.fields, pipeline));
    let isDir = false;
    try {
      isDir = statSync(pipeline.workdir).isDirectory();
    } catch {
      // missing: reported below
    }
    if (!isDir) problems.push(`workdir ${pipeline.workdir} does not exist or is not a directory`);
  }
  return problems;
}

/**
 * The job frame is only a request: the worker matched the push to this pipeline, but a worker that
 * is not ours (or a forged push) must not deploy another repo, an unreviewed branch or a tag this
 * host's config does not name, so the same match is made again here against this host's config. A field that broke its own rule above is not
 * compared. The repo is compared ignoring case, as GitHub (and the worker's matching) treat names.
 */
function configProblems(f: JobFields, pipeline: PipelineConfig): string[] {
  const problems: string[] = [];
  if (jobFieldProblem("repo", f.repo) === null && f.repo.toLowerCase() !== pipeline.repo.toLowerCase()) {
    problems.push(`repo ${JSON.stringify(f.repo)} is not this pipeline's repo (configured: ${pipeline.repo}; compared ignoring case, as GitHub does)`);
  }
  if (jobFieldProblem("event", f.event) === null && !pipeline.events.includes(f.event)) {
    problems.push(`event ${JSON.stringify(f.event)} is not in this pipeline's events (configured: ${pipeline.events.join(", ")})`);
  }
  if (jobFieldProblem("ref", f.ref) === null) {
    const tag = tagOf(f.ref);
    if (tag !== null) {
      if (!tagMatches(pipeline.tags, tag)) {
        problems.push(`tag "${peerText(tag)}" does not match this pipeline's tags (configured: ${pipeline.tags.length > 0 ? pipeline.tags.join(", ") : "none: this pipeline deploys no tags"})`);
      }
    } else {
      const branch = f.ref.replace(/^refs\/heads\//, ""); // the ref's rule: it is a branch or a tag
      if (!matchesBranchFilters(branch, pipeline.branches)) {
        problems.push(`branch "${peerText(branch)}" does not match this pipeline's branches (configured: ${pipeline.branches.join(", ") || "none"})`);
      }
    }
  }
  return problems;
}

/** The tag name of a `refs/tags/…` ref, or null for a branch. */
function tagOf(ref: string): string | null {
  return ref.startsWith(TAG_PREFIX) ? ref.slice(TAG_PREFIX.length) : null;
}

export type StepEnv = { ok: true; env: NodeJS.ProcessEnv } | { ok: false; problem: string };

/**
 * The steps' environment: the agent's (minus its credentials), the pipeline's `env`, its secrets, the
 * push's HOOKRELAY_* values. Never one spawn refuses: the config and checkJob keep NULs out, and should one
 * come through anyway (a config object not read from a file), it is a problem here, not a throw.
 */
export function stepEnv(job: JobRequest, pipeline: PipelineConfig, baseEnv: NodeJS.ProcessEnv, secrets: Readonly<Record<string, string>> = {}): StepEnv {
  const env: NodeJS.ProcessEnv = { ...baseEnv };
  // The agent's credentials are not the steps' business: its token, and where systemd put it.
  delete env.HOOKRELAY_AGENT_TOKEN;
  delete env.CREDENTIALS_DIRECTORY;
  // The agent's own V8 setting (the single executable's unit sets it) is not for the steps' node.
  if (env.NODE_OPTIONS === AGENT_V8_FLAGS) delete env.NODE_OPTIONS;
  // Nor its allocator settings (the unit's Environment=); an operator's own values stay.
  for (const [name, value] of Object.entries(AGENT_MALLOC_ENV)) if (env[name] === value) delete env[name];
  Object.assign(env, pipeline.env, secrets);
  const f = job.fields;
  const tag = tagOf(f.ref);
  Object.assign(env, {
    HOOKRELAY_JOB_ID: job.jobId,
    HOOKRELAY_DELIVERY: f.delivery,
    HOOKRELAY_EVENT: f.event,
    HOOKRELAY_REPO: f.repo,
    HOOKRELAY_REF: f.ref,
    // Exactly one of the two is set: a tag job has no branch, a branch job no tag.
    HOOKRELAY_BRANCH: tag === null ? f.ref.replace(/^refs\/heads\//, "") : "",
    HOOKRELAY_TAG: tag ?? "",
    HOOKRELAY_SHA: f.sha,
    HOOKRELAY_BEFORE: f.before,
    HOOKRELAY_PUSHER: f.pusher,
  });
  for (const [name, value] of Object.entries(env)) {
    if (name.includes("\u0000")) return { ok: false, problem: `environment variable name ${JSON.stringify(name)} contains a NUL character (U+0000), which no process environment can hold` };
    if (value?.includes("\u0000")) return { ok: false, problem: `environment variable ${name} contains a NUL character (U+0000), which no process environment can hold` };
  }
  return { ok: true, env };
}

async function runJob(job: JobRequest, o: RunnerOptions, control: JobControl): Promise<JobEndStatus> {
  const tag = `[job ${job.jobId}]`;
  const signal = control.signal;
  const line = (text: string, stream: OutputStream = "stderr") => o.emit({ kind: "output", step: null, stream, data: `${text}\n` });
  const stopped = (): Stop | undefined => (signal.aborted ? (signal.reason as Stop) : undefined);
  const early = stopped();
  if (early) {
    o.log.info(`${tag} not run: ${early.why}`);
    await line(`[hookrelay] ${early.why}; nothing ran`);
    await o.emit({ kind: "job-end", status: early.reason });
    o.log.info(`${tag} finished: ${early.reason}`);
    return early.reason;
  }
  const pipeline = o.pipelines.find((p) => p.name === job.pipeline);
  const problems = checkJob(job, pipeline, o.pipelines);
  const secrets = o.secrets ?? NO_SECRETS;
  const prepared = pipeline && problems.length === 0 ? stepEnv(job, pipeline, o.baseEnv, secrets.env.get(pipeline.name)) : undefined;
  if (prepared && !prepared.ok) problems.push(prepared.problem);
  if (!pipeline || !prepared?.ok) {
    for (const p of problems) {
      o.log.warn(`${tag} not run: ${p}`);
      await line(`[hookrelay] not run: ${p}`);
    }
    await o.emit({ kind: "job-end", status: "failed" });
    o.log.info(`${tag} finished: failed`);
    return "failed";
  }

  o.log.info(`${tag} started (pipeline ${pipeline.name}, ${peerText(job.fields.ref)} ${job.fields.sha})`);
  const env = prepared.env;
  const budget = new LogBudget(o.logCapBytes);
  const runSteps = async (steps: readonly StepConfig[], deadline: number): Promise<StepResult | undefined> => {
    let failure: StepResult | undefined;
    for (const step of steps) {
      if (!failure && !stopped() && monotonicNow() >= deadline) {
        // The budget ran out between steps: nothing more starts.
        await line(`[hookrelay] job timed out after ${formatDuration(pipeline.timeoutMs)} (pipeline timeout) before step ${step.name}`);
        failure = { status: "timed_out", exitCode: null };
      }
      if (failure || stopped()) {
        await o.emit({ kind: "step-end", step: step.name, status: "skipped", exitCode: null });
        continue;
      }
      const result = await runStep(job, pipeline, step, env, budget, deadline, control, o);
      if (result.status !== "succeeded") failure = result;
    }
    return failure;
  };

  const failure = await runSteps(pipeline.steps, monotonicNow() + pipeline.timeoutMs);
  let status: JobEndStatus = failure === undefined ? "succeeded" : failure.status === "timed_out" ? "timed_out" : "failed";
  const stop = stopped();
  if (stop) status = stop.reason;

  if (pipeline.onFailure.length > 0) {
    if (status === "failed" || status === "timed_out") {
      o.log.info(`${tag} running on_failure steps`);
      // A fresh budget: the job's own may be what ran out.
      await runSteps(pipeline.onFailure, monotonicNow() + pipeline.timeoutMs);
      const late = stopped();
      if (late) status = late.reason;
    } else {
      for (const step of pipeline.onFailure) await o.emit({ kind: "step-end", step: step.name, status: "skipped", exitCode: null });
    }
  }
  if (stop) await line(`[hookrelay] ${stop.why}`);
  await o.emit({ kind: "job-end", status });
  o.log.info(`${tag} finished: ${status}`);
  return status;
}

async function runStep(
  job: JobRequest,
  pipeline: PipelineConfig,
  step: StepConfig,
  env: NodeJS.ProcessEnv,
  budget: LogBudget,
  jobDeadline: number,
  control: JobControl,
  o: RunnerOptions,
): Promise<StepResult> {
  const tag = `[job ${job.jobId}]`;
  const signal = control.signal;
  await o.emit({ kind: "step-start", step: step.name });
  o.log.info(`${tag} step ${step.name} started`);
  const output = new StepOutput({
    budget,
    emit: (stream, data) => o.emit({ kind: "output", step: step.name, stream, data }),
    masker: o.secrets?.masker ?? null,
  });
  let onOutputFailure: ((e: unknown) => void) | undefined;
  const proc = spawnStep({
    run: step.run,
    cwd: pipeline.workdir,
    env,
    onData: async (stream, chunk) => {
      try {
        await output.write(stream, chunk);
      } catch (e) {
        onOutputFailure?.(e);
        throw e;
      }
    },
  });
  control.step = proc;

  const stepDeadline = step.timeoutMs === null ? Infinity : monotonicNow() + step.timeoutMs;
  const byStep = stepDeadline <= jobDeadline;
  const wait = Math.min(2 ** 31 - 1, Math.max(0, Math.min(stepDeadline, jobDeadline) - monotonicNow()));
  let killed: { status: "timed_out" | "canceled" | "failed"; why: string } | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const interrupt = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      killed = {
        status: "timed_out",
        why: byStep
          ? `step ${step.name} timed out after ${formatDuration(step.timeoutMs ?? 0)}`
          : `job timed out after ${formatDuration(pipeline.timeoutMs)} (pipeline timeout)`,
      };
      resolve();
    }, wait);
    onAbort = () => {
      const r = signal.reason as Stop;
      killed = { status: "canceled", why: r.why };
      resolve();
    };
    // The step's output can no longer be spooled: nothing it does from here can be reported, so it stops.
    onOutputFailure = (e) => {
      killed ??= { status: "failed", why: `the agent could not spool step ${step.name}'s output (${errorMessage(e)})` };
      resolve();
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });

  try {
    const exit = await Promise.race([proc.finished, interrupt.then(() => undefined)]);
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener("abort", onAbort);
    if (exit === undefined && killed) {
      const grace = control.hurried ? 0 : o.killGraceMs;
      o.log.warn(`${tag} ${killed.why}: stopping step ${step.name} (SIGTERM, SIGKILL after ${formatDuration(grace)})`);
      await output.note(`[hookrelay] ${killed.why}: SIGTERM to the step's processes, SIGKILL after ${formatDuration(grace)}`);
      await proc.killGroup(grace);
    }
    const final = await proc.finished;
    let failure: unknown;
    try {
      if (final.kind === "spawn-error") await output.note(`[hookrelay] could not start bash: ${final.message}`);
      await output.finish();
    } catch (e) {
      failure = e;
    }
    const exitCode = final.kind === "exited" ? final.code : null;
    const status: StepEndStatus = killed ? killed.status : exitCode === 0 ? "succeeded" : "failed";
    if (failure) throw failure;
    await o.emit({ kind: "step-end", step: step.name, status, exitCode });
    o.log.info(`${tag} step ${step.name} ${status}${exitCode === null ? "" : ` (exit ${exitCode})`}`);
    return { status, exitCode };
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener("abort", onAbort);
    control.step = null;
  }
}
