/**
 * The Target DO's SQLite schema. Versioned: `meta.schema_version` says which migrations ran;
 * each runs once, in a transaction, when a newer code version first wakes the object.
 */
export const MIGRATIONS: readonly string[] = [
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
  // v2: every accepted job ends. The job's own deadline (its pipeline's declared timeout, twice when it
  // has on_failure steps; jobs from before this get the agent's default, 30 min), when a cancel was
  // asked for (a cancel the agent never confirms ends after a grace; one pending at upgrade counts
  // from now), the seq of the agent's job-end (no event is stored after it), and the worker's own
  // lines in a job's log — kept apart so the agent's seq space stays its own.
  `
  ALTER TABLE jobs ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 1800000;
  ALTER TABLE jobs ADD COLUMN has_on_failure INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE jobs ADD COLUMN cancel_requested_at INTEGER;
  ALTER TABLE jobs ADD COLUMN end_seq INTEGER;
  UPDATE jobs SET has_on_failure = EXISTS (SELECT 1 FROM job_steps s WHERE s.job_id = jobs.id AND s.phase = 'on_failure');
  UPDATE jobs SET cancel_requested_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000 WHERE status = 'running' AND cancel_requested = 1;
  UPDATE jobs SET end_seq = (SELECT min(e.seq) FROM job_events e WHERE e.job_id = jobs.id AND e.kind = 'job-end');
  CREATE INDEX jobs_status ON jobs (status);
  CREATE TABLE job_notes (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    after_seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    text TEXT NOT NULL
  );
  CREATE INDEX job_notes_job ON job_notes (job_id, id);
  `,
  // v3: the signature covers only the body, so the body's SHA-256 (hex) is a dedupe key too: a captured
  // body replayed under a fresh delivery GUID gets the first answer. Records from before have none (NULL,
  // which a unique index lets repeat); retention deletes the hash with its record.
  `
  ALTER TABLE deliveries ADD COLUMN body_hash TEXT;
  CREATE UNIQUE INDEX deliveries_body_hash ON deliveries (body_hash);
  `,
  // v4: per-agent tokens: only each token's SHA-256 (hex), never the token. `issued_at` (registration or
  // the last rotation) counts as "seen" for pruning an agent that never connects.
  `
  CREATE TABLE agent_tokens (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    issued_at INTEGER NOT NULL
  );
  `,
  // v5: deployments. A push (or POST …/deploy) makes one deployment per matched pipeline, with one job
  // per agent declaring it; `rollout` is the plan as JSON (rollout-plan.ts), `batch_hosts` and
  // `halt_on_failure` what it decided. A job's `batch` (0-based, in agent-name order) is sent only once
  // its batch is released (`released_at`). Jobs from before this become one deployment per (delivery,
  // pipeline), all hosts in one batch and released, as they ran; its status follows their statuses.
  `
  CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    delivery TEXT NOT NULL,
    hook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    repo TEXT NOT NULL,
    ref TEXT NOT NULL,
    sha TEXT NOT NULL,
    before TEXT NOT NULL,
    pusher TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    rollout TEXT NOT NULL,
    batch_hosts INTEGER NOT NULL,
    halt_on_failure INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
  );
  CREATE INDEX deployments_status ON deployments (status);
  CREATE INDEX deployments_pipeline ON deployments (pipeline, created_at);
  CREATE INDEX deployments_created ON deployments (created_at);
  CREATE INDEX deployments_finished ON deployments (finished_at);
  ALTER TABLE jobs ADD COLUMN deployment_id TEXT;
  ALTER TABLE jobs ADD COLUMN batch INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE jobs ADD COLUMN released_at INTEGER;
  UPDATE jobs SET released_at = created_at,
    deployment_id = (SELECT 'pre-' || min(k.id) FROM jobs k WHERE k.delivery = jobs.delivery AND k.pipeline = jobs.pipeline);
  CREATE INDEX jobs_deployment ON jobs (deployment_id, batch);
  INSERT INTO deployments (id, pipeline, delivery, hook_id, event, repo, ref, sha, before, pusher, message, status, rollout,
                           batch_hosts, halt_on_failure, created_at, started_at, finished_at)
  SELECT deployment_id, pipeline, delivery, min(hook_id), min(event), min(repo), min(ref), min(sha), min(before), min(pusher), '',
    CASE
      WHEN sum(status = 'running') > 0 THEN 'running'
      WHEN sum(status = 'queued') > 0 THEN CASE WHEN min(started_at) IS NULL THEN 'queued' ELSE 'running' END
      WHEN sum(status IN ('failed', 'timed_out', 'interrupted')) > 0 THEN 'failed'
      WHEN sum(status = 'canceled') > 0 THEN 'canceled'
      WHEN sum(status = 'superseded') > 0 THEN 'superseded'
      ELSE 'succeeded'
    END,
    json_object('batch', count(*), 'hosts', count(*), 'batchHosts', count(*), 'batches', 1, 'haltOnFailure', json('false'),
                'note', 'made before deployments existed: all hosts at once'),
    count(*), 0, min(created_at), min(started_at),
    CASE WHEN sum(status IN ('queued', 'running')) > 0 THEN NULL ELSE max(finished_at) END
  FROM jobs GROUP BY deployment_id;
  `,
  // v6: telling GitHub and people. `reports` is the durable outbox: one row per message to one channel
  // ('github', or 'notify:<n>' for the n-th NOTIFY_URLS entry), its body a JSON snapshot taken when the
  // deployment changed, sent in id order per (deployment, channel) by the alarm, retried with backoff,
  // given up after 24 h. A deployment keeps the GitHub deployment id its creation got back, and the
  // environment its pipeline declared. `meta` holds the reporting setup the worker's secrets make.
  `
  CREATE TABLE reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    done_at INTEGER
  );
  CREATE INDEX reports_due ON reports (state, next_at);
  CREATE INDEX reports_deployment ON reports (deployment_id, channel, id);
  ALTER TABLE deployments ADD COLUMN environment TEXT;
  ALTER TABLE deployments ADD COLUMN environment_url TEXT;
  ALTER TABLE deployments ADD COLUMN github_id INTEGER;
  `,
  // v7: a storage budget for logs (log-budget.ts). What each job_events row costs to store — its data's
  // UTF-8 bytes + 128 for the row (key, columns, index entry): LOG_ROW_OVERHEAD_BYTES — is kept as a
  // running total, per job (`log_bytes`, `log_rows`) and for the target (`log_usage`, one row), by
  // triggers, so every insert and delete counts in its own transaction, whichever code path does it.
  // Rows stored before this are counted once here. `jobs_logged` finds the oldest jobs with a log.
  `
  ALTER TABLE jobs ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE jobs ADD COLUMN log_rows INTEGER NOT NULL DEFAULT 0;
  UPDATE jobs SET
    log_rows = (SELECT count(*) FROM job_events e WHERE e.job_id = jobs.id),
    log_bytes = (SELECT COALESCE(sum(length(CAST(e.data AS BLOB))), 0) + 128 * count(*) FROM job_events e WHERE e.job_id = jobs.id);
  CREATE INDEX jobs_logged ON jobs (created_at) WHERE log_rows > 0;
  CREATE TABLE log_usage (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    bytes INTEGER NOT NULL,
    rows INTEGER NOT NULL
  );
  INSERT INTO log_usage (id, bytes, rows)
    SELECT 1, COALESCE(sum(length(CAST(data AS BLOB))), 0) + 128 * count(*), count(*) FROM job_events;
  CREATE TRIGGER job_events_count_insert AFTER INSERT ON job_events BEGIN
    UPDATE log_usage SET bytes = bytes + COALESCE(length(CAST(NEW.data AS BLOB)), 0) + 128, rows = rows + 1 WHERE id = 1;
    UPDATE jobs SET log_bytes = log_bytes + COALESCE(length(CAST(NEW.data AS BLOB)), 0) + 128, log_rows = log_rows + 1 WHERE id = NEW.job_id;
  END;
  CREATE TRIGGER job_events_count_delete AFTER DELETE ON job_events BEGIN
    UPDATE log_usage SET bytes = bytes - COALESCE(length(CAST(OLD.data AS BLOB)), 0) - 128, rows = rows - 1 WHERE id = 1;
    UPDATE jobs SET log_bytes = log_bytes - COALESCE(length(CAST(OLD.data AS BLOB)), 0) - 128, log_rows = log_rows - 1 WHERE id = OLD.job_id;
  END;
  `,
  // GitHub's production_environment and transient_environment of a deployment, from its hosts'
  // declarations (environment-choice.ts). production NULL: GitHub's default for the environment's name
  // (true only for production/prod), decided when the reports are queued; transient 0 unless declared.
  // environment_disagreements: JSON, the keys its hosts declared differently (each host's value), which
  // then fell back to the target's defaults; NULL when they agreed.
  `
  ALTER TABLE deployments ADD COLUMN production_environment INTEGER;
  ALTER TABLE deployments ADD COLUMN transient_environment INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE deployments ADD COLUMN environment_disagreements TEXT;
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
