/** What a deployment's reports say: each host's outcome and the one-line description GitHub shows (≤ 140 characters). */

export interface HostOutcome {
  agent: string;
  status: string;
  /** The step that failed or timed out, if one did. */
  failedStep: string | null;
}

/** GitHub refuses a status description over 140 characters (422). */
export const MAX_DESCRIPTION_CHARS = 140;

/** The deployment's hosts in rollout order, each with its job's status and the step that failed, if any. */
export function hostOutcomes(sql: SqlStorage, deploymentId: string): HostOutcome[] {
  return sql
    .exec<{ agent: string; status: string; failed_step: string | null }>(
      `SELECT j.agent, j.status,
         (SELECT s.name FROM job_steps s WHERE s.job_id = j.id AND s.status IN ('failed', 'timed_out') ORDER BY s.position LIMIT 1) AS failed_step
       FROM jobs j WHERE j.deployment_id = ? ORDER BY j.batch, j.rowid`,
      deploymentId,
    )
    .toArray()
    .map((r) => ({ agent: r.agent, status: r.status, failedStep: r.failed_step }));
}

/** "web-2 failed at migrate", "web-3 timed out at install", "web-1 interrupted". */
export function hostProblem(h: HostOutcome): string | null {
  const at = h.failedStep !== null ? ` at ${h.failedStep}` : "";
  switch (h.status) {
    case "failed":
      return `${h.agent} failed${at}`;
    case "timed_out":
      return `${h.agent} timed out${at}`;
    case "interrupted":
      return `${h.agent} interrupted`;
    default:
      return null;
  }
}

export function cutTo(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : text;
}

/** "2/3 hosts deployed; web-3 failed at migrate" — within GitHub's 140 characters. */
export function describeDeployment(status: string, hosts: HostOutcome[]): string {
  const n = hosts.length;
  const done = hosts.filter((h) => h.status === "succeeded").length;
  const deployed = `${done}/${n} host${n === 1 ? "" : "s"} deployed`;
  const problems = hosts.map(hostProblem).filter((p): p is string => p !== null);
  let text: string;
  switch (status) {
    case "queued":
      text = `${n} host${n === 1 ? "" : "s"} to deploy`;
      break;
    case "running":
      text = `deploying: ${deployed}${problems.length > 0 ? `; ${problems.join(", ")}` : ""}`;
      break;
    case "succeeded":
      text = deployed;
      break;
    case "failed":
      text = `${deployed}; ${problems.join(", ")}`;
      break;
    case "canceled":
      text = `canceled; ${deployed}`;
      break;
    case "superseded":
      text = `superseded by a newer push; ${deployed}`;
      break;
    default:
      text = `${status}; ${deployed}`;
  }
  return cutTo(text, MAX_DESCRIPTION_CHARS);
}
