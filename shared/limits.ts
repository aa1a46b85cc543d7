/**
 * What one agent may declare: the worker refuses a hello past these (an `error` frame, then the socket
 * closed), and the agent's config check refuses the same config first, naming the key.
 */
export const MAX_PIPELINES_PER_AGENT = 50;
export const MAX_BRANCH_GLOBS_PER_PIPELINE = 50;
/** `steps` and `on_failure` together. */
export const MAX_DECLARED_STEPS_PER_PIPELINE = 100;
/**
 * A pipeline's `timeout`: 24 h. A running job's log is never dropped to keep the target's storage budget,
 * so its deadline (this, twice with on_failure steps, + the grace) bounds how long it can hold storage.
 */
export const MAX_PIPELINE_TIMEOUT_MS = 24 * 60 * 60_000;
