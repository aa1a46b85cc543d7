/** A row of `deployments` as SQL returns it (schema.ts), read by deployments.ts and the outbox. */
import type { StoredEnvironment } from "./environment-choice.ts";

/** A deployment's stored row (`SELECT * FROM deployments`). */
export interface DeploymentRow extends Record<string, SqlStorageValue>, StoredEnvironment {
  id: string;
  pipeline: string;
  delivery: string;
  hook_id: string;
  event: string;
  repo: string;
  ref: string;
  sha: string;
  before: string;
  pusher: string;
  message: string;
  status: string;
  rollout: string;
  batch_hosts: number;
  halt_on_failure: number;
  cancel_requested: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** Why it ended `blocked` (gates.ts). */
  blocked_reason: string | null;
  /** While `waiting`: when it ends `blocked` if a gate is still open. */
  wait_until: number | null;
}
