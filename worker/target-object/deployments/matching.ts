/** Which declared pipelines an event runs: repo (case-insensitive), event name, branch filters. */
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
  if (!e.ref.startsWith(BRANCH_PREFIX)) return false;
  return matchesBranchFilters(e.ref.slice(BRANCH_PREFIX.length), p.branches);
}

export function noMatchReason(e: MatchInput): string {
  return `no pipeline for ${e.event} to ${e.ref} of ${e.repo}`;
}
