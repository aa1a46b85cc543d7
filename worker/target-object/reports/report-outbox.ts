/**
 * The durable outbox (table `reports`): every message to GitHub or a chat about a deployment is a row,
 * written in the same transaction as the change it reports, so neither an eviction nor a worker restart
 * loses one. The alarm sends them (report-sending.ts), in id order per deployment and channel, retrying
 * network errors, 5xx and rate limits with backoff and giving up after 24 h; nothing here waits for a
 * network, so a report never delays a webhook's answer or a job.
 *
 * Which channels exist comes from the worker's secrets, which only the DO shell sees: it records the
 * setup in `meta` when the object starts (a new secret means a new deployment of the worker, so a new
 * instance), and the plain SQL functions here read it.
 */
import { Reader } from "../../../shared/reader.ts";
import type { SendOutcome } from "../../report/outcome.ts";
import { parseReportBody } from "./report-body.ts";
import type { DeploymentChange, GitHubState, ReportBody, ReportedDeployment, ReportRow } from "./report-record.ts";
import { describeDeployment, hostOutcomes, MAX_DESCRIPTION_CHARS } from "./report-text.ts";
import { isoOrNull, type ReportView } from "../types.ts";
import { logInfo } from "../../console-lines.ts";

export type ChannelState = "on" | "off" | "broken";

/** What the worker's secrets make of reporting, as the API shows it. */
export interface ReportSetup {
  /** The DO's target name (links and the default environment). */
  target: string;
  github: { state: ChannelState; why: string | null };
  notify: { state: ChannelState; why: string | null; on: "all" | "failure"; targets: { channel: string; label: string }[] };
  /** The dashboard's base URL for links (PUBLIC_URL), if set. */
  publicUrl: string | null;
}

export const NO_REPORTING: ReportSetup = {
  target: "default",
  github: { state: "off", why: null },
  notify: { state: "off", why: null, on: "all", targets: [] },
  publicUrl: null,
};

const SETUP_KEY = "report_setup";

/** A channel's state as the API and the log say it: "on", or "off: why" / "broken: why". */
export function channelStateText(c: { state: ChannelState; why: string | null }): string {
  return c.state === "on" ? "on" : `${c.state}${c.why ? `: ${c.why}` : ""}`;
}

/** Records the setup when it changed (a new worker version), and says so once in the log. */
export function recordReportSetup(sql: SqlStorage, setup: ReportSetup): void {
  const stored = sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", SETUP_KEY).toArray()[0]?.value;
  if (stored === JSON.stringify(setup)) return;
  storeReportSetup(sql, setup);
  const chats = setup.notify.targets.map((t) => t.label).join(", ");
  logInfo(`[target ${setup.target}] reporting: ${channelLine("GitHub", setup.github)}; ${channelLine("notifications", setup.notify)}${chats ? ` to ${chats}` : ""}${setup.publicUrl ? `; links to ${setup.publicUrl}` : "; no PUBLIC_URL: reports carry no links"}`);
}

/** A channel in the startup line: "GitHub on", or its reason, which names the channel itself ("GitHub reporting is off: set …"). */
function channelLine(label: string, c: { state: ChannelState; why: string | null }): string {
  if (c.state === "on" || c.why === null) return `${label} ${c.state}`;
  const named = c.why.toLowerCase().startsWith(label.toLowerCase());
  if (c.state === "off") return named ? c.why : `${label} off: ${c.why}`;
  return named ? `${c.why} (misconfigured)` : `${label} misconfigured: ${c.why}`;
}

export function storeReportSetup(sql: SqlStorage, setup: ReportSetup): void {
  sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", SETUP_KEY, JSON.stringify(setup));
}

/** The setup recorded by the shell; none recorded → reporting off. Our own JSON, still read through a Reader. */
export function readReportSetup(sql: SqlStorage): ReportSetup {
  const row = sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", SETUP_KEY).toArray()[0];
  if (!row) return NO_REPORTING;
  const r = new Reader(JSON.parse(row.value), "report_setup");
  const state = (x: Reader) => x.oneOf(["on", "off", "broken"] as const);
  const gh = r.field("github");
  const n = r.field("notify");
  return {
    target: r.field("target").string(),
    github: { state: state(gh.field("state")), why: gh.field("why").optionalString() ?? null },
    notify: {
      state: state(n.field("state")),
      why: n.field("why").optionalString() ?? null,
      on: n.field("on").oneOf(["all", "failure"] as const),
      targets: n.field("targets").array().map((t) => ({ channel: t.field("channel").string(), label: t.field("label").string() })),
    },
    publicUrl: r.field("publicUrl").optionalString() ?? null,
  };
}

function insertReport(sql: SqlStorage, deploymentId: string, channel: string, body: ReportBody, now: number): void {
  sql.exec(
    "INSERT INTO reports (deployment_id, channel, kind, body, state, next_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
    deploymentId,
    channel,
    body.kind,
    JSON.stringify(body),
    now,
    now,
  );
}

export function deploymentPath(target: string, id: string): string {
  return `/targets/${encodeURIComponent(target)}/deployments/${encodeURIComponent(id)}`;
}

const GITHUB_STATE: Record<string, GitHubState> = { succeeded: "success", failed: "failure", canceled: "error", superseded: "inactive", blocked: "failure" };
const NOTIFY_TYPE: Record<string, "deployment.succeeded" | "deployment.failed" | "deployment.canceled" | "deployment.blocked"> = {
  succeeded: "deployment.succeeded",
  failed: "deployment.failed",
  canceled: "deployment.canceled",
  blocked: "deployment.blocked",
};

/** NOTIFY_ON=failure: a failure (a blocked deployment is one), or the first success after one (the pipeline's previous ended deployment failed). */
function worthNotifying(sql: SqlStorage, d: ReportedDeployment, on: "all" | "failure"): boolean {
  if (on === "all" || d.status === "failed" || d.status === "blocked") return true;
  if (d.status !== "succeeded") return false;
  const previous = sql
    .exec<{ status: string }>(
      "SELECT status FROM deployments WHERE pipeline = ? AND id != ? AND status IN ('succeeded', 'failed') AND finished_at IS NOT NULL ORDER BY finished_at DESC, rowid DESC LIMIT 1",
      d.pipeline,
      d.id,
    )
    .toArray()[0];
  return previous?.status === "failed";
}

/** Whether any channel is on: when none is, a deployment's change is told nobody (and costs nothing). */
export function reportingOn(setup: ReportSetup): boolean {
  return setup.github.state === "on" || setup.notify.state === "on";
}

/** GitHub refuses a status description over 140 characters (422). */
function clip(text: string): string {
  return text.length <= MAX_DESCRIPTION_CHARS ? text : `${text.slice(0, MAX_DESCRIPTION_CHARS - 1)}…`;
}

/**
 * Call in the transaction that changed the deployment (deployments/ hands over `d`, read after the
 * change, and the `setup` it checked with reportingOn): queues what each configured channel is told.
 * `created` → GitHub deployment + `queued` (or `pending` "waiting for CI" while a gate is open);
 * `opened` → `queued`; `approval` → `pending` "waiting for approval" and, to every chat, a
 * `deployment.waiting` notification (a person must act); `running` → `in_progress`; `ended` → the
 * final status and, per NOTIFY_ON, a notification (a superseded deployment notifies nobody: a newer one follows).
 */
export function queueReports(sql: SqlStorage, setup: ReportSetup, d: ReportedDeployment, change: DeploymentChange, now: number): void {
  if (!reportingOn(setup)) return;
  const target = setup.target;
  const { name: environment, production, transient } = d.githubEnvironment;
  const hosts = hostOutcomes(sql, d.id);
  const description = d.reason !== null && (d.status === "waiting" || d.status === "blocked") ? clip(d.reason) : describeDeployment(d.status, hosts);
  const path = deploymentPath(target, d.id);
  if (setup.github.state === "on") {
    const status = (state: GitHubState): ReportBody => ({ kind: "github-status", repo: d.repo, state, description, environment, environmentUrl: d.environment_url, path });
    if (change === "created") {
      insertReport(sql, d.id, "github", { kind: "github-deployment", repo: d.repo, sha: d.sha, environment, description, production, transient, target, deployment: d.id }, now);
      insertReport(sql, d.id, "github", status(d.status === "waiting" ? "pending" : "queued"), now);
    } else if (change === "opened") {
      insertReport(sql, d.id, "github", status("queued"), now);
    } else if (change === "approval") {
      insertReport(sql, d.id, "github", status("pending"), now);
    } else if (change === "running") {
      insertReport(sql, d.id, "github", status("in_progress"), now);
    } else {
      const state = GITHUB_STATE[d.status];
      if (state) insertReport(sql, d.id, "github", status(state), now);
    }
  }
  if (setup.notify.state !== "on") return;
  const type = change === "approval" ? "deployment.waiting" : change === "ended" ? NOTIFY_TYPE[d.status] : undefined;
  if (!type || (change === "ended" && !worthNotifying(sql, d, setup.notify.on))) return;
  for (const t of setup.notify.targets) {
    insertReport(sql, d.id, t.channel, {
      kind: "notify", type, target, deployment: d.id, pipeline: d.pipeline, repo: d.repo, ref: d.ref, sha: d.sha, pusher: d.pusher,
      message: d.message, status: d.status, reason: d.reason, path, hosts, at: change === "ended" ? (d.finished_at ?? now) : now,
    }, now);
  }
}

/** Rows not waiting behind an earlier pending row of their deployment and channel (the order per channel). */
const UNBLOCKED = `state = 'pending' AND NOT EXISTS (
  SELECT 1 FROM reports p WHERE p.deployment_id = reports.deployment_id AND p.channel = reports.channel AND p.id < reports.id AND p.state = 'pending')`;

/** When the next report is due (for the alarm), or null. */
export function nextReportDue(sql: SqlStorage): number | null {
  return sql.exec<{ t: number | null }>(`SELECT min(next_at) AS t FROM reports WHERE ${UNBLOCKED}`).one().t;
}

/** Due rows, oldest first. */
export function dueReports(sql: SqlStorage, now: number, limit: number): ReportRow[] {
  return sql.exec<ReportRow>(`SELECT * FROM reports WHERE ${UNBLOCKED} AND next_at <= ? ORDER BY id LIMIT ?`, now, limit).toArray();
}

/**
 * A row being sent is leased for this long, more than the longest send: a GitHub App send is up to
 * three calls (installation, token, the call) of 15 s each. A second alarm pass meanwhile leaves it
 * alone, and a worker restarted mid-send tries it again after it.
 */
export const SEND_LEASE_MS = 60_000;
/** Retrying ends this long after the row was queued. */
export const GIVE_UP_MS = 24 * 3_600_000;
const MAX_BACKOFF_MS = 3_600_000;

/**
 * The attempt counts from its lease: a worker stopped mid-send leaves it counted, so the next attempt
 * knows an earlier one may have reached the receiver (the GitHub sender then looks before sending
 * again). recordOutcome writes the same count (the row it gets was read before the lease).
 */
export function leaseReport(sql: SqlStorage, id: number, now: number): void {
  sql.exec("UPDATE reports SET next_at = ?, attempts = attempts + 1 WHERE id = ?", now + SEND_LEASE_MS, id);
}

/** The GitHub deployment id a deployment's creation got back (kept on its `github-deployment` report), if it did. */
export function githubDeploymentId(sql: SqlStorage, deploymentId: string): number | null {
  return (
    sql
      .exec<{ github_id: number | null }>("SELECT github_id FROM reports WHERE deployment_id = ? AND kind = 'github-deployment' AND github_id IS NOT NULL ORDER BY id LIMIT 1", deploymentId)
      .toArray()[0]?.github_id ?? null
  );
}

/** A deployment's reports go with it (retention: deployments.ts). */
export function deleteReportsOf(sql: SqlStorage, deploymentId: string): void {
  sql.exec("DELETE FROM reports WHERE deployment_id = ?", deploymentId);
}

export type RecordedState = "sent" | "retrying" | "given_up" | "failed";

/** Applies one attempt's outcome; returns what the row became (and when it is tried again). */
export function recordOutcome(sql: SqlStorage, row: ReportRow, outcome: SendOutcome, now: number, backoffMs: number): { state: RecordedState; nextAt: number | null } {
  const attempts = row.attempts + 1;
  switch (outcome.kind) {
    case "sent": {
      // GitHub's answer to creating its deployment carries the id every later status is posted to.
      const body = outcome.body;
      const githubId = row.kind === "github-deployment" && typeof body === "object" && body !== null && "id" in body && typeof body.id === "number" ? body.id : null;
      sql.exec("UPDATE reports SET state = 'sent', attempts = ?, done_at = ?, last_error = NULL, github_id = COALESCE(?, github_id) WHERE id = ?", attempts, now, githubId, row.id);
      return { state: "sent", nextAt: null };
    }
    case "fail":
      sql.exec("UPDATE reports SET state = 'failed', attempts = ?, done_at = ?, last_error = ? WHERE id = ?", attempts, now, outcome.error, row.id);
      return { state: "failed", nextAt: null };
    case "retry": {
      if (now - row.created_at >= GIVE_UP_MS) {
        sql.exec("UPDATE reports SET state = 'given_up', attempts = ?, done_at = ?, last_error = ? WHERE id = ?", attempts, now, `gave up after 24 h: ${outcome.error}`, row.id);
        return { state: "given_up", nextAt: null };
      }
      const wait = Math.min(backoffMs * 2 ** Math.min(attempts - 1, 20), MAX_BACKOFF_MS);
      const nextAt = Math.max(now + wait, outcome.notBefore ?? 0);
      sql.exec("UPDATE reports SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?", attempts, nextAt, outcome.error, row.id);
      return { state: "retrying", nextAt };
    }
  }
}

function describeBody(body: ReportBody): string {
  switch (body.kind) {
    case "github-deployment":
      return `GitHub deployment of ${body.sha.slice(0, 7)} to ${body.environment}`;
    case "github-status":
      return `GitHub status ${body.state}`;
    case "notify":
      return `notification ${body.type}`;
  }
}

function describedRow(row: ReportRow): string {
  try {
    return describeBody(parseReportBody(row));
  } catch {
    return `unreadable ${row.kind} report`;
  }
}

export function reportViews(sql: SqlStorage, deploymentId: string): ReportView[] {
  return sql
    .exec<ReportRow>("SELECT * FROM reports WHERE deployment_id = ? ORDER BY id", deploymentId)
    .toArray()
    .map((row) => {
      const pending = row.state === "pending";
      const state = pending ? (row.attempts > 0 ? "retrying" : "pending") : row.state === "sent" || row.state === "failed" || row.state === "given_up" ? row.state : "failed";
      return {
        id: row.id,
        channel: row.channel,
        what: describedRow(row),
        state,
        attempts: row.attempts,
        nextAttemptAt: pending ? isoOrNull(row.next_at) : null,
        lastError: row.last_error,
        createdAt: isoOrNull(row.created_at),
        doneAt: isoOrNull(row.done_at),
      };
    });
}
