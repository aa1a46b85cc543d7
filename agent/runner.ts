/**
 * Runs one job: check the request, then the pipeline's steps in order, each in its own process
 * group; a failure or timeout skips the rest and runs `on_failure`; cancel kills the running step
 * and runs nothing more. Results are events handed to `emit` (awaited: that is the back-pressure
 * from the spool). Payload values reach steps only as HOOKRELAY_* environment variables.
 */
import { statSync } from "node:fs";
import {
  BRANCH_REF_HINT,
  BRANCH_REF_PATTERN,
  SHA_HINT,
  SHA_PATTERN,
  type JobEndStatus,
  type JobEventBody,
  type JobFields,
  type OutputStream,
  type StepEndStatus,
} from "../shared/protocol.ts";
import type { PipelineConfig, StepConfig } from "./config.ts";
import { splitOutput } from "./frames.ts";
import type { Logger } from "./log.ts";
import { LogBudget, StepOutput } from "./output.ts";
import { spawnStep } from "./process-group.ts";
import { formatDuration } from "./units.ts";

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
  /** Appends one event (spool, then socket). Output data must already fit a frame: see `emitOutput`. */
  emit(body: JobEventBody): Promise<void>;
  log: Logger;
}

/** Why a job stops early: a cancel from the worker, or the agent shutting down. */
export type StopReason = "canceled" | "interrupted";

export interface RunningJob {
  readonly jobId: string;
  readonly done: Promise<JobEndStatus>;
  stop(reason: StopReason, why: string): void;
}

type StepResult = { status: StepEndStatus; exitCode: number | null };

export function startJob(job: JobRequest, options: RunnerOptions): RunningJob {
  const abort = new AbortController();
  // Output batches (up to the 1 MiB tail) are cut into frame-sized events here.
  const emit = async (body: JobEventBody): Promise<void> => {
    if (body.kind !== "output") return options.emit(body);
    for (const data of splitOutput(job.jobId, body.step, body.stream, body.data)) await options.emit({ ...body, data });
  };
  const done = runJob(job, { ...options, emit }, abort.signal);
  return {
    jobId: job.jobId,
    done,
    stop: (reason, why) => {
      if (!abort.signal.aborted) abort.abort({ reason, why });
    },
  };
}

/** Why a job cannot run, or null. Checked before anything runs. */
export function checkJob(job: JobRequest, pipeline: PipelineConfig | undefined, known: readonly PipelineConfig[]): string[] {
  const problems: string[] = [];
  if (!pipeline) problems.push(`pipeline ${JSON.stringify(job.pipeline)} is not configured on this agent (configured: ${known.map((p) => p.name).join(", ") || "none"})`);
  if (!SHA_PATTERN.test(job.fields.sha)) problems.push(`sha ${JSON.stringify(job.fields.sha)} ${SHA_HINT}`);
  if (!SHA_PATTERN.test(job.fields.before)) problems.push(`before ${JSON.stringify(job.fields.before)} ${SHA_HINT}`);
  if (!BRANCH_REF_PATTERN.test(job.fields.ref)) problems.push(`ref ${JSON.stringify(job.fields.ref)} ${BRANCH_REF_HINT}`);
  if (pipeline) {
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

export function stepEnv(job: JobRequest, pipeline: PipelineConfig, baseEnv: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...baseEnv };
  // The agent's credentials are not the steps' business: its token, and where systemd put it.
  delete env.HOOKRELAY_AGENT_TOKEN;
  delete env.CREDENTIALS_DIRECTORY;
  Object.assign(env, pipeline.env);
  const f = job.fields;
  return {
    ...env,
    HOOKRELAY_JOB_ID: job.jobId,
    HOOKRELAY_DELIVERY: f.delivery,
    HOOKRELAY_EVENT: f.event,
    HOOKRELAY_REPO: f.repo,
    HOOKRELAY_REF: f.ref,
    HOOKRELAY_BRANCH: f.ref.replace(/^refs\/heads\//, ""),
    HOOKRELAY_SHA: f.sha,
    HOOKRELAY_BEFORE: f.before,
    HOOKRELAY_PUSHER: f.pusher,
  };
}

async function runJob(job: JobRequest, o: RunnerOptions, signal: AbortSignal): Promise<JobEndStatus> {
  const tag = `[job ${job.jobId}]`;
  const line = (text: string, stream: OutputStream = "stderr") => o.emit({ kind: "output", step: null, stream, data: `${text}\n` });
  const pipeline = o.pipelines.find((p) => p.name === job.pipeline);
  const problems = checkJob(job, pipeline, o.pipelines);
  if (problems.length > 0 || !pipeline) {
    for (const p of problems) {
      o.log.warn(`${tag} not run: ${p}`);
      await line(`[hookrelay] not run: ${p}`);
    }
    await o.emit({ kind: "job-end", status: "failed" });
    o.log.info(`${tag} finished: failed`);
    return "failed";
  }

  o.log.info(`${tag} started (pipeline ${pipeline.name}, ${job.fields.ref} ${job.fields.sha})`);
  const env = stepEnv(job, pipeline, o.baseEnv);
  const budget = new LogBudget(o.logCapBytes);
  const stopped = (): { reason: StopReason; why: string } | undefined => (signal.aborted ? (signal.reason as { reason: StopReason; why: string }) : undefined);

  const runSteps = async (steps: readonly StepConfig[], deadline: number): Promise<StepResult | undefined> => {
    let failure: StepResult | undefined;
    for (const step of steps) {
      if (!failure && !stopped() && Date.now() >= deadline) {
        // The budget ran out between steps: nothing more starts.
        await line(`[hookrelay] job timed out after ${formatDuration(pipeline.timeoutMs)} (pipeline timeout) before step ${step.name}`);
        failure = { status: "timed_out", exitCode: null };
      }
      if (failure || stopped()) {
        await o.emit({ kind: "step-end", step: step.name, status: "skipped", exitCode: null });
        continue;
      }
      const result = await runStep(job, pipeline, step, env, budget, deadline, signal, o);
      if (result.status !== "succeeded") failure = result;
    }
    return failure;
  };

  const failure = await runSteps(pipeline.steps, Date.now() + pipeline.timeoutMs);
  let status: JobEndStatus = failure === undefined ? "succeeded" : failure.status === "timed_out" ? "timed_out" : "failed";
  const stop = stopped();
  if (stop) status = stop.reason;

  if (pipeline.onFailure.length > 0) {
    if (status === "failed" || status === "timed_out") {
      o.log.info(`${tag} running on_failure steps`);
      // A fresh budget: the job's own may be what ran out.
      await runSteps(pipeline.onFailure, Date.now() + pipeline.timeoutMs);
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
  signal: AbortSignal,
  o: RunnerOptions,
): Promise<StepResult> {
  const tag = `[job ${job.jobId}]`;
  await o.emit({ kind: "step-start", step: step.name });
  o.log.info(`${tag} step ${step.name} started`);
  const output = new StepOutput({
    budget,
    emit: (stream, data) => o.emit({ kind: "output", step: step.name, stream, data }),
  });
  const proc = spawnStep({ run: step.run, cwd: pipeline.workdir, env, onData: (stream, chunk) => output.write(stream, chunk) });

  const stepDeadline = step.timeoutMs === null ? Infinity : Date.now() + step.timeoutMs;
  const byStep = stepDeadline <= jobDeadline;
  const wait = Math.min(2 ** 31 - 1, Math.max(0, Math.min(stepDeadline, jobDeadline) - Date.now()));
  let killed: { status: "timed_out" | "canceled"; why: string } | undefined;
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
      const r = signal.reason as { reason: StopReason; why: string };
      killed = { status: "canceled", why: r.why };
      resolve();
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });

  const exit = await Promise.race([proc.finished, interrupt.then(() => undefined)]);
  clearTimeout(timer);
  if (onAbort) signal.removeEventListener("abort", onAbort);
  if (exit === undefined && killed) {
    o.log.warn(`${tag} ${killed.why}: stopping step ${step.name} (SIGTERM, SIGKILL after ${formatDuration(o.killGraceMs)})`);
    await output.note(`[hookrelay] ${killed.why}: SIGTERM to the step's processes, SIGKILL after ${formatDuration(o.killGraceMs)}`);
    await proc.killGroup(o.killGraceMs);
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
}
