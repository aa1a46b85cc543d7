/** `hookrelay-agent exec`: run one pipeline here, without the worker, output to the terminal. */
import { execFileSync } from "node:child_process";
import { userInfo } from "node:os";
import { assertNever } from "../../shared/assert-never.ts";
import { type JobEndStatus, type JobEventBody } from "../../shared/protocol.ts";
import { JOB_REF_HINT, JOB_REF_PATTERN } from "../../shared/patterns.ts";
import type { AgentConfig, PipelineConfig } from "../common/config.ts";
import type { Logger } from "../common/logger.ts";
import { startJob } from "../runtime/runner.ts";
import type { LoadedSecrets } from "../runtime/secrets.ts";

export interface ExecArgs {
  pipeline: PipelineConfig;
  sha?: string;
  ref?: string;
}

export type ExecPlan = { ok: true; sha: string; before: string; ref: string } | { ok: false; problem: string };

/** Defaults: sha and before = the workdir's HEAD, ref = the pipeline's first literal branch. */
export function planExec(args: ExecArgs): ExecPlan {
  let head: string | undefined;
  try {
    head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: args.pipeline.workdir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    // not a git checkout
  }
  const sha = args.sha ?? head;
  if (!sha) return { ok: false, problem: `--sha is required (${args.pipeline.workdir} is not a git checkout)` };
  const literal = args.pipeline.branches.find((b) => !/[*?]/.test(b));
  const ref = args.ref ?? (literal ? `refs/heads/${literal}` : undefined);
  if (!ref) return { ok: false, problem: "--ref is required (the pipeline names no branch without a glob)" };
  if (!JOB_REF_PATTERN.test(ref)) return { ok: false, problem: `--ref ${JOB_REF_HINT}, got ${JSON.stringify(ref)}` };
  return { ok: true, sha, before: head ?? "0".repeat(40), ref };
}

/** Output goes to the terminal masked exactly as it would be sent to the worker. */
export async function execPipeline(config: AgentConfig, pipeline: PipelineConfig, plan: { sha: string; before: string; ref: string }, secrets: LoadedSecrets, log: Logger): Promise<JobEndStatus> {
  const jobId = `local-${Date.now()}`;
  const out = process.stdout;
  const err = process.stderr;
  // Settles once the stream is done with the bytes (output's buffer is reused after: runner.ts emit), and waits for a full stream.
  const write = (stream: NodeJS.WriteStream, text: string | Uint8Array) => new Promise<void>((r) => void stream.write(text, () => r()));
  const emit = async (body: JobEventBody): Promise<void> => {
    switch (body.kind) {
      case "step-start":
        return write(err, `==> ${body.step}\n`);
      case "output":
        return write(body.stream === "stdout" ? out : err, body.data);
      case "step-end":
        return write(err, `<== ${body.step}: ${body.status}${body.exitCode === null ? "" : ` (exit ${body.exitCode})`}\n`);
      case "job-end":
        return write(err, `==> job ${jobId}: ${body.status}\n`);
      default:
        return assertNever(body, "event body");
    }
  };
  const job = startJob(
    {
      jobId,
      pipeline: pipeline.name,
      fields: { delivery: "local", event: "push", repo: pipeline.repo, ref: plan.ref, sha: plan.sha, before: plan.before, pusher: userInfo().username },
    },
    { pipelines: config.pipelines, killGraceMs: config.killGraceMs, logCapBytes: config.logCapBytes, baseEnv: process.env, secrets, emit, log },
  );
  const onSignal = (signal: NodeJS.Signals) => job.stop("canceled", `canceled by ${signal}`);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await job.done;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
