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
import { createDeployment } from "./lifecycle.ts";
import { noMatchReason, pipelineMatches } from "./matching.ts";
import type { DeliveryAnswer, DeliveryBody, DeploymentSummary, JobSummary, WebhookDelivery } from "../types.ts";

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
  for (const agent of listAgentRows(sql)) {
    for (const pipeline of readStoredPipelines(agent.pipelines)) {
      if (pipelineMatches(pipeline, d)) matched.set(pipeline.name, [...(matched.get(pipeline.name) ?? []), { agent: agent.name, pipeline }]);
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
      : { status: 200, body: { delivery: d.delivery, jobs: [], ignored: noMatchReason(d) } };
  sql.exec(
    "INSERT INTO deliveries (hook_id, delivery, status, answer, created_at, body_hash) VALUES (?, ?, ?, ?, ?, ?)",
    d.hookId,
    d.delivery,
    answer.status,
    JSON.stringify(answer.body),
    now,
    d.bodyHash,
  );
  return { answer, duplicate: false };
}

/** Delivery records older than `retentionMs` go (a push that old is answered `ignored` by its signed age anyway). */
export function deleteExpiredDeliveries(sql: SqlStorage, retentionMs: number, now: number): void {
  sql.exec("DELETE FROM deliveries WHERE created_at + ? <= ?", retentionMs, now);
}
