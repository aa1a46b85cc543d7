/** A deliberate re-run (POST …/deploy): a job for a declared pipeline without a webhook delivery. */
import { listAgentRows, readStoredPipelines } from "./agents.ts";
import { createJob } from "./jobs.ts";
import type { JobSummary } from "./types.ts";

export interface DeployRequest {
  pipeline: string;
  agent?: string;
  ref?: string;
  sha?: string;
}

export type DeployResult = { ok: true; delivery: string; jobs: JobSummary[] } | { ok: false; status: 400 | 404; error: string };

const ZERO_SHA = "0".repeat(40);

/** Call inside a transaction. One job per agent declaring the pipeline (or just `agent`). */
export function createDeployJobs(sql: SqlStorage, req: DeployRequest, now: number): DeployResult {
  const candidates = listAgentRows(sql)
    .filter((a) => req.agent === undefined || a.name === req.agent)
    .flatMap((a) => readStoredPipelines(a.pipelines).filter((p) => p.name === req.pipeline).map((p) => ({ agent: a.name, pipeline: p })));
  if (candidates.length === 0) {
    return { ok: false, status: 404, error: `no agent${req.agent ? ` ${req.agent}` : ""} declares pipeline ${req.pipeline}` };
  }
  const delivery = `manual-${crypto.randomUUID()}`;
  const jobs: JobSummary[] = [];
  for (const { agent, pipeline } of candidates) {
    const last = sql
      .exec<{ ref: string; sha: string }>("SELECT ref, sha FROM jobs WHERE agent = ? AND pipeline = ? ORDER BY created_at DESC, rowid DESC LIMIT 1", agent, pipeline.name)
      .toArray()[0];
    const ref = req.ref ?? last?.ref;
    const sha = req.sha ?? last?.sha;
    if (ref === undefined || sha === undefined) {
      return { ok: false, status: 400, error: `give ref and sha: ${agent} has no earlier ${pipeline.name} job to re-run` };
    }
    const id = createJob(sql, agent, pipeline, { hookId: "manual", delivery, event: "deploy", repo: pipeline.repo, ref, sha, before: last?.sha ?? ZERO_SHA, pusher: "api" }, now);
    jobs.push({ id, agent, pipeline: pipeline.name, status: "queued" });
  }
  return { ok: true, delivery, jobs };
}
