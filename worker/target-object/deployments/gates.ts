/**
 * A deployment's gates (table `gates`): what it waits for before any host runs it — each CI workflow
 * and check its hosts' `wait_for` names, which must conclude success on the deployment's own commit,
 * and a person's approval. Several hosts declaring one pipeline: the union of their gates (each gate
 * says which hosts asked for it) and the shortest timeout. A gate is decided once; what that does to
 * the deployment (it opens, or ends `blocked`) is lifecycle.ts's.
 */
import { conclusionPasses } from "../../../shared/gates.ts";
import { formatDuration } from "../../duration-text.ts";
import { type GateKind, type GateState, type GateView, GATE_KINDS, GATE_STATES, isoOrNull } from "../types.ts";
import { newestConclusion } from "./conclusions.ts";
import type { PipelineDecl } from "../../../shared/protocol.ts";
import { storedStatus } from "../jobs/job-record.ts";

export interface PlannedGate {
  kind: GateKind;
  name: string;
  requiredBy: string[];
}

export interface GatePlan {
  gates: PlannedGate[];
  /** How long the deployment may wait: the shortest any host declared. */
  timeoutMs: number;
}

/** The approval gate's name. */
export const APPROVAL = "approval";

/** The union of the members' `wait_for`, workflows then checks then approval; null when none asks for anything. */
export function planGates(members: readonly { agent: string; pipeline: PipelineDecl }[]): GatePlan | null {
  const byKey = new Map<string, PlannedGate>();
  let timeoutMs = Infinity;
  const add = (kind: GateKind, name: string, agent: string) => {
    const key = `${kind}\u0000${name}`;
    const gate = byKey.get(key) ?? { kind, name, requiredBy: [] };
    if (!gate.requiredBy.includes(agent)) gate.requiredBy.push(agent);
    byKey.set(key, gate);
  };
  for (const { agent, pipeline } of members) {
    const w = pipeline.waitFor;
    if (!w || (w.workflows.length === 0 && w.checks.length === 0 && !w.approval)) continue;
    timeoutMs = Math.min(timeoutMs, w.timeoutMs);
    for (const name of w.workflows) add("workflow", name, agent);
    for (const name of w.checks) add("check", name, agent);
    if (w.approval) add("approval", APPROVAL, agent);
  }
  if (byKey.size === 0) return null;
  const order = (g: PlannedGate) => GATE_KINDS.indexOf(g.kind);
  const gates = [...byKey.values()].sort((a, b) => order(a) - order(b));
  return { gates, timeoutMs };
}

interface GateRow extends Record<string, SqlStorageValue> {
  deployment_id: string;
  kind: string;
  name: string;
  state: string;
  url: string | null;
  decided_at: number | null;
  decided_by: string | null;
  note: string | null;
  required_by: string;
}

/**
 * Call inside a transaction, with the deployment's row written: its gates, waiting — then each CI
 * gate decided by the newest conclusion already stored for the commit (one that came before the
 * push), and the approval by `approvedBy` when given (a manual deploy: the admin who asked).
 */
export function insertGates(sql: SqlStorage, d: { id: string; repo: string; sha: string }, plan: GatePlan, approvedBy: string | null, now: number): void {
  plan.gates.forEach((g, position) => {
    sql.exec(
      "INSERT INTO gates (deployment_id, position, kind, name, state, required_by) VALUES (?, ?, ?, ?, 'waiting', ?)",
      d.id,
      position,
      g.kind,
      g.name,
      JSON.stringify(g.requiredBy),
    );
    if (g.kind === "approval") {
      if (approvedBy !== null) decideGate(sql, d.id, g.kind, g.name, { state: "passed", url: null, by: approvedBy, note: "the deploy was asked for by the admin" }, now);
      return;
    }
    const stored = newestConclusion(sql, d.repo, d.sha, g.kind, g.name);
    if (stored) {
      decideGate(sql, d.id, g.kind, g.name, { state: conclusionPasses(stored.conclusion) ? "passed" : "failed", url: stored.url, by: stored.conclusion, note: null }, stored.received_at);
      return;
    }
    // The conclusion may be gone (past MAX_CONCLUSIONS) while an earlier deployment of the commit kept
    // what it said: a rollback to the last good commit does not wait for CI that will not run again.
    const earlier = earlierDecision(sql, d, g);
    if (earlier) decideGate(sql, d.id, g.kind, g.name, { state: earlier.state === "passed" ? "passed" : "failed", url: earlier.url, by: earlier.decided_by, note: null }, earlier.decided_at);
  });
}

/** The newest CI decision an earlier deployment of this commit recorded for this gate (not a timeout's). */
function earlierDecision(sql: SqlStorage, d: { id: string; repo: string; sha: string }, g: PlannedGate): { state: string; url: string | null; decided_by: string | null; decided_at: number } | undefined {
  return sql
    .exec<{ state: string; url: string | null; decided_by: string | null; decided_at: number }>(
      `SELECT g.state, g.url, g.decided_by, g.decided_at FROM gates g JOIN deployments d ON d.id = g.deployment_id
       WHERE g.deployment_id != ? AND lower(d.repo) = lower(?) AND d.sha = ? AND g.kind = ? AND g.name = ?
         AND g.state IN ('passed', 'failed') AND g.decided_by IS NOT ? AND g.decided_at IS NOT NULL
       ORDER BY g.decided_at DESC LIMIT 1`,
      d.id,
      d.repo,
      d.sha,
      g.kind,
      g.name,
      TIMED_OUT,
    )
    .toArray()[0];
}

/** Who decided a gate the timeout closed. */
export const TIMED_OUT = "timeout";

/** The gate timeout: every gate still waiting fails, decided by the timeout (a late CI success is then a re-run). */
export function failOpenGates(sql: SqlStorage, deploymentId: string, now: number): void {
  sql.exec("UPDATE gates SET state = 'failed', decided_by = ?, decided_at = ? WHERE deployment_id = ? AND state = 'waiting'", TIMED_OUT, now, deploymentId);
}

export interface Decision {
  state: "passed" | "failed";
  url: string | null;
  by: string | null;
  note: string | null;
}

/** Decides a gate still waiting; returns whether it was. */
export function decideGate(sql: SqlStorage, deploymentId: string, kind: GateKind, name: string, d: Decision, now: number): boolean {
  return (
    sql.exec(
      "UPDATE gates SET state = ?, url = ?, decided_by = ?, note = ?, decided_at = ? WHERE deployment_id = ? AND kind = ? AND name = ? AND state = 'waiting'",
      d.state,
      d.url,
      d.by,
      d.note,
      now,
      deploymentId,
      kind,
      name,
    ).rowsWritten > 0
  );
}

function gateRows(sql: SqlStorage, deploymentId: string): GateRow[] {
  return sql.exec<GateRow>("SELECT * FROM gates WHERE deployment_id = ? ORDER BY position", deploymentId).toArray();
}

export function gateViews(sql: SqlStorage, deploymentId: string): GateView[] {
  return gateRows(sql, deploymentId).map((g) => ({
    kind: storedStatus(GATE_KINDS, g.kind, "gate kind"),
    name: g.name,
    state: storedStatus(GATE_STATES, g.state, "gate"),
    url: g.url,
    at: isoOrNull(g.decided_at),
    by: g.decided_by,
    note: g.note,
    requiredBy: readRequiredBy(g.required_by),
  }));
}

function readRequiredBy(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

export type GateOutcome =
  /** Every gate passed: the deployment goes on. */
  | { kind: "open" }
  /** A gate failed: the deployment ends blocked, saying why. */
  | { kind: "blocked"; reason: string }
  /** Some gate still waits; `for` says what ("CI", "approval"). */
  | { kind: "waiting"; for: "CI" | "approval" };

function gateLabel(g: Pick<GateRow, "kind" | "name">): string {
  return g.kind === "workflow" ? `workflow ${g.name}` : g.kind === "check" ? `check ${g.name}` : "approval";
}

/** What the deployment's gates say now. */
export function gateOutcome(sql: SqlStorage, deploymentId: string): GateOutcome {
  const rows = gateRows(sql, deploymentId);
  const failed = rows.find((g) => g.state === "failed");
  if (failed) {
    if (failed.kind === "approval") return { kind: "blocked", reason: `rejected${failed.decided_by ? ` by ${failed.decided_by}` : ""}${failed.note ? `: ${failed.note}` : ""}` };
    return { kind: "blocked", reason: `CI concluded ${failed.decided_by ?? "failure"} (${gateLabel(failed)})${failed.url ? ` — ${failed.url}` : ""}` };
  }
  const open = rows.filter((g) => g.state === "waiting");
  if (open.length === 0) return { kind: "open" };
  return { kind: "waiting", for: open.some((g) => g.kind !== "approval") ? "CI" : "approval" };
}

/** Why a deployment still waiting at its gate timeout ends blocked. */
export function timeoutReason(sql: SqlStorage, deploymentId: string, waitedMs: number): string {
  const open = gateRows(sql, deploymentId).filter((g) => g.state === "waiting");
  const ci = open.filter((g) => g.kind !== "approval");
  if (ci.length > 0) return `CI did not finish within ${formatDuration(waitedMs)} (still waiting for ${ci.map(gateLabel).join(", ")})`;
  return `not approved within ${formatDuration(waitedMs)}`;
}

/** Waiting deployments of this commit whose gate (kind, name) still waits. */
export function deploymentsWaitingFor(sql: SqlStorage, repo: string, sha: string, kind: GateKind, name: string): string[] {
  return sql
    .exec<{ id: string }>(
      `SELECT d.id FROM deployments d JOIN gates g ON g.deployment_id = d.id
       WHERE d.status = 'waiting' AND lower(d.repo) = lower(?) AND d.sha = ? AND g.kind = ? AND g.name = ? AND g.state = 'waiting'
       ORDER BY d.created_at, d.rowid`,
      repo,
      sha,
      kind,
      name,
    )
    .toArray()
    .map((r) => r.id);
}

/**
 * Pipelines whose newest deployment is of this commit and ended blocked by this gate failing: a re-run
 * that passes deploys the commit again (lifecycle.ts). A newer deployment of the pipeline (a later push) wins.
 */
export function blockedByGate(sql: SqlStorage, repo: string, sha: string, kind: GateKind, name: string): { id: string; pipeline: string }[] {
  return sql
    .exec<{ id: string; pipeline: string }>(
      `SELECT d.id, d.pipeline FROM deployments d JOIN gates g ON g.deployment_id = d.id
       WHERE d.status = 'blocked' AND lower(d.repo) = lower(?) AND d.sha = ? AND g.kind = ? AND g.name = ? AND g.state = 'failed'
         AND d.rowid = (SELECT n.rowid FROM deployments n WHERE n.pipeline = d.pipeline ORDER BY n.created_at DESC, n.rowid DESC LIMIT 1)`,
      repo,
      sha,
      kind,
      name,
    )
    .toArray();
}

/** Gate states as stored; a deployment's gates go with it (retention). */
export function deleteGatesOf(sql: SqlStorage, deploymentId: string): void {
  sql.exec("DELETE FROM gates WHERE deployment_id = ?", deploymentId);
}

export type { GateState };
