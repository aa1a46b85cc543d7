/** A deliberate re-run (POST …/deploy): a deployment of a declared pipeline without a webhook delivery. */
import { listAgentRows, readStoredPipelines } from "../agents/agents.ts";
import { type NewMember } from "./deployments.ts";
import { createDeployment } from "./lifecycle.ts";
import type { DeliveryInput, DeploymentSummary, JobSummary } from "../types.ts";

export interface DeployRequest {
  pipeline: string;
  agent?: string;
  ref?: string;
  sha?: string;
}

export type DeployResult =
  | { ok: true; delivery: string; jobs: JobSummary[]; deployments: DeploymentSummary[] }
  | { ok: false; status: 400 | 404; error: string };

const ZERO_SHA = "0".repeat(40);

/** What a deploy request makes, checked in full before anything is written. */
export type DeployPlan = { ok: true; members: NewMember[]; fields: DeliveryInput; message: string };
export type DeployRefusal = Extract<DeployResult, { ok: false }>;

interface LastRun extends Record<string, SqlStorageValue> {
  ref: string;
  sha: string;
  event: string;
}

/** The newest job of the pipeline on any of `agents`: what a re-run without ref and sha deploys again. */
function newestRun(sql: SqlStorage, pipeline: string, agents: string[]): LastRun | undefined {
  const marks = agents.map(() => "?").join(", ");
  return sql
    .exec<LastRun>(`SELECT ref, sha, event FROM jobs WHERE pipeline = ? AND agent IN (${marks}) ORDER BY created_at DESC, rowid DESC LIMIT 1`, pipeline, ...agents)
    .toArray()[0];
}

/** Reads only. One job per agent declaring the pipeline (or just `agent`), in one deployment. */
export function planDeploy(sql: SqlStorage, req: DeployRequest): DeployPlan | DeployRefusal {
  const members = listAgentRows(sql)
    .filter((a) => req.agent === undefined || a.name === req.agent)
    .flatMap((a) => readStoredPipelines(a.pipelines).filter((p) => p.name === req.pipeline).map((p): NewMember => ({ agent: a.name, pipeline: p })));
  if (members.length === 0) {
    return { ok: false, status: 404, error: `no agent${req.agent ? ` ${req.agent}` : ""} declares pipeline ${req.pipeline}` };
  }
  const repos = new Set(members.map((m) => m.pipeline.repo.toLowerCase()));
  if (repos.size > 1) {
    const said = members.map((m) => `${m.agent}: ${m.pipeline.repo}`).join(", ");
    return { ok: false, status: 400, error: `the agents declare pipeline ${req.pipeline} for different repos (${said}): give agent` };
  }
  const last = newestRun(sql, req.pipeline, members.map((m) => m.agent));
  const ref = req.ref ?? last?.ref;
  const sha = req.sha ?? last?.sha;
  if (ref === undefined || sha === undefined) {
    return { ok: false, status: 400, error: `give ref and sha: there is no earlier ${req.pipeline} job${req.agent ? ` on ${req.agent}` : ""} to re-run` };
  }
  // The commit's message, if a push of this sha brought one.
  const message =
    sql.exec<{ message: string }>("SELECT message FROM deployments WHERE pipeline = ? AND sha = ? AND message != '' ORDER BY created_at DESC LIMIT 1", req.pipeline, sha).toArray()[0]
      ?.message ?? "";
  const delivery = `manual-${crypto.randomUUID()}`;
  // The event is the one the re-run deploys again (a push): the agent runs only events its own config
  // lists, so a made-up "deploy" event would be refused there. The delivery (manual-…) and the pusher
  // ("api") say it was a re-run.
  const event = last?.event ?? members[0]!.pipeline.events[0] ?? "push";
  const fields: DeliveryInput = { hookId: "manual", delivery, event, repo: members[0]!.pipeline.repo, ref, sha, before: last?.sha ?? ZERO_SHA, pusher: "api" };
  return { ok: true, members, fields, message };
}

/** Call inside a transaction: creates the planned deployment. */
export function writeDeploy(sql: SqlStorage, plan: DeployPlan, now: number): DeployResult {
  // The admin who asked is its approval; its CI gates still wait for its commit's runs (concluded already → at once).
  const { deployment, jobs } = createDeployment(sql, { members: plan.members, fields: plan.fields, message: plan.message, now, approvedBy: "api" });
  return { ok: true, delivery: plan.fields.delivery, jobs, deployments: [deployment] };
}
