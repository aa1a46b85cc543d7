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

/**
 * A job the DO ended itself (interrupted, canceled, timed out) before the agent's own end came in: its
 * running steps were ended as its status fits and its pending ones skipped, at the job's finished_at
 * (jobs.ts writeJobEnd). The agent's late events — it was cut off, not stopped — still show what ran:
 * `finishedAt` and `leftover` name the rows the DO ended, which those events may still start and end.
 */
export interface EndedByWorker {
  finishedAt: number;
  leftover: StepStatus;
}

/**
 * The first pending step of that name starts (or, in a job the DO ended, one it skipped); none (started
 * twice, or the job already ended) changes nothing.
 */
export function stepStarted(sql: SqlStorage, jobId: string, step: string, at: number, ended: EndedByWorker | null = null): void {
  sql.exec(
    `UPDATE job_steps SET status = 'running', started_at = ?, finished_at = NULL
     WHERE job_id = ? AND position = (SELECT min(position) FROM job_steps WHERE job_id = ? AND name = ? AND
       (status = 'pending' OR (? AND status = 'skipped' AND started_at IS NULL AND finished_at IS NULL)))`,
    at,
    jobId,
    jobId,
    step,
    ended === null ? 0 : 1,
  );
}

/** The running step of that name ends (or a pending one, skipped without a start; or, in a job the DO ended, one it ended running). */
export function stepEnded(sql: SqlStorage, jobId: string, step: string, status: StepStatus, exitCode: number | null, at: number, ended: EndedByWorker | null = null): void {
  sql.exec(
    `UPDATE job_steps SET status = ?, exit_code = ?, finished_at = ?
     WHERE job_id = ? AND position = (
       SELECT position FROM job_steps WHERE job_id = ? AND name = ? AND
         (status IN ('running', 'pending') OR (started_at IS NOT NULL AND status = ? AND finished_at = ?))
       ORDER BY status = 'running' DESC, started_at IS NOT NULL DESC, position LIMIT 1)`,
    status,
    exitCode,
    at,
    jobId,
    jobId,
    step,
    ended?.leftover ?? null,
    ended?.finishedAt ?? null,
  );
}
