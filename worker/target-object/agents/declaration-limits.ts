/**
 * What one agent may declare in its hello. Past a limit the hello is refused with a clear `error`
 * frame and the socket closed (agent-frames.ts), so an agent token cannot make the DO store, match or
 * list an unbounded declaration. (Each branch glob's 255-character cap is the protocol's own.)
 */
import { MAX_BRANCH_GLOBS_PER_PIPELINE, MAX_DECLARED_STEPS_PER_PIPELINE, MAX_PIPELINE_TIMEOUT_MS, MAX_PIPELINES_PER_AGENT } from "../../../shared/limits.ts";
import type { PipelineDecl } from "../../../shared/protocol.ts";

/** Why this declaration is over a limit, or null when it is within all of them. */
export function declarationOverLimit(pipelines: readonly PipelineDecl[]): string | null {
  if (pipelines.length > MAX_PIPELINES_PER_AGENT) {
    return `${pipelines.length} pipelines: an agent may declare at most ${MAX_PIPELINES_PER_AGENT}`;
  }
  for (const p of pipelines) {
    if (p.branches.length > MAX_BRANCH_GLOBS_PER_PIPELINE) {
      return `pipeline ${p.name}: ${p.branches.length} branch globs: a pipeline may declare at most ${MAX_BRANCH_GLOBS_PER_PIPELINE}`;
    }
    const steps = p.steps.length + p.onFailure.length;
    if (steps > MAX_DECLARED_STEPS_PER_PIPELINE) {
      return `pipeline ${p.name}: ${steps} declared steps (steps and on_failure): a pipeline may declare at most ${MAX_DECLARED_STEPS_PER_PIPELINE}`;
    }
    if (p.timeoutMs > MAX_PIPELINE_TIMEOUT_MS) {
      return `pipeline ${p.name}: timeoutMs ${p.timeoutMs}: a pipeline's timeout may be at most ${MAX_PIPELINE_TIMEOUT_MS} ms (24 h)`;
    }
  }
  return null;
}

/**
 * Why this declaration cannot be taken, or null. A pipeline name twice would make one deployment
 * count the agent twice (a job per declaration: more hosts than agents, a batch with nobody in it).
 * The agent's own config loader refuses it too; this is the DO not trusting that.
 */
export function declarationInvalid(pipelines: readonly PipelineDecl[]): string | null {
  const seen = new Set<string>();
  for (const p of pipelines) {
    if (seen.has(p.name)) return `pipeline ${JSON.stringify(p.name)} is declared twice: pipeline names must be unique within an agent`;
    seen.add(p.name);
  }
  return null;
}
