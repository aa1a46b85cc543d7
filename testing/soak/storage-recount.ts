/**
 * The Durable Object's log totals against a full recount, read from the SQLite files `wrangler dev`
 * keeps under --persist-to. The files are copied first (database, WAL and shared memory together) and
 * the copy is read, so workerd's own files are never opened by a second writer; both numbers come from
 * the same copy, so they must agree exactly. The triggers (schema v7) keep `log_usage` and each job's
 * `log_bytes`/`log_rows`; the recount sums `job_events` itself, as log-budget.ts's measureLogUsage does.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The row overhead log-budget.ts charges (LOG_ROW_OVERHEAD_BYTES); worker code is not imported into Node. */
const ROW_OVERHEAD = 128;

function sqliteFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sqliteFiles(join(dir, e.name)) : e.name.endsWith(".sqlite") ? [join(dir, e.name)] : [],
  );
}

export interface Recount {
  /** Databases holding a log_usage table (one per target that has stored a log). */
  checked: number;
  problems: string[];
}

export function recountLogStorage(persistTo: string): Recount {
  const problems: string[] = [];
  let checked = 0;
  for (const file of sqliteFiles(join(persistTo, "v3", "do"))) {
    const copy = mkdtempSync(join(tmpdir(), "hookrelay-recount-"));
    try {
      const db = join(copy, "db.sqlite");
      copyFileSync(file, db);
      for (const suffix of ["-wal", "-shm"]) if (existsSync(file + suffix)) copyFileSync(file + suffix, db + suffix);
      const sql = new DatabaseSync(db);
      try {
        const hasUsage = sql.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'log_usage'").get() as { n: number };
        if (hasUsage.n === 0) continue;
        checked++;
        const kept = sql.prepare("SELECT bytes, rows FROM log_usage WHERE id = 1").get() as { bytes: number; rows: number } | undefined;
        const counted = sql
          .prepare("SELECT COALESCE(sum(length(CAST(data AS BLOB))), 0) + ? * count(*) AS bytes, count(*) AS rows FROM job_events")
          .get(ROW_OVERHEAD) as { bytes: number; rows: number };
        if (!kept || kept.bytes !== counted.bytes || kept.rows !== counted.rows) {
          problems.push(`${file}: log_usage says ${kept?.bytes} bytes in ${kept?.rows} rows, a recount of job_events finds ${counted.bytes} bytes in ${counted.rows} rows`);
        }
        const jobs = sql
          .prepare(
            `SELECT j.id AS id, j.log_bytes AS kept_bytes, j.log_rows AS kept_rows,
                    COALESCE(e.bytes, 0) AS bytes, COALESCE(e.rows, 0) AS rows
               FROM jobs j LEFT JOIN (SELECT job_id, sum(COALESCE(length(CAST(data AS BLOB)), 0)) + ? * count(*) AS bytes, count(*) AS rows FROM job_events GROUP BY job_id) e
                 ON e.job_id = j.id
              WHERE j.log_bytes != COALESCE(e.bytes, 0) OR j.log_rows != COALESCE(e.rows, 0)`,
          )
          .all(ROW_OVERHEAD) as { id: string; kept_bytes: number; kept_rows: number; bytes: number; rows: number }[];
        for (const j of jobs.slice(0, 5)) problems.push(`${file}: job ${j.id} says ${j.kept_bytes} bytes in ${j.kept_rows} rows, its events recount to ${j.bytes} bytes in ${j.rows} rows`);
      } finally {
        sql.close();
      }
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }
  return { checked, problems };
}
