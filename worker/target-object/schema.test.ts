import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { uniqueName } from "../test-support.ts";
import { LOG_ROW_OVERHEAD_BYTES, logUsage, measureLogUsage } from "./log-budget.ts";
import { MIGRATIONS, migrate, SCHEMA_VERSION } from "./schema.ts";

/** The DO's database as a version-`version` worker left it: every table gone, the first migrations applied. */
function rewindTo(sql: SqlStorage, version: number): void {
  for (const t of ["agents", "jobs", "job_steps", "job_events", "deliveries", "meta", "job_notes", "agent_tokens", "deployments", "reports", "log_usage", "schema_version"]) sql.exec(`DROP TABLE ${t}`);
  for (const m of MIGRATIONS.slice(0, version)) sql.exec(m);
  sql.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
  sql.exec("INSERT INTO schema_version (version) VALUES (?)", version);
}

describe("Target DO schema", () => {
  it("creates the schema once and records its version; migrating again changes nothing", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const versions = await runInDurableObject(stub, (_, state) => {
      const read = () => state.storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").toArray();
      const before = read();
      migrate(state.storage);
      return [before, read()];
    });
    expect(versions).toEqual([[{ version: SCHEMA_VERSION }], [{ version: SCHEMA_VERSION }]]);
  });

  it("migrates a v1 database to v2: jobs get their deadline fields, and a stored job-end its seq", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const rows = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      rewindTo(sql, 1);
      const job = (id: string, status: string, cancel: number) =>
        sql.exec(
          `INSERT INTO jobs (id, agent, pipeline, delivery, hook_id, event, repo, ref, sha, before, pusher, status, created_at, started_at, cancel_requested)
           VALUES (?, 'web-1', 'app', 'd', '1', 'push', 'o/r', 'refs/heads/master', ?, ?, 'me', ?, 1, 2, ?)`,
          id, "b".repeat(40), "a".repeat(40), status, cancel,
        );
      job("done", "succeeded", 0);
      job("busy", "running", 1);
      sql.exec("INSERT INTO job_steps (job_id, position, name, phase, status) VALUES ('done', 0, 'fetch', 'main', 'succeeded'), ('done', 1, 'rollback', 'on_failure', 'skipped')");
      sql.exec("INSERT INTO job_events (job_id, seq, at, kind, status) VALUES ('done', 1, 3, 'job-end', 'succeeded')");
      migrate(state.storage);
      return {
        version: sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
        jobs: sql.exec("SELECT id, timeout_ms, has_on_failure, end_seq, cancel_requested_at IS NOT NULL AS cancel_timed FROM jobs ORDER BY id").toArray(),
        notes: sql.exec<{ n: number }>("SELECT count(*) AS n FROM job_notes").one().n,
      };
    });
    expect(rows).toEqual({
      version: SCHEMA_VERSION,
      jobs: [
        { id: "busy", timeout_ms: 1_800_000, has_on_failure: 0, end_seq: null, cancel_timed: 1 },
        { id: "done", timeout_ms: 1_800_000, has_on_failure: 1, end_seq: 1, cancel_timed: 0 },
      ],
      notes: 0,
    });
  });

  it("migrates a v2 database to v3: deliveries get a body hash, unique, and old records keep none", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      rewindTo(sql, 2);
      const record = (delivery: string) => sql.exec("INSERT INTO deliveries (hook_id, delivery, status, answer, created_at) VALUES ('1', ?, 200, '{}', 1)", delivery);
      record("old-1");
      record("old-2");
      migrate(state.storage);
      const hashed = (delivery: string, hash: string) =>
        sql.exec("INSERT INTO deliveries (hook_id, delivery, status, answer, created_at, body_hash) VALUES ('1', ?, 200, '{}', 2, ?)", delivery, hash);
      hashed("new-1", "h".repeat(64));
      let duplicate = "accepted";
      try {
        hashed("new-2", "h".repeat(64));
      } catch (e) {
        duplicate = e instanceof Error && /UNIQUE/.test(e.message) ? "refused (unique)" : String(e);
      }
      return {
        version: sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
        hashes: sql.exec("SELECT delivery, body_hash FROM deliveries ORDER BY delivery").toArray(),
        duplicate,
      };
    });
    expect(result).toEqual({
      version: SCHEMA_VERSION,
      hashes: [
        { delivery: "new-1", body_hash: "h".repeat(64) },
        { delivery: "old-1", body_hash: null },
        { delivery: "old-2", body_hash: null },
      ],
      duplicate: "refused (unique)",
    });
  });

  it("migrates a v4 database to v5: jobs from before deployments become one deployment per (delivery, pipeline), all hosts released at once", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      rewindTo(sql, 4);
      const job = (id: string, agent: string, delivery: string, status: string, started: number | null, finished: number | null) =>
        sql.exec(
          `INSERT INTO jobs (id, agent, pipeline, delivery, hook_id, event, repo, ref, sha, before, pusher, status, created_at, started_at, finished_at)
           VALUES (?, ?, 'app', ?, '1', 'push', 'o/r', 'refs/heads/master', ?, ?, 'me', ?, 10, ?, ?)`,
          id, agent, delivery, "b".repeat(40), "a".repeat(40), status, started, finished,
        );
      job("a1", "web-1", "d1", "succeeded", 11, 20);
      job("a2", "web-2", "d1", "failed", 12, 25);
      job("b1", "web-1", "d2", "running", 30, null);
      job("b2", "web-2", "d2", "queued", null, null);
      migrate(state.storage);
      return {
        jobs: sql.exec("SELECT id, deployment_id, batch, released_at FROM jobs ORDER BY id").toArray(),
        deployments: sql.exec("SELECT id, status, batch_hosts, halt_on_failure, started_at, finished_at, rollout FROM deployments ORDER BY id").toArray(),
      };
    });
    expect(result.jobs).toEqual([
      { id: "a1", deployment_id: "pre-a1", batch: 0, released_at: 10 },
      { id: "a2", deployment_id: "pre-a1", batch: 0, released_at: 10 },
      { id: "b1", deployment_id: "pre-b1", batch: 0, released_at: 10 },
      { id: "b2", deployment_id: "pre-b1", batch: 0, released_at: 10 },
    ]);
    expect(result.deployments.map(({ rollout, ...d }) => ({ ...d, rollout: JSON.parse(String(rollout)) }))).toEqual([
      {
        id: "pre-a1", status: "failed", batch_hosts: 2, halt_on_failure: 0, started_at: 11, finished_at: 25,
        rollout: { batch: 2, hosts: 2, batchHosts: 2, batches: 1, haltOnFailure: false, note: "made before deployments existed: all hosts at once" },
      },
      {
        id: "pre-b1", status: "running", batch_hosts: 2, halt_on_failure: 0, started_at: 30, finished_at: null,
        rollout: { batch: 2, hosts: 2, batchHosts: 2, batches: 1, haltOnFailure: false, note: "made before deployments existed: all hosts at once" },
      },
    ]);
  });

  it("migrates a v6 database to v7: stored log rows are counted once, per job and for the target, and triggers keep counting", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      rewindTo(sql, 6);
      for (const id of ["a", "b"]) {
        sql.exec(
          `INSERT INTO jobs (id, agent, pipeline, delivery, hook_id, event, repo, ref, sha, before, pusher, status, created_at)
           VALUES (?, 'web-1', 'app', 'd', '1', 'push', 'o/r', 'refs/heads/master', ?, ?, 'me', 'succeeded', 1)`,
          id, "b".repeat(40), "a".repeat(40),
        );
      }
      sql.exec("INSERT INTO job_events (job_id, seq, at, kind, step) VALUES ('a', 1, 1, 'step-start', 'fetch')");
      sql.exec("INSERT INTO job_events (job_id, seq, at, kind, step, stream, data) VALUES ('a', 2, 1, 'output', 'fetch', 'stdout', 'héllo\n')");
      sql.exec("INSERT INTO job_events (job_id, seq, at, kind, step, stream, data) VALUES ('b', 1, 1, 'output', 'fetch', 'stdout', 'x')");
      migrate(state.storage);
      const read = () => ({
        usage: logUsage(sql),
        counted: measureLogUsage(sql),
        jobs: sql.exec("SELECT id, log_bytes, log_rows FROM jobs ORDER BY id").toArray(),
      });
      const migrated = read();
      sql.exec("INSERT INTO job_events (job_id, seq, at, kind, step, stream, data) VALUES ('b', 2, 1, 'output', 'fetch', 'stdout', 'ü')");
      sql.exec("DELETE FROM job_events WHERE job_id = 'a'");
      return { migrated, after: read() };
    });
    const o = LOG_ROW_OVERHEAD_BYTES;
    expect(result.migrated).toEqual({
      usage: { bytes: 7 + 1 + 3 * o, rows: 3 },
      counted: { bytes: 7 + 1 + 3 * o, rows: 3 },
      jobs: [
        { id: "a", log_bytes: 7 + 2 * o, log_rows: 2 },
        { id: "b", log_bytes: 1 + o, log_rows: 1 },
      ],
    });
    expect(result.after).toEqual({
      usage: { bytes: 1 + 2 + 2 * o, rows: 2 },
      counted: { bytes: 1 + 2 + 2 * o, rows: 2 },
      jobs: [
        { id: "a", log_bytes: 0, log_rows: 0 },
        { id: "b", log_bytes: 3 + 2 * o, log_rows: 2 },
      ],
    });
  });

  it("migrates a v7 database to v8: over-cap jobs count the events they left out, step events are counted, timeouts clamp to 24 h", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const jobs = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      rewindTo(sql, 7);
      for (const [id, timeout, dropped] of [["a", 1_800_000, 10], ["b", 30 * 86_400_000, 0]] as const) {
        sql.exec(
          `INSERT INTO jobs (id, agent, pipeline, delivery, hook_id, event, repo, ref, sha, before, pusher, status, created_at, timeout_ms, output_dropped)
           VALUES (?, 'web-1', 'app', 'd', '1', 'push', 'o/r', 'refs/heads/master', ?, ?, 'me', 'running', 1, ?, ?)`,
          id, "b".repeat(40), "a".repeat(40), timeout, dropped,
        );
      }
      // Job a as the output cap left it: a row with no data per event past the cap.
      sql.exec("INSERT INTO job_events (job_id, seq, at, kind, step) VALUES ('a', 1, 1, 'step-start', 'fetch')");
      sql.exec("INSERT INTO job_events (job_id, seq, at, kind, step, stream, data) VALUES ('a', 2, 1, 'output', 'fetch', 'stdout', 'x')");
      for (const seq of [3, 4, 5]) sql.exec("INSERT INTO job_events (job_id, seq, at, kind, step, stream, data) VALUES ('a', ?, 1, 'output', 'fetch', 'stdout', '')", seq);
      sql.exec("INSERT INTO job_events (job_id, seq, at, kind, step, status) VALUES ('a', 6, 1, 'step-end', 'fetch', 'succeeded')");
      migrate(state.storage);
      return sql.exec("SELECT id, timeout_ms, output_dropped, output_dropped_events, step_events FROM jobs ORDER BY id").toArray();
    });
    expect(jobs).toEqual([
      { id: "a", timeout_ms: 1_800_000, output_dropped: 10, output_dropped_events: 3, step_events: 2 },
      { id: "b", timeout_ms: 86_400_000, output_dropped: 0, output_dropped_events: 0, step_events: 0 },
    ]);
  });
});
