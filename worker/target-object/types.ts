/** Values the Target DO exchanges with the worker's routes over RPC (plain, structured-cloneable). */
import type { JobFields, JobStatus, PipelineDecl, StepStatus } from "../../shared/protocol.ts";

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
}

export interface JobSummary {
  id: string;
  agent: string;
  pipeline: string;
  status: JobStatus;
}

export interface DeliveryBody {
  delivery: string;
  jobs: JobSummary[];
  ignored?: string;
}

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
}

export interface StepView {
  name: string;
  status: StepStatus;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Job fields the API's job views leave out (DESIGN's GET …/jobs/:id); a new field is listed. */
export type UnlistedJobField = "before" | "pusher";
export type ListedJobFields = Omit<JobFields, UnlistedJobField>;

export interface JobListItem extends ListedJobFields {
  id: string;
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
