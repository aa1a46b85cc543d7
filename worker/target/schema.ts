/**
 * The Target DO's SQLite schema. Versioned: `meta.schema_version` says which migrations ran;
 * each runs once, in a transaction, when a newer code version first wakes the object.
 */
const MIGRATIONS: readonly string[] = [
  // v1
  `
  CREATE TABLE agents (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    pipelines TEXT NOT NULL,
    connected INTEGER NOT NULL DEFAULT 0,
    conn_id TEXT,
    connected_at INTEGER,
    last_seen_at INTEGER,
    disconnected_at INTEGER
  );
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    delivery TEXT NOT NULL,
    hook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    repo TEXT NOT NULL,
    ref TEXT NOT NULL,
    sha TEXT NOT NULL,
    before TEXT NOT NULL,
    pusher TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    dispatched_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    acked_seq INTEGER NOT NULL DEFAULT 0,
    output_bytes INTEGER NOT NULL DEFAULT 0,
    output_dropped INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX jobs_agent_status ON jobs (agent, status, created_at);
  CREATE INDEX jobs_created ON jobs (created_at);
  CREATE INDEX jobs_finished ON jobs (finished_at);
  CREATE TABLE job_steps (
    job_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    phase TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (job_id, position)
  );
  CREATE TABLE job_events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    stream TEXT,
    data TEXT,
    status TEXT,
    exit_code INTEGER,
    PRIMARY KEY (job_id, seq)
  );
  CREATE TABLE deliveries (
    hook_id TEXT NOT NULL,
    delivery TEXT NOT NULL,
    status INTEGER NOT NULL,
    answer TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (hook_id, delivery)
  );
  CREATE INDEX deliveries_created ON deliveries (created_at);
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

function currentVersion(sql: SqlStorage): number {
  const row = sql.exec<{ version: number }>("SELECT version FROM schema_version").toArray()[0];
  return row?.version ?? 0;
}

/** Brings the schema up to SCHEMA_VERSION; cheap (one query) when it already is. */
export function migrate(storage: DurableObjectStorage): void {
  const sql = storage.sql;
  storage.transactionSync(() => {
    sql.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    const from = currentVersion(sql);
    for (let v = from; v < MIGRATIONS.length; v++) sql.exec(MIGRATIONS[v]!);
    if (from === 0) sql.exec("INSERT INTO schema_version (version) VALUES (?)", SCHEMA_VERSION);
    else if (from < SCHEMA_VERSION) sql.exec("UPDATE schema_version SET version = ?", SCHEMA_VERSION);
  });
}
