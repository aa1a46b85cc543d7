/** A report row's body (report-outbox.ts) read back: our own JSON, still through a Reader, never cast — a bad row is loud. */
import { Reader } from "../../../shared/reader.ts";
import type { GitHubState, ReportBody, ReportRow } from "./report-record.ts";

const GITHUB_STATES: readonly GitHubState[] = ["pending", "queued", "in_progress", "success", "failure", "error", "inactive"];
const NOTIFY_TYPES = ["deployment.succeeded", "deployment.failed", "deployment.canceled", "deployment.waiting", "deployment.blocked"] as const;

export function parseReportBody(row: ReportRow): ReportBody {
  const r = new Reader(JSON.parse(row.body), `report ${row.id}`);
  const s = (key: string) => r.field(key).string();
  const kind = r.field("kind").oneOf(["github-deployment", "github-status", "notify"] as const);
  switch (kind) {
    case "github-deployment":
      return {
        kind, repo: s("repo"), sha: s("sha"), environment: s("environment"), description: s("description"), production: r.field("production").boolean(),
        // Queued before transient environments: false, GitHub's default.
        transient: r.has("transient") ? r.field("transient").boolean() : false, target: s("target"), deployment: s("deployment") };
    case "github-status":
      return {
        kind, repo: s("repo"), state: r.field("state").oneOf(GITHUB_STATES), description: s("description"), environment: s("environment"),
        environmentUrl: r.field("environmentUrl").optionalString() ?? null, path: s("path"),
      };
    case "notify":
      return {
        kind, type: r.field("type").oneOf(NOTIFY_TYPES), target: s("target"), deployment: s("deployment"), pipeline: s("pipeline"), repo: s("repo"),
        ref: s("ref"), sha: s("sha"), pusher: s("pusher"), message: s("message"), status: s("status"), path: s("path"), at: r.field("at").int(),
        // Queued before gates: no reason.
        reason: r.field("reason").optionalString() ?? null,
        hosts: r.field("hosts").array().map((h) => ({ agent: h.field("agent").string(), status: h.field("status").string(), failedStep: h.field("failedStep").optionalString() ?? null })),
      };
  }
}
