/**
 * Gates (docs/operations.md, "Gates: deploy only what passed"): the pure decisions the worker makes about a push or
 * a CI conclusion, and the agent about a tag job. No I/O, no clock: each answer follows from its inputs.
 *
 * Patterns use GitHub Actions' filter syntax (shared/glob.ts): `*` stays within one path segment,
 * `**` crosses `/`, a leading `!` negates, and in a list the last pattern that matches decides.
 */
import { matchesFilters } from "./glob.ts";
import { MAX_CHANGED_FILE_CHARS, MAX_CHANGED_FILES } from "./limits.ts";

export const TAG_PREFIX = "refs/tags/";

/**
 * Whether a pipeline whose `tags` are `tags` deploys the tag `tagName` (without `refs/tags/`).
 * A pipeline that names no tags deploys none: `tags` is opt-in, as GitHub's `on.push.tags` is.
 */
export function tagMatches(tags: readonly string[] | undefined, tagName: string): boolean {
  return tags !== undefined && tags.length > 0 && matchesFilters(tagName, tags);
}

/** A pipeline's path filters, as its declaration carries them (at most one of the two: the config refuses both). */
export interface PathFilters {
  paths?: readonly string[];
  pathsIgnore?: readonly string[];
}

export type PathsVerdict = { pass: true } | { pass: false; reason: string };

export const NO_PATH_MATCHES = "no changed file matches paths";
export const ALL_PATHS_IGNORED = "every changed file matches paths_ignore";

/**
 * Whether a push whose changed files are `changedFiles` deploys a pipeline with these path filters,
 * by GitHub Actions' rules:
 * - no `paths`/`paths_ignore`: passes;
 * - `changedFiles` null (the push cannot tell: no commits listed, a new branch, a cut list, a tag)
 *   passes — deploy, as GitHub Actions runs the workflow;
 * - `paths`: passes when at least one changed file is selected by the list;
 * - `paths_ignore`: passes when at least one changed file is not selected by the list.
 * Both set (no declaration should have both) means both must pass. A push whose commits changed no
 * file at all (empty commits) has nothing that matches: it does not pass a filter.
 * A list past MAX_CHANGED_FILES, or a path past MAX_CHANGED_FILE_CHARS, is treated as "cannot tell"
 * (the payload parser gives null for those already; this keeps the bound for any other caller).
 */
export function pathsFilter(decl: PathFilters, changedFiles: readonly string[] | null): PathsVerdict {
  const paths = decl.paths !== undefined && decl.paths.length > 0 ? decl.paths : null;
  const ignore = decl.pathsIgnore !== undefined && decl.pathsIgnore.length > 0 ? decl.pathsIgnore : null;
  if (paths === null && ignore === null) return { pass: true };
  if (changedFiles === null || changedFiles.length > MAX_CHANGED_FILES || changedFiles.some((f) => f.length > MAX_CHANGED_FILE_CHARS)) {
    return { pass: true };
  }
  if (paths !== null && !changedFiles.some((f) => matchesFilters(f, paths))) return { pass: false, reason: NO_PATH_MATCHES };
  if (ignore !== null && changedFiles.every((f) => matchesFilters(f, ignore))) return { pass: false, reason: ALL_PATHS_IGNORED };
  return { pass: true };
}

/** GitHub's conclusions that open a gate; every other one (failure, cancelled, timed_out, action_required, stale, startup_failure, null…) fails it. */
export const PASSING_CONCLUSIONS = ["success", "neutral", "skipped"] as const;

/** Whether a workflow run's or check run's `conclusion` passes its gate. */
export function conclusionPasses(conclusion: string | null | undefined): boolean {
  return typeof conclusion === "string" && (PASSING_CONCLUSIONS as readonly string[]).includes(conclusion);
}
