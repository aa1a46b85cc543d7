/**
 * Which declared pipelines an event runs: repo (case-insensitive), event name, then a branch push by
 * the pipeline's branch filters and a tag push by its `tags` (none: no tag deploys it); then the
 * push's changed files by its `paths` / `paths_ignore` (shared/gates.ts).
 */
import { pathsFilter, TAG_PREFIX, tagMatches } from "../../../shared/gates.ts";
import { matchesBranchFilters } from "../../../shared/glob.ts";
import type { PipelineDecl } from "../../../shared/protocol.ts";

export const BRANCH_PREFIX = "refs/heads/";

export interface MatchInput {
  event: string;
  repo: string;
  ref: string;
}

export function pipelineMatches(p: PipelineDecl, e: MatchInput): boolean {
  if (p.repo.toLowerCase() !== e.repo.toLowerCase()) return false;
  if (!p.events.includes(e.event)) return false;
  if (e.ref.startsWith(TAG_PREFIX)) return tagMatches(p.tags, e.ref.slice(TAG_PREFIX.length));
  if (!e.ref.startsWith(BRANCH_PREFIX)) return false;
  return matchesBranchFilters(e.ref.slice(BRANCH_PREFIX.length), p.branches);
}

/** Why the push's changed files leave this pipeline out, or null when they do not (or the push cannot tell). */
export function pathsExclude(p: PipelineDecl, changedFiles: readonly string[] | null | undefined): string | null {
  const verdict = pathsFilter(p, changedFiles ?? null);
  return verdict.pass ? null : verdict.reason;
}

export function noMatchReason(e: MatchInput): string {
  return `no pipeline for ${e.event} to ${e.ref} of ${e.repo}`;
}
