/**
 * `workflow_run` and `check_run` deliveries (docs/operations.md, "Gates: deploy only what passed") → a typed CI
 * conclusion, after the signature checked out. Only `completed` counts; any other action is ignored
 * with a reason. The webhook route (route.ts) hands it to the target's DO, whose gates decide with it.
 *
 * Payload shapes as GitHub sends them (see @octokit/webhooks' payload examples):
 * - workflow_run: `workflow_run.{id, name, head_sha, head_branch, conclusion, html_url, run_attempt,
 *   head_repository.full_name}`, `workflow.name`, `repository.full_name`.
 * - check_run: `check_run.{id, name, head_sha, conclusion, html_url, check_suite.{head_branch,
 *   head_sha}}`, `repository.full_name`. A check run carries no head repository: GitHub sets
 *   `check_suite.head_branch` to null (and `pull_requests` to []) when the head branch is in a fork,
 *   so a null head_branch is read as "head not in this repository".
 */
import { InvalidInput, Reader } from "../../shared/reader.ts";
import { jobFieldProblem } from "../../shared/job-fields.ts";
import { GATE_NAME_PATTERN } from "../../shared/protocol.ts";
import { REPO_HINT, REPO_PATTERN } from "../../shared/patterns.ts";
import { textValueProblem } from "../../shared/text-value.ts";

export const RUN_EVENTS = ["workflow_run", "check_run"] as const;
export type RunEvent = (typeof RUN_EVENTS)[number];

export function isRunEvent(event: string): event is RunEvent {
  return (RUN_EVENTS as readonly string[]).includes(event);
}

/** A completed workflow run or check run, as a gate reads it. */
export interface RunConclusion {
  kind: RunEvent;
  /** `repository.full_name`: the repository the webhook belongs to. */
  repo: string;
  headSha: string;
  /**
   * The repository the run's head commit came from: workflow_run's `head_repository.full_name`; for a
   * check_run this repository when `check_suite.head_branch` is set, null when GitHub left it null
   * (the head is in a fork). Null too for a workflow run whose head repository is gone.
   */
  headRepo: string | null;
  /** True unless `headRepo` is `repo` (compared ignoring case, as GitHub does): a fork's run never opens a gate. */
  fromFork: boolean;
  /** The head branch GitHub reports (for people; null when it gives none). */
  headBranch: string | null;
  /** The workflow's name (workflow_run.name, else workflow.name) or the check run's name, as `wait_for` names it. */
  name: string;
  /** GitHub's conclusion (success, failure, neutral, cancelled, skipped, timed_out, action_required, stale, startup_failure…). */
  conclusion: string;
  /** The run's page on GitHub (https only). */
  url: string;
  /** workflow_run.id / check_run.id. */
  runId: number;
  /** workflow_run.run_attempt (1 when absent); always 1 for a check run, whose re-run is a new check run. */
  runAttempt: number;
}

export type RunEventResult =
  | { status: "completed"; run: RunConclusion }
  /** Answered 200 `{ignored: reason}`: not a conclusion a gate can use. */
  | { status: "ignored"; reason: string }
  /** Answered 400: not shaped like GitHub's payload. */
  | { status: "invalid"; error: string };

/** GitHub's conclusions are short lowercase words; anything else is not a payload GitHub sent. */
const CONCLUSION_PATTERN = /^[a-z_]{1,50}$/;
/** A link people follow from the dashboard and notifications: https only, bounded. */
const RUN_URL_PATTERN = /^https:\/\/[^\s]{1,2000}$/;
const MAX_BRANCH_BYTES = 1024;

export function readRunEvent(event: RunEvent, payload: unknown): RunEventResult {
  try {
    const r = new Reader(payload);
    if (!r.isObject()) r.fail("expected a JSON object");
    const action = r.field("action").string({ max: 100 });
    if (action !== "completed") return { status: "ignored", reason: `${event} action ${JSON.stringify(action)}: only completed runs count for gates` };
    const repo = repoName(r.field("repository").field("full_name"));
    const run = r.field(event);
    if (!run.isObject()) run.fail("expected an object");
    const name = readName(event, r, run);
    if (typeof name !== "string") return { status: "ignored", reason: name.ignored };
    // A pull request's run is not the pushed commit's CI: a `pull_request` run tests the merge with the
    // base, and a `pull_request_target` run names the base branch's head as its head_sha and the base
    // repository as its head repository while it commonly runs the (maybe a fork's) pull request's code.
    if (event === "workflow_run" && run.has("event")) {
      const trigger = run.field("event").string({ max: 100 });
      if (trigger.startsWith("pull_request")) {
        return { status: "ignored", reason: `workflow ${JSON.stringify(name)} ran for ${trigger}: a pull request's run never opens a gate (only the pushed commit's own runs do)` };
      }
    }
    const headRepo = event === "workflow_run" ? workflowHeadRepo(run.field("head_repository")) : checkRunHeadRepo(run.field("check_suite"), repo);
    const headBranch = event === "workflow_run" ? optionalBranch(run.field("head_branch")) : optionalBranch(run.field("check_suite").field("head_branch"));
    return {
      status: "completed",
      run: {
        kind: event,
        repo,
        headSha: checked(run.field("head_sha"), (v) => jobFieldProblem("sha", v)),
        headRepo,
        fromFork: headRepo === null || headRepo.toLowerCase() !== repo.toLowerCase(),
        headBranch,
        name,
        conclusion: run.field("conclusion").string({ pattern: CONCLUSION_PATTERN, patternHint: "must be one of GitHub's conclusions (success, failure, …)" }),
        url: run.field("html_url").string({ pattern: RUN_URL_PATTERN, patternHint: "must be an https:// URL of at most 2000 characters, without spaces" }),
        runId: run.field("id").int({ min: 1 }),
        runAttempt: event === "workflow_run" && run.has("run_attempt") ? run.field("run_attempt").int({ min: 1, max: 10_000 }) : 1,
      },
    };
  } catch (e) {
    if (e instanceof InvalidInput) return { status: "invalid", error: `invalid ${event} payload: ${e.message}` };
    throw e;
  }
}

function checked(field: Reader, problem: (value: string) => string | null): string {
  const value = field.string();
  const why = problem(value);
  return why === null ? value : field.fail(why);
}

const repoName = (field: Reader) => field.string({ pattern: REPO_PATTERN, patternHint: REPO_HINT });

/**
 * The run's name, or why no gate can name it. Every workflow and check of the repository is delivered,
 * gated or not, so a name no `wait_for` could hold (too long, control characters) is ignored, not refused.
 */
function readName(event: RunEvent, r: Reader, run: Reader): string | { ignored: string } {
  let name = run.field("name").optionalString() ?? "";
  // Older workflow_run payloads carry an empty run name; the workflow's own name is the same text.
  if (name === "" && event === "workflow_run" && r.has("workflow") && r.field("workflow").has("name")) name = r.field("workflow").field("name").string();
  if (!GATE_NAME_PATTERN.test(name)) {
    const shown = name.length > 60 ? `${name.slice(0, 60)}…` : name;
    return { ignored: `${event} name ${JSON.stringify(shown)}: no gate can name it (1-255 characters, not blank, no control characters)` };
  }
  return name;
}

/** `workflow_run.head_repository.full_name`; null when GitHub sends no head repository (a deleted fork). */
function workflowHeadRepo(field: Reader): string | null {
  if (field.value === null || field.value === undefined) return null;
  return repoName(field.field("full_name"));
}

/** A check run names no head repository: its check suite's head_branch is null exactly when the head is in a fork. */
function checkRunHeadRepo(suite: Reader, repo: string): string | null {
  if (!suite.isObject()) suite.fail("expected an object");
  const branch = suite.field("head_branch");
  if (branch.value === null || branch.value === undefined) return null;
  branch.string();
  return repo;
}

function optionalBranch(field: Reader): string | null {
  if (field.value === null || field.value === undefined) return null;
  const branch = field.string();
  const why = textValueProblem(branch, { maxBytes: MAX_BRANCH_BYTES });
  return why === null ? branch : field.fail(why);
}
