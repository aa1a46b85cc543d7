/**
 * The CI conclusions the webhook took (table `conclusions`): one row per completed workflow run or
 * check run of this target's repositories, so that a conclusion that came before its push still opens
 * the gate when the push comes. A fork's run is never stored (the caller refuses it). Bounded: past
 * MAX_CONCLUSIONS the oldest go; kept for the retention period, as other records.
 */
import type { RunConclusion } from "../types.ts";

/** Stored conclusions per target: a busy repository's few days of runs; the oldest go first. */
export const MAX_CONCLUSIONS = 2000;

export interface StoredConclusion {
  conclusion: string;
  url: string | null;
  received_at: number;
}

/** Keeps the conclusion (repo compared without case, as GitHub's names are). */
export function storeConclusion(sql: SqlStorage, run: RunConclusion, now: number): void {
  sql.exec(
    "INSERT INTO conclusions (repo, sha, kind, name, conclusion, url, run_id, attempt, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    run.repo.toLowerCase(),
    run.sha,
    run.kind,
    run.name,
    run.conclusion,
    run.url,
    run.runId,
    run.attempt,
    now,
  );
  sql.exec("DELETE FROM conclusions WHERE id <= (SELECT max(id) FROM conclusions) - ?", MAX_CONCLUSIONS);
}

/** The newest conclusion of this workflow or check for the commit, if one came. */
export function newestConclusion(sql: SqlStorage, repo: string, sha: string, kind: string, name: string): StoredConclusion | undefined {
  return sql
    .exec<StoredConclusion & Record<string, SqlStorageValue>>(
      "SELECT conclusion, url, received_at FROM conclusions WHERE repo = ? AND sha = ? AND kind = ? AND name = ? ORDER BY id DESC LIMIT 1",
      repo.toLowerCase(),
      sha,
      kind,
      name,
    )
    .toArray()[0];
}

/** Conclusions older than `retentionMs` go. */
export function deleteExpiredConclusions(sql: SqlStorage, retentionMs: number, now: number): void {
  sql.exec("DELETE FROM conclusions WHERE received_at + ? <= ?", retentionMs, now);
}

/**
 * A newer attempt of the same run that already concluded: GitHub does not promise delivery order, and
 * an older attempt's conclusion arriving late must not stand over the re-run's.
 */
export function newerAttempt(sql: SqlStorage, run: RunConclusion): number | null {
  return (
    sql
      .exec<{ attempt: number }>("SELECT max(attempt) AS attempt FROM conclusions WHERE kind = ? AND run_id = ? AND attempt > ?", run.kind, run.runId, run.attempt)
      .one().attempt ?? null
  );
}
