/**
 * The strict rules for a job's payload fields, applied at both edges they cross: the webhook (400
 * naming the field, no job) and the agent before it runs anything (the job is accepted and ends
 * `failed` with the reason). The values reach steps only as HOOKRELAY_* environment variables.
 */
import { DELIVERY_PATTERN, EVENT_PATTERN, JOB_REF_HINT, JOB_REF_PATTERN, REPO_HINT, REPO_PATTERN, SHA_HINT, SHA_PATTERN } from "./patterns.ts";
import { textValueProblem } from "./text-value.ts";

/**
 * A job's payload fields, the one list: the job frame carries them, the DO stores them as `jobs`
 * columns of the same names, and steps see each as HOOKRELAY_<NAME>. Adding one is this list, its
 * rule below, a schema migration, and saying where its value comes from (the compiler points there).
 */
export const JOB_FIELD_NAMES = ["delivery", "event", "repo", "ref", "sha", "before", "pusher"] as const;
export type JobFieldName = (typeof JOB_FIELD_NAMES)[number];
/** The GitHub event fields a job carries. They reach steps only as HOOKRELAY_* environment variables. */
export type JobFields = Record<JobFieldName, string>;

/** Every job field, in the list's order, each value from `get`. */
export function jobFieldsFrom(get: (field: JobFieldName) => string): JobFields {
  // Every name of the list is set: the one cast a Record built from a constant list needs.
  return Object.fromEntries(JOB_FIELD_NAMES.map((field) => [field, get(field)])) as JobFields;
}

/** pusher.name: GitHub logins are ≤ 39 characters; a git author name may be longer, never this long. */
export const MAX_PUSHER_BYTES = 256;

type Rule = { pattern?: RegExp; hint?: string; maxBytes: number };

const RULES: Record<JobFieldName, Rule> = {
  delivery: { pattern: DELIVERY_PATTERN, hint: "must be 1-200 letters, digits or . _ : -", maxBytes: 200 },
  event: { pattern: EVENT_PATTERN, hint: "must be 1-100 lowercase letters or _", maxBytes: 100 },
  repo: { pattern: REPO_PATTERN, hint: REPO_HINT, maxBytes: 201 },
  ref: { pattern: JOB_REF_PATTERN, hint: JOB_REF_HINT, maxBytes: 1024 },
  sha: { pattern: SHA_PATTERN, hint: SHA_HINT, maxBytes: 64 },
  before: { pattern: SHA_PATTERN, hint: SHA_HINT, maxBytes: 64 },
  pusher: { maxBytes: MAX_PUSHER_BYTES },
};

/** Why `value` cannot be the job field `field`, or null. */
export function jobFieldProblem(field: JobFieldName, value: string): string | null {
  const rule = RULES[field];
  const text = textValueProblem(value, { maxBytes: rule.maxBytes });
  if (text) return text;
  if (rule.pattern && !rule.pattern.test(value)) return rule.hint ?? `does not match ${rule.pattern}`;
  return null;
}

/** Every problem with a job's fields, each as "<field> <why>" (empty when all are fine). */
export function jobFieldProblems(fields: JobFields): string[] {
  const problems: string[] = [];
  for (const field of JOB_FIELD_NAMES) {
    const problem = jobFieldProblem(field, fields[field]);
    if (problem) problems.push(`${field} ${problem}`);
  }
  return problems;
}
