/**
 * A report's stored shapes (table `reports`, written by report-outbox.ts): its row, the body frozen in it, and
 * the view the API shows. Types only, so the outbox, report-body.ts and types.ts all read them from here.
 */
import type { DeploymentReport } from "../report/notify.ts";

export type ReportKind = "github-deployment" | "github-status" | "notify";
export type GitHubState = "queued" | "in_progress" | "success" | "failure" | "error" | "inactive";

/** What one row sends, frozen when the deployment changed. Links are paths; the sender adds PUBLIC_URL. */
export type ReportBody =
  | { kind: "github-deployment"; repo: string; sha: string; environment: string; description: string; production: boolean; transient: boolean; target: string; deployment: string }
  | { kind: "github-status"; repo: string; state: GitHubState; description: string; environment: string; environmentUrl: string | null; path: string }
  /** A notification: the report notify.ts sends, with the dashboard link as a path (the sender adds PUBLIC_URL). */
  | ({ kind: "notify"; path: string } & Omit<DeploymentReport, "url">);

export interface ReportRow extends Record<string, SqlStorageValue> {
  id: number;
  deployment_id: string;
  channel: string;
  kind: string;
  body: string;
  state: string;
  attempts: number;
  next_at: number;
  last_error: string | null;
  created_at: number;
  done_at: number | null;
}

/** A report as the API shows it. */
export interface ReportView {
  id: number;
  channel: string;
  what: string;
  state: "pending" | "retrying" | "sent" | "failed" | "given_up";
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  createdAt: string | null;
  doneAt: string | null;
}
