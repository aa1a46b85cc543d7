import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { agentUpgrade, api, postWebhook, pushPayload, uniqueName } from "../../testing/workerd/worker-support.ts";
import { LOG_ROW_OVERHEAD_BYTES, logUsage, measureLogUsage } from "./jobs/log-budget.ts";
import { githubDeploymentId } from "./reports/report-outbox.ts";
import { MIGRATIONS, migrate } from "./schema.ts";

const TABLES = ["agents", "jobs", "job_steps", "job_events", "deliveries", "meta", "job_notes", "agent_tokens", "deployments", "reports", "log_usage", "gates", "conclusions", "github_events", "schema_version", "schema_migrations"];
const ALL = MIGRATIONS.map((m) => m.name);
const sqlOf = (name: string) => MIGRATIONS.find((m) => m.name === name)!.sql;

/** Every table gone, then `names`' SQL run in that order, and the old `schema_version` integer set to `version`. */
function rebuild(sql: SqlStorage, names: string[], version: number): void {
  for (const t of TABLES) sql.exec(`DROP TABLE IF EXISTS ${t}`);
  for (const n of names) sql.exec(sqlOf(n));
  sql.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
  sql.exec("INSERT INTO schema_version (version) VALUES (?)", version);
}

/** The DO's database as a version-`version` worker left it: every table gone, the first migrations applied. */
function rewindTo(sql: SqlStorage, version: number): void {
  rebuild(sql, ALL.slice(0, version), version);
}

/** The names `schema_migrations` records, in the order they were recorded. */
function recorded(sql: SqlStorage): string[] {
  return sql.exec<{ name: string }>("SELECT name FROM schema_migrations ORDER BY rowid").toArray().map((r) => r.name);
}

function tableExists(sql: SqlStorage, name: string): boolean {
  return sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?", name).one().n === 1;
}

describe("Target DO schema", () => {
  it("a fresh database gets every migration once, in order, by name; migrating again is a no-op", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      const before = recorded(sql);
      const again = migrate(state.storage);
      return { before, again, after: recorded(sql), oldTable: tableExists(sql, "schema_version") };
    });
    expect(result).toEqual({ before: ALL, again: { ok: true, applied: [] }, after: ALL, oldTable: false });
  });

  it("names are unique and say what they do", () => {
    expect(new Set(ALL).size).toBe(ALL.length);
    for (const n of ALL) expect(n).toMatch(/^\d{3}-[a-z0-9]+(-[a-z0-9]+)*$/);
  });

  it("converts the old schema_version integer once: version N is the first N names, the rest are applied, the old table dropped", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      rewindTo(sql, 4);
      const first = migrate(state.storage);
      return { first, names: recorded(sql), oldTable: tableExists(sql, "schema_version"), again: migrate(state.storage) };
    });
    expect(result).toEqual({
      first: { ok: true, applied: ALL.slice(4) },
      names: ALL,
      oldTable: false,
      again: { ok: true, applied: [] },
    });
  });

  it("a database that lacks a migration in the middle (its branch had another order) gets just that one", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE agent_tokens");
      sql.exec("DELETE FROM schema_migrations WHERE name = '004-agent-tokens'");
      return { migrated: migrate(state.storage), names: [...recorded(sql)].sort(), tokens: tableExists(sql, "agent_tokens") };
    });
    expect(result).toEqual({ migrated: { ok: true, applied: ["004-agent-tokens"] }, names: ALL, tokens: true });
  });

  it("a recorded name this code does not know: nothing changes and the problem names it", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      sql.exec("DELETE FROM schema_migrations WHERE name = '007-log-budget'");
      sql.exec("INSERT INTO schema_migrations (name, applied_at) VALUES ('099-from-elsewhere', 1)");
      return { migrated: migrate(state.storage), names: recorded(sql) };
    });
    expect(result.migrated).toEqual({ ok: false, problem: expect.stringContaining("has migrations this code does not know: 099-from-elsewhere") });
    expect(result.names).toEqual([...ALL.filter((n) => n !== "007-log-budget"), "099-from-elsewhere"]);
  });

  it("a migration that fails rolls everything back, the conversion too, and the problem says which and why", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      // Made where deployments came before tokens: schema_version 4 then meant 001-003 + deployments.
      rebuild(sql, ["001-initial", "002-job-deadlines", "003-delivery-body-hash", "005-deployments"], 4);
      return {
        migrated: migrate(state.storage),
        version: sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
        names: tableExists(sql, "schema_migrations") ? recorded(sql) : "no table",
        tokens: tableExists(sql, "agent_tokens"),
      };
    });
    expect(result).toEqual({
      migrated: {
        ok: false,
        problem: expect.stringMatching(/^migration 005-deployments failed: .*deployments already exists.*; its schema_version 4 was taken as 001-initial, 002-job-deadlines, 003-delivery-body-hash, 004-agent-tokens$/),
      },
      version: 4,
      names: "no table",
      tokens: false,
    });
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
        migrations: recorded(sql),
        jobs: sql.exec("SELECT id, timeout_ms, has_on_failure, end_seq, cancel_requested_at IS NOT NULL AS cancel_timed FROM jobs ORDER BY id").toArray(),
        notes: sql.exec<{ n: number }>("SELECT count(*) AS n FROM job_notes").one().n,
      };
    });
    expect(rows).toEqual({
      migrations: ALL,
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
        migrations: recorded(sql),
        hashes: sql.exec("SELECT delivery, body_hash FROM deliveries ORDER BY delivery").toArray(),
        duplicate,
      };
    });
    expect(result).toEqual({
      migrations: ALL,
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

  it("migrates a v9 database to v10: the GitHub deployment id moves from the deployment to its sent github-deployment report", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const result = await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      rewindTo(sql, 9);
      for (const [id, githubId] of [["with", 4242], ["without", null]] as const) {
        sql.exec(
          `INSERT INTO deployments (id, pipeline, delivery, hook_id, event, repo, ref, sha, before, pusher, message, status, rollout, batch_hosts, halt_on_failure, created_at, github_id)
           VALUES (?, 'app', 'd', '1', 'push', 'o/r', 'refs/heads/main', ?, ?, 'me', '', 'succeeded', '{}', 1, 1, 1, ?)`,
          id, "b".repeat(40), "a".repeat(40), githubId,
        );
        for (const [kind, stateName] of [["github-deployment", "sent"], ["github-status", "sent"]]) {
          sql.exec("INSERT INTO reports (deployment_id, channel, kind, body, state, next_at, created_at) VALUES (?, 'github', ?, '{}', ?, 1, 1)", id, kind, stateName);
        }
      }
      migrate(state.storage);
      return {
        reports: sql.exec("SELECT deployment_id, kind, github_id FROM reports ORDER BY id").toArray(),
        deploymentColumn: sql.exec<{ n: number }>("SELECT count(*) AS n FROM pragma_table_info('deployments') WHERE name = 'github_id'").one().n,
        githubId: githubDeploymentId(sql, "with"),
      };
    });
    expect(result).toEqual({
      reports: [
        { deployment_id: "with", kind: "github-deployment", github_id: 4242 },
        { deployment_id: "with", kind: "github-status", github_id: null },
        { deployment_id: "without", kind: "github-deployment", github_id: null },
        { deployment_id: "without", kind: "github-status", github_id: null },
      ],
      deploymentColumn: 0,
      githubId: 4242,
    });
  });
});

/** The database is set up, then the object evicted: the next call starts a fresh instance on it. */
async function targetWith(setup: (sql: SqlStorage) => void): Promise<{ target: string; stub: DurableObjectStub<import("./target.ts").Target> }> {
  const target = uniqueName();
  const stub = env.TARGET.getByName(target);
  await runInDurableObject(stub, async (_, state) => {
    setup(state.storage.sql);
    await state.storage.setAlarm(Date.now() + 60_000);
  });
  await evictDurableObject(stub);
  return { target, stub };
}

describe("Target DO whose database schema it cannot use", () => {
  async function expectUnavailable(target: string, what: RegExp): Promise<void> {
    const answers = [
      await api(`/api/targets/${target}/jobs`),
      await api(`/api/targets/${target}/agents`, { method: "POST", body: JSON.stringify({ name: "web-1" }), headers: { "Content-Type": "application/json" } }),
      await postWebhook(target, JSON.stringify(pushPayload())),
      await agentUpgrade(target, "web-1", "some-token-0123456789"),
      await api(`/api/targets/${target}/jobs`), // again: the same answer, no crash loop
    ];
    for (const res of answers) {
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: string };
      expect(body.error.startsWith(`target ${target}: database schema `)).toBe(true);
      expect(body.error).toMatch(what);
    }
  }

  it("made where the migrations ran in another order: every entry point answers 503 naming the target and the migration, and the alarm does nothing", async () => {
    const { target, stub } = await targetWith((sql) => rebuild(sql, ["001-initial", "002-job-deadlines", "003-delivery-body-hash", "005-deployments"], 4));
    await expectUnavailable(target, /migration 005-deployments failed: .*; its schema_version 4 was taken as .*004-agent-tokens/);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // Still as it was: nothing was converted or applied.
    const left = await runInDurableObject(stub, (_, state) => ({
      version: state.storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
      tokens: tableExists(state.storage.sql, "agent_tokens"),
    }));
    expect(left).toEqual({ version: 4, tokens: false });
  });

  it("with a migration this code does not know (newer or diverged code made it): 503 naming the target and the name", async () => {
    const { target } = await targetWith((sql) => {
      sql.exec("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
      sql.exec("INSERT INTO schema_migrations (name, applied_at) VALUES ('099-from-elsewhere', 1)");
    });
    await expectUnavailable(target, /has migrations this code does not know: 099-from-elsewhere/);
  });

  it("with an old schema_version newer than this code: 503 naming the target and the version", async () => {
    const { target } = await targetWith((sql) => rebuild(sql, ALL, ALL.length + 1));
    await expectUnavailable(target, new RegExp(`version ${ALL.length + 1} \\(schema_version\\) is newer than this code`));
  });
});
