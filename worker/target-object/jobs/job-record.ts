/**
 * A `jobs` row and what it becomes: the one place that maps a job between its columns, the API's
 * views and the `job` frame. A job's payload fields (shared/job-fields.ts) are columns of the same
 * names, so a new field needs a schema migration (schema.ts) and no edit here.
 */
import { JOB_FIELD_NAMES, jobFieldsFrom, type JobFields } from "../../../shared/job-fields.ts";
import { JOB_STATUSES, type JobStatus, type PipelineDecl, STEP_STATUSES, type StepStatus, type WorkerMessage } from "../../../shared/protocol.ts";
import { MAX_PIPELINE_TIMEOUT_MS } from "../../../shared/limits.ts";
import { type DeliveryInput, isoOrNull, type JobListItem, type ListedJobFields } from "../types.ts";

export interface JobRow extends Record<string, SqlStorageValue>, JobFields {
  id: string;
  agent: string;
  pipeline: string;
  hook_id: string;
  status: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  dispatched_at: number | null;
  cancel_requested: number;
  acked_seq: number;
  output_bytes: number;
  /** Output bytes past the caps (events.ts): acked, not stored; and how many events they came in. */
  output_dropped: number;
  output_dropped_events: number;
  /** step-start and step-end rows stored: at most two per declared step. */
  step_events: number;
  /** The declared timeout; the agent gives on_failure steps as long again. */
  timeout_ms: number;
  has_on_failure: number;
  cancel_requested_at: number | null;
  /** The seq of the agent's stored job-end, if it sent one. */
  end_seq: number | null;
  /** Its deployment (null only for a job made outside one, in tests of the job machinery). */
  deployment_id: string | null;
  /** 0-based batch within its deployment's rollout. */
  batch: number;
  /** When its batch was released (it may be sent from then on); null while an earlier batch runs. */
  released_at: number | null;
  /** Its stored log rows and what they cost (log-budget.ts), kept by the v7 triggers; 0 once dropped. */
  log_bytes: number;
  log_rows: number;
}

/** A status read back from our own SQL; still checked against its list, so a bad row is loud rather than mistyped. */
export function storedStatus<T extends string>(statuses: readonly T[], value: string, what: string): T {
  const s = statuses.find((x) => x === value);
  if (s === undefined) throw new TypeError(`hookrelay: unknown ${what} status in storage: ${value}`);
  return s;
}

export function jobStatusOf(value: string): JobStatus {
  return storedStatus(JOB_STATUSES, value, "job");
}

export function stepStatusOf(value: string): StepStatus {
  return storedStatus(STEP_STATUSES, value, "step");
}

/** Where a new job sits in its deployment; a job without one (tests of the job machinery alone) is released at once. */
export interface JobPlacement {
  deploymentId: string | null;
  /** 0-based, in rollout order. */
  batch: number;
  /** Its batch is the first: it may be sent now. */
  released: boolean;
}

// Column names built from the constant list, never from input; the values are bound.
const FIELD_COLUMNS = JOB_FIELD_NAMES.join(", ");
const FIELD_PLACEHOLDERS = JOB_FIELD_NAMES.map(() => "?").join(", ");

/** Inserts a queued job with the delivery's fields, the pipeline's declared timeout and its place in its deployment. */
export function insertJobRow(
  sql: SqlStorage,
  job: { id: string; agent: string; pipeline: PipelineDecl; delivery: DeliveryInput; now: number; placement: JobPlacement },
): void {
  sql.exec(
    `INSERT INTO jobs (id, agent, pipeline, hook_id, ${FIELD_COLUMNS}, status, created_at, timeout_ms, has_on_failure, deployment_id, batch, released_at)
     VALUES (?, ?, ?, ?, ${FIELD_PLACEHOLDERS}, 'queued', ?, ?, ?, ?, ?, ?)`,
    job.id,
    job.agent,
    job.pipeline.name,
    job.delivery.hookId,
    ...JOB_FIELD_NAMES.map((field) => job.delivery[field]),
    job.now,
    // A declaration stored before the cap (agents.pipelines) may ask for more; the job gets the cap.
    Math.min(job.pipeline.timeoutMs, MAX_PIPELINE_TIMEOUT_MS),
    job.pipeline.onFailure.length > 0 ? 1 : 0,
    job.placement.deploymentId,
    job.placement.batch,
    job.placement.released ? job.now : null,
  );
}

export function jobFieldsOf(row: JobRow): JobFields {
  return jobFieldsFrom((field) => row[field]);
}

/** The job fields the API's job views show (types.ts says which it leaves out). */
function listedFields(row: JobRow): ListedJobFields {
  const { before: _before, pusher: _pusher, ...listed } = jobFieldsOf(row);
  return listed;
}

export function toListItem(row: JobRow): JobListItem {
  return {
    id: row.id,
    deployment: row.deployment_id,
    agent: row.agent,
    pipeline: row.pipeline,
    ...listedFields(row),
    status: jobStatusOf(row.status),
    createdAt: isoOrNull(row.created_at),
    startedAt: isoOrNull(row.started_at),
    finishedAt: isoOrNull(row.finished_at),
  };
}

export function toJobFrame(row: JobRow): WorkerMessage {
  return { type: "job", jobId: row.id, pipeline: row.pipeline, ...jobFieldsOf(row) } satisfies WorkerMessage;
}
