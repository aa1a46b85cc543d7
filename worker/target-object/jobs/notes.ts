/**
 * The worker's own lines in a job's log (table `job_notes`): why the DO ended a job itself. They sit
 * after the agent event that was the job's last acked one when they were written (`after_seq`), but
 * never take a seq: the agent's seq space stays its own. Ids grow, and so does `after_seq` per job.
 */
import { logInfo } from "../../console-lines.ts";

export interface NoteRow extends Record<string, SqlStorageValue> {
  id: number;
  after_seq: number;
  text: string;
}

/** Adds a note after the job's last acked event, and says it in the worker's log too. */
export function addNote(sql: SqlStorage, jobId: string, text: string, now: number): void {
  sql.exec("INSERT INTO job_notes (job_id, after_seq, at, text) VALUES (?, (SELECT acked_seq FROM jobs WHERE id = ?), ?, ?)", jobId, jobId, now, text);
  logInfo(`[job ${jobId}] ${text}`);
}

/** The job's notes after note id `afterId`, oldest first. */
export function readNotes(sql: SqlStorage, jobId: string, afterId: number, limit: number): NoteRow[] {
  return sql.exec<NoteRow>("SELECT id, after_seq, text FROM job_notes WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?", jobId, afterId, limit).toArray();
}

/** How a note reads in the job's text log. */
export function noteLine(text: string): string {
  return `--- [hookrelay] ${text}`;
}
