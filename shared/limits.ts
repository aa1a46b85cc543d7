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

/**
 * Gates (docs/operations.md, "Gates: deploy only what passed"): what one pipeline may declare. The agent's config
 * check refuses more first, naming the key; the protocol's hello parser refuses a declaration past them.
 */
/** `tags`, `paths`, `paths_ignore`: globs in each list (as many as `branches`). */
export const MAX_TAG_GLOBS_PER_PIPELINE = MAX_BRANCH_GLOBS_PER_PIPELINE;
export const MAX_PATH_GLOBS_PER_PIPELINE = 50;
/** `wait_for.workflows` and `wait_for.checks`: names in each list. */
export const MAX_GATE_NAMES_PER_LIST = 20;
/** A workflow's or a check run's name as `wait_for` names it (GitHub's own are far shorter in practice). */
export const MAX_GATE_NAME_CHARS = 255;
/** `wait_for.timeout` when the config leaves it out: how long a deployment may wait before it ends `blocked`. */
export const DEFAULT_GATE_TIMEOUT_MS = 2 * 60 * 60_000;
/** `wait_for.timeout` at most: a waiting deployment holds its record (and the target's one alarm) that long. */
export const MAX_GATE_TIMEOUT_MS = 7 * 24 * 60 * 60_000;
/**
 * A push's changed files (added, modified, removed; distinct) the paths filter looks at. Past either
 * bound the push "cannot tell" (null), as a cut list is: the filter passes, as GitHub Actions runs.
 * Matching costs at most files × path length × pattern items, so both are kept small.
 */
export const MAX_CHANGED_FILES = 3000;
export const MAX_CHANGED_FILE_CHARS = 1024;
/** GitHub lists at most this many commits in a push payload: a list this long may be cut. */
export const GITHUB_MAX_PUSH_COMMITS = 2048;
