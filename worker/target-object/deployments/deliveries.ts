/**
 * Turning a verified delivery into deployments and their jobs, exactly once per (hook id, delivery) and once per body: the
 * answer is stored in the same transaction that creates the jobs, and a redelivery gets that stored
 * answer back. The delivery headers are not signed, so a captured body replayed under a fresh GUID is
 * found by its hash and gets the first answer too. A stale push (its signed pushed_at past retention)
 * makes no job and no record: with nothing stored, a replay of it is answered the same way.
 */
import { Reader } from "../../../shared/reader.ts";
import { listAgentRows, readStoredPipelines } from "../agents/agents.ts";
import { jobStatusOf } from "../jobs/job-record.ts";
import { type NewMember } from "./deployments.ts";
import { createDeployment, decideAndMove } from "./lifecycle.ts";
import { noMatchReason, pathsExclude, pipelineMatches } from "./matching.ts";
import type { ConclusionDelivery, DeliveryAnswer, DeliveryBody, DeploymentSummary, JobSummary, WebhookDelivery } from "../types.ts";
import { conclusionPasses } from "../../../shared/gates.ts";
import { logInfo } from "../../console-lines.ts";
import { newerAttempt, storeConclusion } from "./conclusions.ts";
import { deploymentMembers } from "../jobs/jobs.ts";
import { getDeployment } from "./deployments.ts";
import { blockedByGate, type Decision, deploymentsWaitingFor } from "./gates.ts";

function readStoredAnswer(status: number, text: string): DeliveryAnswer {
  const r = new Reader(JSON.parse(text), "answer");
  const body: DeliveryBody = {
    delivery: r.field("delivery").string(),
    jobs: r.field("jobs").array().map((j) => ({
      id: j.field("id").string(),
      agent: j.field("agent").string(),
      pipeline: j.field("pipeline").string(),
      status: jobStatusOf(j.field("status").string()),
    })),
  };
  if (r.has("deployments")) {
    body.deployments = r.field("deployments").array().map((p) => ({
      id: p.field("id").string(),
      pipeline: p.field("pipeline").string(),
      jobs: p.field("jobs").array().map((j) => j.string()),
    }));
  }
  if (r.has("gates")) {
    body.gates = r.field("gates").array().map((g) => ({
      deployment: g.field("deployment").string(),
      gate: g.field("gate").string(),
      state: g.field("state").oneOf(["passed", "failed"] as const),
    }));
  }
  const ignored = r.field("ignored").optionalString();
  if (ignored !== undefined) body.ignored = ignored;
  return { status: status === 202 ? 202 : 200, body };
}

type StoredRow = { status: number; answer: string };

/** The answer stored for this (hook id, delivery), or else for this body. */
export function findStoredAnswer(sql: SqlStorage, hookId: string, delivery: string, bodyHash: string): DeliveryAnswer | null {
  const row =
    sql.exec<StoredRow>("SELECT status, answer FROM deliveries WHERE hook_id = ? AND delivery = ?", hookId, delivery).toArray()[0] ??
    sql.exec<StoredRow>("SELECT status, answer FROM deliveries WHERE body_hash = ?", bodyHash).toArray()[0];
  return row ? readStoredAnswer(row.status, row.answer) : null;
}

/** Call inside a transaction. Returns the answer and whether it was a redelivery (or a replay). */
export function acceptDelivery(sql: SqlStorage, d: WebhookDelivery, now: number): { answer: DeliveryAnswer; duplicate: boolean } {
  const stored = findStoredAnswer(sql, d.hookId, d.delivery, d.bodyHash);
  if (stored) return { answer: stored, duplicate: true };
  if (d.stale !== null) return { answer: { status: 200, body: { delivery: d.delivery, jobs: [], ignored: d.stale } }, duplicate: false };

  // One deployment per matched pipeline, with a job for each agent whose declaration of it matches.
  const matched = new Map<string, NewMember[]>();
  let pathsReason: string | null = null;
  for (const agent of listAgentRows(sql)) {
    for (const pipeline of readStoredPipelines(agent.pipelines)) {
      if (!pipelineMatches(pipeline, d)) continue;
      const excluded = pathsExclude(pipeline, d.changedFiles);
      if (excluded !== null) {
        pathsReason ??= excluded;
        continue;
      }
      matched.set(pipeline.name, [...(matched.get(pipeline.name) ?? []), { agent: agent.name, pipeline }]);
    }
  }
  const jobs: JobSummary[] = [];
  const deployments: DeploymentSummary[] = [];
  for (const members of matched.values()) {
    const created = createDeployment(sql, { members, fields: d, message: d.message, now });
    jobs.push(...created.jobs);
    deployments.push(created.deployment);
  }
  const answer: DeliveryAnswer =
    jobs.length > 0
      ? { status: 202, body: { delivery: d.delivery, jobs, deployments } }
      : { status: 200, body: { delivery: d.delivery, jobs: [], ignored: pathsReason ?? noMatchReason(d) } };
  recordAnswer(sql, d, answer, now);
  return { answer, duplicate: false };
}

/** Stores the answer, so a redelivery (same hook id and GUID, or the same body) gets it again. */
function recordAnswer(sql: SqlStorage, d: { hookId: string; delivery: string; bodyHash: string }, answer: DeliveryAnswer, now: number): void {
  sql.exec(
    "INSERT INTO deliveries (hook_id, delivery, status, answer, created_at, body_hash) VALUES (?, ?, ?, ?, ?, ?)",
    d.hookId,
    d.delivery,
    answer.status,
    JSON.stringify(answer.body),
    now,
    d.bodyHash,
  );
}

/**
 * Call inside a transaction. A CI run's conclusion, exactly once per delivery and body as a push: a
 * fork's run is refused (it never opens a gate); otherwise it is kept (one that came before its push
 * opens the gate when the push comes: gates.ts), decides that gate of every deployment of the commit
 * waiting for it, and — a passing re-run — deploys the commit again for each pipeline whose newest
 * deployment that gate blocked.
 */
export function acceptConclusion(sql: SqlStorage, d: ConclusionDelivery, now: number): { answer: DeliveryAnswer; duplicate: boolean } {
  const stored = findStoredAnswer(sql, d.hookId, d.delivery, d.bodyHash);
  if (stored) return { answer: stored, duplicate: true };
  const run = d.run;
  const what = `${run.kind} ${run.name} at ${run.sha.slice(0, 7)} of ${run.repo}`;
  const ignore = (why: string): DeliveryAnswer => ({ status: 200, body: { delivery: d.delivery, jobs: [], ignored: why } });
  if (d.stale !== null) return { answer: ignore(d.stale), duplicate: false };
  if (run.headRepo === null || run.headRepo.toLowerCase() !== run.repo.toLowerCase()) {
    const answer = ignore(`${what}: a run of another repository's commit (${run.headRepo ?? "unknown"}, a fork) never opens a gate`);
    recordAnswer(sql, d, answer, now);
    return { answer, duplicate: false };
  }
  // A repository no pipeline here is for (an organisation's hook delivers every repository's runs):
  // nothing to keep, and no record — answering it again changes nothing either.
  const declared = listAgentRows(sql).some((a) => readStoredPipelines(a.pipelines).some((p) => p.repo.toLowerCase() === run.repo.toLowerCase()));
  if (!declared) return { answer: ignore(`${what}: no pipeline of this target is for ${run.repo}`), duplicate: false };
  const newer = newerAttempt(sql, run);
  if (newer !== null) {
    const answer = ignore(`${what}: attempt ${run.attempt} of run ${run.runId} came after attempt ${newer} concluded; the newer attempt's conclusion stands`);
    recordAnswer(sql, d, answer, now);
    return { answer, duplicate: false };
  }
  storeConclusion(sql, run, now);
  const passed = conclusionPasses(run.conclusion);
  const decision: Decision = { state: passed ? "passed" : "failed", url: run.url, by: run.conclusion, note: null };
  const gates: NonNullable<DeliveryBody["gates"]> = [];
  for (const id of deploymentsWaitingFor(sql, run.repo, run.sha, run.kind, run.name)) {
    if (decideAndMove(sql, id, run, decision, now)) gates.push({ deployment: id, gate: `${run.kind} ${run.name}`, state: decision.state });
  }
  const jobs: JobSummary[] = [];
  const deployments: DeploymentSummary[] = [];
  if (passed) {
    for (const blocked of blockedByGate(sql, run.repo, run.sha, run.kind, run.name)) {
      const again = redeployBlocked(sql, blocked.id, d, now);
      if (!again) continue;
      jobs.push(...again.jobs);
      deployments.push(again.deployment);
    }
  }
  const answer: DeliveryAnswer =
    gates.length > 0 || jobs.length > 0
      ? { status: jobs.length > 0 ? 202 : 200, body: { delivery: d.delivery, jobs, deployments, gates } }
      : ignore(`${what}: no deployment waits for it (kept: a push of that commit will find it)`);
  recordAnswer(sql, d, answer, now);
  return { answer, duplicate: false };
}

/**
 * The blocked deployment's commit again, on its own hosts (those the push matched: their branches and
 * paths took it) that still declare its pipeline, waiting at their gates anew.
 */
function redeployBlocked(sql: SqlStorage, blockedId: string, d: ConclusionDelivery, now: number): { deployment: DeploymentSummary; jobs: JobSummary[] } | null {
  const old = getDeployment(sql, blockedId);
  if (!old) return null;
  const hosts = new Set(deploymentMembers(sql, blockedId).map((j) => j.agent));
  const members = listAgentRows(sql)
    .filter((a) => hosts.has(a.name))
    .flatMap((a) =>
      readStoredPipelines(a.pipelines)
        .filter((p) => p.name === old.pipeline && p.repo.toLowerCase() === old.repo.toLowerCase())
        .map((pipeline): NewMember => ({ agent: a.name, pipeline })),
    );
  if (members.length === 0) return null;
  const fields = { hookId: d.hookId, delivery: d.delivery, event: old.event, repo: old.repo, ref: old.ref, sha: old.sha, before: old.before, pusher: old.pusher };
  logInfo(`[delivery ${d.delivery}] ${d.run.kind} ${d.run.name} passed on a re-run: ${old.pipeline} at ${old.sha.slice(0, 7)} deploys again (blocked deployment ${old.id})`);
  return createDeployment(sql, { members, fields, message: old.message, now });
}

/** Delivery records older than `retentionMs` go (a push that old is answered `ignored` by its signed age anyway). */
export function deleteExpiredDeliveries(sql: SqlStorage, retentionMs: number, now: number): void {
  sql.exec("DELETE FROM deliveries WHERE created_at + ? <= ?", retentionMs, now);
}
