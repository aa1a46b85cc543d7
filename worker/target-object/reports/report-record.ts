/**
 * A report's stored shapes (table `reports`, written by report-outbox.ts): its row, the body frozen in it, and
 * the view the API shows. Types only, so the outbox, report-body.ts and types.ts all read them from here.
 */
import type { DeploymentReport } from "../../report/notify.ts";

export type ReportKind = "github-deployment" | "github-status" | "notify";
export type GitHubState = "pending" | "queued" | "in_progress" | "success" | "failure" | "error" | "inactive";

/**
 * What changed in a deployment, as deployments/ hands it over: `created`; `opened` (its gates passed:
 * queued); `approval` (it now waits for a person only); `running` (its first host started); `ended`.
 */
export type DeploymentChange = "created" | "opened" | "approval" | "running" | "ended";

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
  /** A sent `github-deployment` report: the id GitHub gave the deployment (its statuses go there). */
  github_id: number | null;
}

/**
 * A deployment as its reports tell it: the facts deployments/ hands over when it changes (its row's
 * columns of these names, and GitHub's environment as chosen for it). Reports never write a deployment.
 */
export interface ReportedDeployment extends Pick<DeploymentReport, "pipeline" | "repo" | "ref" | "sha" | "pusher" | "message" | "status"> {
  id: string;
  finished_at: number | null;
  environment_url: string | null;
  githubEnvironment: { name: string; production: boolean; transient: boolean };
  /** Blocked: why; waiting: what for ("waiting for CI"); null otherwise. */
  reason: string | null;
}
