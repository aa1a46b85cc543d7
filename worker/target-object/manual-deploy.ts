/** A deliberate re-run (POST …/deploy): a job for a declared pipeline without a webhook delivery. */
import { listAgentRows, readStoredPipelines } from "./agents.ts";
import type { PipelineDecl } from "../../shared/protocol.ts";
import { createJob, lastRefAndSha } from "./jobs.ts";
import type { DeliveryInput, JobSummary } from "./types.ts";

export interface DeployRequest {
  pipeline: string;
  agent?: string;
  ref?: string;
  sha?: string;
}

export type DeployResult = { ok: true; delivery: string; jobs: JobSummary[] } | { ok: false; status: 400 | 404; error: string };

const ZERO_SHA = "0".repeat(40);

/** The jobs a deploy request makes, each with the fields it will carry: checked in full before anything is written. */
export type DeployPlan = { ok: true; delivery: string; jobs: { agent: string; pipeline: PipelineDecl; fields: DeliveryInput }[] };
export type DeployRefusal = Extract<DeployResult, { ok: false }>;

/** Reads only. One job per agent declaring the pipeline (or just `agent`); a refusal when any of them cannot be made. */
export function planDeploy(sql: SqlStorage, req: DeployRequest): DeployPlan | DeployRefusal {
  const candidates = listAgentRows(sql)
    .filter((a) => req.agent === undefined || a.name === req.agent)
    .flatMap((a) => readStoredPipelines(a.pipelines).filter((p) => p.name === req.pipeline).map((p) => ({ agent: a.name, pipeline: p })));
  if (candidates.length === 0) {
    return { ok: false, status: 404, error: `no agent${req.agent ? ` ${req.agent}` : ""} declares pipeline ${req.pipeline}` };
  }
  const delivery = `manual-${crypto.randomUUID()}`;
  const jobs: DeployPlan["jobs"] = [];
  for (const { agent, pipeline } of candidates) {
    const last = lastRefAndSha(sql, agent, pipeline.name);
    const ref = req.ref ?? last?.ref;
    const sha = req.sha ?? last?.sha;
    if (ref === undefined || sha === undefined) {
      return { ok: false, status: 400, error: `give ref and sha: ${agent} has no earlier ${pipeline.name} job to re-run` };
    }
    jobs.push({ agent, pipeline, fields: { hookId: "manual", delivery, event: "deploy", repo: pipeline.repo, ref, sha, before: last?.sha ?? ZERO_SHA, pusher: "api" } });
  }
  return { ok: true, delivery, jobs };
}

/** Call inside a transaction: creates the planned jobs. */
export function writeDeploy(sql: SqlStorage, plan: DeployPlan, now: number): DeployResult {
  const jobs = plan.jobs.map(({ agent, pipeline, fields }): JobSummary => ({ id: createJob(sql, agent, pipeline, fields, now), agent, pipeline: pipeline.name, status: "queued" }));
  return { ok: true, delivery: plan.delivery, jobs };
}
