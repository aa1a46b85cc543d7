/**
 * The `job_steps` table: a job's steps as its pipeline declared them, and what the agent's
 * step-start / step-end events do to them. Only declared steps exist: a step-start for any other
 * is refused (agent-frames.ts), so an agent cannot add rows without bound.
 */
import type { PipelineDecl, StepStatus } from "../../../shared/protocol.ts";

function declaredSteps(p: PipelineDecl): { name: string; phase: "main" | "on_failure" }[] {
  return [...p.steps.map((name) => ({ name, phase: "main" as const })), ...p.onFailure.map((name) => ({ name, phase: "on_failure" as const }))];
}

/** The job's declared steps, pending, in one statement (a push to a fleet makes a job per host: one statement each, not one per step). */
export function insertDeclaredSteps(sql: SqlStorage, jobId: string, pipeline: PipelineDecl): void {
  const steps = declaredSteps(pipeline);
  if (steps.length === 0) return;
  sql.exec(
    `INSERT INTO job_steps (job_id, position, name, phase, status) VALUES ${steps.map(() => "(?, ?, ?, ?, 'pending')").join(", ")}`,
    ...steps.flatMap(({ name, phase }, position) => [jobId, position, name, phase]),
  );
}

/** A job not yet started takes `pipeline`'s declared steps (jobs.ts refreshQueuedJobs); returns whether they differed. */
export function replaceDeclaredSteps(sql: SqlStorage, jobId: string, pipeline: PipelineDecl): boolean {
  const stored = sql.exec<{ name: string; phase: string }>("SELECT name, phase FROM job_steps WHERE job_id = ? ORDER BY position", jobId).toArray();
  if (JSON.stringify(stored.map(({ name, phase }) => ({ name, phase }))) === JSON.stringify(declaredSteps(pipeline))) return false;
  sql.exec("DELETE FROM job_steps WHERE job_id = ?", jobId);
  insertDeclaredSteps(sql, jobId, pipeline);
  return true;
}

/** How many steps the job declares (steps and on_failure); at most MAX_DECLARED_STEPS_PER_PIPELINE. */
export function declaredStepCount(sql: SqlStorage, jobId: string): number {
  return sql.exec<{ n: number }>("SELECT count(*) AS n FROM job_steps WHERE job_id = ?", jobId).one().n;
}

export function isDeclaredStep(sql: SqlStorage, jobId: string, step: string): boolean {
  return sql.exec("SELECT 1 FROM job_steps WHERE job_id = ? AND name = ? LIMIT 1", jobId, step).toArray().length > 0;
}

/** The first pending step of that name starts; none pending (started twice, or the job already ended) changes nothing. */
export function stepStarted(sql: SqlStorage, jobId: string, step: string, at: number): void {
  sql.exec(
    `UPDATE job_steps SET status = 'running', started_at = ?
     WHERE job_id = ? AND position = (SELECT min(position) FROM job_steps WHERE job_id = ? AND name = ? AND status = 'pending')`,
    at,
    jobId,
    jobId,
    step,
  );
}

export function stepEnded(sql: SqlStorage, jobId: string, step: string, status: StepStatus, exitCode: number | null, at: number): void {
  sql.exec(
    `UPDATE job_steps SET status = ?, exit_code = ?, finished_at = ?
     WHERE job_id = ? AND position = (
       SELECT position FROM job_steps WHERE job_id = ? AND name = ? AND status IN ('running', 'pending')
       ORDER BY status = 'running' DESC, position LIMIT 1)`,
    status,
    exitCode,
    at,
    jobId,
    jobId,
    step,
  );
}
