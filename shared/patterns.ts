/**
 * Names and GitHub values as hookrelay accepts them, wherever they come in: the webhook, the API,
 * the agent's config and the protocol's frames. Each pattern has a hint that says it in words.
 */
/** Names of targets, agents, pipelines and steps. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const NAME_HINT = "must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit";
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** GitHub's X-GitHub-Delivery (a GUID) and our manual-<uuid>; bounded so every job frame stays valid. */
export const DELIVERY_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;
/** X-GitHub-Event names (push, ping, pull_request…). */
export const EVENT_PATTERN = /^[a-z_]{1,100}$/;
/** X-GitHub-Hook-ID (a number); may be absent. */
export const HOOK_ID_PATTERN = /^[A-Za-z0-9._-]{0,100}$/;
/** A GitHub repository's full_name: owner/name (GitHub allows letters, digits, '.', '_' and '-'). */
export const REPO_PATTERN = /^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/;
export const REPO_HINT = "must be owner/name (letters, digits, '.', '_' or '-')";
export const SHA_PATTERN = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
export const SHA_HINT = "must be 40 or 64 lowercase hex digits";
/** A branch ref; any bytes git allows are fine (they only ever reach steps as env values), but no control characters. */
export const BRANCH_REF_PATTERN = /^refs\/heads\/[^\x00-\x1f\x7f]{1,245}$/;
export const BRANCH_REF_HINT = "must be refs/heads/<branch>";
/** A job's ref: a branch, or a tag (a tag job runs only where the pipeline's own `tags` name it). Same bytes rule as a branch ref. */
export const JOB_REF_PATTERN = /^refs\/(?:heads|tags)\/[^\x00-\x1f\x7f]{1,245}$/;
export const JOB_REF_HINT = "must be refs/heads/<branch> or refs/tags/<tag>";
