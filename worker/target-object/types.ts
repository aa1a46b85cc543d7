/** Values the Target DO exchanges with the worker's routes over RPC (plain, structured-cloneable). */
import type { JobFields, JobStatus, PipelineDecl, StepStatus } from "../../shared/protocol.ts";
import type { BatchSize } from "../../shared/rollout.ts";

/** A verified, validated push, as the webhook route hands it to the DO: a job's fields plus the hook. */
export interface DeliveryInput extends JobFields {
  hookId: string;
}

/** A push as the webhook route hands it to the DO: what the signature covers decides dedupe and age. */
export interface WebhookDelivery extends DeliveryInput {
  /** SHA-256 of the raw body, hex: a body seen before gets the first answer, whatever its headers say. */
  bodyHash: string;
  /** Why the push is too old to deploy (its signed pushed_at is past RETENTION_DAYS), or null. */
  stale: string | null;
  /** The head commit's first line, made safe and short (webhook/payload.ts); "" when there is none. */
  message: string;
  /**
   * The files the push's commits changed (added, modified, removed), for pipelines' `paths` filters;
   * null or absent when the push cannot tell (no commits listed, a new branch, a tag, a list GitHub cut): every filter passes.
   */
  changedFiles?: string[] | null;
}

/** A CI run's conclusion (webhook `workflow_run` or `check_run`, action completed), as the route hands it to the DO. */
export interface RunConclusion {
  kind: "workflow" | "check";
  /** The repository the run belongs to (`repository.full_name`). */
  repo: string;
  /** The repository of the commit it ran on: another one is a fork's run, which never opens a gate. */
  headRepo: string | null;
  sha: string;
  /** The workflow's or check's name: what a pipeline's `wait_for` lists. */
  name: string;
  conclusion: string;
  /** The run's page on GitHub. */
  url: string | null;
  /** GitHub's id of the run, and which attempt (a re-run of a workflow is its next attempt; a check's re-run is a new check run). */
  runId: number;
  attempt: number;
}

/** A conclusion's delivery, deduplicated and replay-checked as a push is. */
export interface ConclusionDelivery {
  hookId: string;
  delivery: string;
  bodyHash: string;
  /** Why the conclusion is too old to act on (its signed completion time is past RETENTION_DAYS), or null. */
  stale: string | null;
  run: RunConclusion;
}

export interface JobSummary {
  id: string;
  agent: string;
  pipeline: string;
  status: JobStatus;
}

/** A deployment as the webhook's and POST …/deploy's answers name it: its jobs' ids in rollout order. */
export interface DeploymentSummary {
  id: string;
  pipeline: string;
  jobs: string[];
}

export interface DeliveryBody {
  delivery: string;
  jobs: JobSummary[];
  /** Absent in answers stored before deployments (a redelivery of one is answered as it was). */
  deployments?: DeploymentSummary[];
  /** A CI conclusion's answer: the gates it decided, each with its deployment. */
  gates?: { deployment: string; gate: string; state: "passed" | "failed" }[];
  ignored?: string;
}

/** `waiting`: a gate is open (nothing is sent to any host); `blocked`: a gate failed, was rejected, or timed out. */
export const DEPLOYMENT_STATUSES = ["waiting", "queued", "running", "succeeded", "failed", "canceled", "superseded", "blocked"] as const;
export type DeploymentStatus = (typeof DEPLOYMENT_STATUSES)[number];
export const FINAL_DEPLOYMENT_STATUSES: readonly DeploymentStatus[] = ["succeeded", "failed", "canceled", "superseded", "blocked"];

export const GATE_KINDS = ["workflow", "check", "approval"] as const;
export type GateKind = (typeof GATE_KINDS)[number];
export const GATE_STATES = ["waiting", "passed", "failed"] as const;
export type GateState = (typeof GATE_STATES)[number];

/** One gate of a deployment, as the API shows it. */
export interface GateView {
  kind: GateKind;
  /** The workflow's or check's name; "approval" for the approval gate. */
  name: string;
  state: GateState;
  /** The run that decided it (CI gates). */
  url: string | null;
  /** When it was decided. */
  at: string | null;
  /** Approval: who decided ("admin", or "api" for a manual deploy); CI: the run's conclusion. */
  by: string | null;
  /** The approval's or rejection's note. */
  note: string | null;
  /** The agents whose declaration of the pipeline asked for this gate. */
  requiredBy: string[];
}

export type ApprovalResult =
  | { outcome: "not-found" }
  | { outcome: "not-waiting"; status: DeploymentStatus }
  | { outcome: "decided"; id: string; status: DeploymentStatus; gates: GateView[] };

export interface DeploymentListItem extends JobFields {
  id: string;
  target: string;
  pipeline: string;
  message: string;
  status: DeploymentStatus;
  /** Why it is `blocked` ("CI concluded failure — <run url>", "rejected: <note>", "CI did not finish within 2 h"); null otherwise. */
  blockedReason: string | null;
  rollout: RolloutPlan;
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** A host's job within a deployment; `batch` counts from 1. */
export interface DeploymentJobView {
  id: string;
  agent: string;
  batch: number;
  status: JobStatus;
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  steps: StepView[];
}

export interface DeploymentView extends DeploymentListItem {
  jobs: DeploymentJobView[];
  /** What it waits for before any host runs (the union of its hosts' `wait_for`); [] when nothing. */
  gates: GateView[];
  /** While `waiting`: when it ends `blocked` if a gate is still open. */
  waitingUntil: string | null;
  /** GitHub's environment it reports to, and where its hosts disagreed (environment-choice.ts). */
  environment: EnvironmentView;
  /** What it has told GitHub and chats, and how that went (report-outbox.ts). */
  reports: ReportView[];
  /** Whether each channel is configured: "on", or off/broken and why (the worker's secrets). */
  reporting: { github: string; notifications: string };
}

export type DeploymentCancelResult =
  | { outcome: "not-found" }
  | { outcome: "already-finished"; status: DeploymentStatus }
  | { outcome: "cancel-requested"; id: string; status: DeploymentStatus };

/** The webhook's answer; stored per (hook id, delivery) so a redelivery gets it again verbatim. */
export interface DeliveryAnswer {
  status: 200 | 202;
  body: DeliveryBody;
}

export interface AgentView {
  name: string;
  connected: boolean;
  /** "" for an agent registered (it has a token) that has not said hello yet. */
  version: string;
  pipelines: PipelineDecl[];
  connectedAt: string | null;
  lastSeenAt: string | null;
  /** When its last connection ended (null while connected, or if it never connected). */
  disconnectedAt: string | null;
  /** The job it runs now (status running), if any. */
  runningJob: RunningJobRef | null;
}

export interface RunningJobRef {
  id: string;
  pipeline: string;
  /** Null only for jobs made outside a deployment (in tests). */
  deployment: string | null;
}

export interface StepView {
  name: string;
  status: StepStatus;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Job fields the API's job views leave out (GET …/jobs/:id in docs/operations.md's API reference); a new field is listed. */
export type UnlistedJobField = "before" | "pusher";
export type ListedJobFields = Omit<JobFields, UnlistedJobField>;

export interface JobListItem extends ListedJobFields {
  id: string;
  /** The deployment the job is part of (null only for jobs made outside one, in tests). */
  deployment: string | null;
  agent: string;
  pipeline: string;
  status: JobStatus;
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface JobView extends JobListItem {
  target: string;
  steps: StepView[];
  /** Its stored log: rows, and bytes counted as GET …/storage counts them (0 when it has none, or it was dropped for the budget). */
  logBytes: number;
  logRows: number;
}

export type CancelResult =
  | { outcome: "not-found" }
  | { outcome: "already-finished"; status: JobStatus }
  | { outcome: "canceled" | "cancel-requested"; id: string; status: JobStatus };

/** A stored time as ISO 8601; null when there is none or it is outside Date's range (toISOString would throw). */
export function isoOrNull(ms: number | null): string | null {
  if (ms === null) return null;
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** The deployment's rollout as the API shows it. */
export interface RolloutPlan {
  /** The declared batch that was used (a number of hosts or "N%"). */
  batch: BatchSize;
  hosts: number;
  /** Hosts per batch, after rounding a percentage up. */
  batchHosts: number;
  batches: number;
  haltOnFailure: boolean;
  /** Why the plan is what it is, when that is not plain from the declaration (rounding, disagreement). */
  note: string | null;
}

export const ENVIRONMENT_KEYS = ["environment", "environment_url", "production_environment", "transient_environment"] as const;
export type EnvironmentKey = (typeof ENVIRONMENT_KEYS)[number];

/** One key the hosts declared differently, with each host's value (null: the default). */
export interface EnvironmentDisagreement {
  key: EnvironmentKey;
  hosts: { agent: string; value: string | boolean | null }[];
}

/** What GitHub is told, as the API shows it. */
export interface EnvironmentView {
  name: string;
  url: string | null;
  production: boolean;
  transient: boolean;
  disagreements: EnvironmentDisagreement[];
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
