/**
 * The Target DO's SQLite schema, as named migrations. `schema_migrations` records the name of each
 * one applied; when the object starts, each one it lacks is applied once, in this order, all in one
 * transaction. Names, not positions: a database made where the order differed (a branch, a merge that
 * renumbered) still gets exactly what it lacks. A database that recorded a name this code does not
 * know (newer or diverged code made it), or on which a migration fails, is left as it is and the
 * problem returned: the object then answers every call with it (target.ts) rather than crash-looping.
 *
 * Databases from before names carry `schema_version` (one integer N: the first N migrations ran); it
 * is converted once to the first N names — what they ran on main — and dropped.
 */
import { errorMessage } from "../../shared/errors.ts";

export interface Migration {
  /** What it does, numbered for order; recorded in `schema_migrations` once applied. */
  name: string;
  sql: string;
}

// Append new migrations at the end with a new name; never rename or reorder.
export const MIGRATIONS: readonly Migration[] = [
  {
    name: "001-initial",
    sql: `
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
  },
  // Every accepted job ends. The job's own deadline (its pipeline's declared timeout, twice when it
  // has on_failure steps; jobs from before this get the agent's default, 30 min), when a cancel was
  // asked for (a cancel the agent never confirms ends after a grace; one pending at upgrade counts
  // from now), the seq of the agent's job-end (no event is stored after it), and the worker's own
  // lines in a job's log — kept apart so the agent's seq space stays its own.
  {
    name: "002-job-deadlines",
    sql: `
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
  },
  // The signature covers only the body, so the body's SHA-256 (hex) is a dedupe key too: a captured
  // body replayed under a fresh delivery GUID gets the first answer. Records from before have none (NULL,
  // which a unique index lets repeat); retention deletes the hash with its record.
  {
    name: "003-delivery-body-hash",
    sql: `
  ALTER TABLE deliveries ADD COLUMN body_hash TEXT;
  CREATE UNIQUE INDEX deliveries_body_hash ON deliveries (body_hash);
  `,
  },
  // Per-agent tokens: only each token's SHA-256 (hex), never the token. `issued_at` (registration or
  // the last rotation) counts as "seen" for pruning an agent that never connects.
  {
    name: "004-agent-tokens",
    sql: `
  CREATE TABLE agent_tokens (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    issued_at INTEGER NOT NULL
  );
  `,
  },
  // Deployments. A push (or POST …/deploy) makes one deployment per matched pipeline, with one job
  // per agent declaring it; `rollout` is the plan as JSON (rollout-plan.ts), `batch_hosts` and
  // `halt_on_failure` what it decided. A job's `batch` (0-based, in agent-name order) is sent only once
  // its batch is released (`released_at`). Jobs from before this become one deployment per (delivery,
  // pipeline), all hosts in one batch and released, as they ran; its status follows their statuses.
  {
    name: "005-deployments",
    sql: `
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
  },
  // Telling GitHub and people. `reports` is the durable outbox: one row per message to one channel
  // ('github', or 'notify:<n>' for the n-th NOTIFY_URLS entry — keyed by a hash of the URL since, so a
  // changed list never sends a row to another URL: report-wiring.ts), its body a JSON snapshot taken when the
  // deployment changed, sent in id order per (deployment, channel) by the alarm, retried with backoff,
  // given up after 24 h. A deployment keeps the GitHub deployment id its creation got back (moved to
  // the report in 010), and the environment its pipeline declared. `meta` holds the reporting setup the worker's secrets make.
  {
    name: "006-reports",
    sql: `
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
  },
  // A storage budget for logs (log-budget.ts). What each job_events row costs to store — its data's
  // UTF-8 bytes + 128 for the row (key, columns, index entry): LOG_ROW_OVERHEAD_BYTES — is kept as a
  // running total, per job (`log_bytes`, `log_rows`) and for the target (`log_usage`, one row), by
  // triggers, so every insert and delete counts in its own transaction, whichever code path does it.
  // Rows stored before this are counted once here. `jobs_logged` finds the oldest jobs with a log.
  {
    name: "007-log-budget",
    sql: `
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
  },
  // A job's log is bounded in rows as well as bytes (events.ts). Output past either cap, and empty
  // output, is acked and not stored; `output_dropped_events` counts the events left out (beside
  // `output_dropped`, their bytes) for the log's marker — counted here, for jobs from before, as the
  // rows with no data they left. `step_events` counts the step-start/step-end rows, at most two per
  // declared step. A pipeline's timeout is at most 24 h now (MAX_PIPELINE_TIMEOUT_MS): longer ones clamp.
  // Rows already stored stay (a running job's until it ends; the budget drops finished ones).
  {
    name: "008-job-log-rows",
    sql: `
  ALTER TABLE jobs ADD COLUMN output_dropped_events INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE jobs ADD COLUMN step_events INTEGER NOT NULL DEFAULT 0;
  UPDATE jobs SET output_dropped_events =
    (SELECT count(*) FROM job_events e WHERE e.job_id = jobs.id AND e.kind = 'output' AND COALESCE(length(CAST(e.data AS BLOB)), 0) = 0)
    WHERE output_dropped > 0;
  UPDATE jobs SET step_events = (SELECT count(*) FROM job_events e WHERE e.job_id = jobs.id AND e.kind IN ('step-start', 'step-end'))
    WHERE log_rows > 0;
  UPDATE jobs SET timeout_ms = 86400000 WHERE timeout_ms > 86400000;
  `,
  },
  // GitHub's production_environment and transient_environment of a deployment, from its hosts'
  // declarations (environment-choice.ts). production NULL: GitHub's default for the environment's name
  // (true only for production/prod), decided when the reports are queued; transient 0 unless declared.
  // environment_disagreements: JSON, the keys its hosts declared differently (each host's value), which
  // then fell back to the target's defaults; NULL when they agreed.
  {
    name: "009-deployment-environment",
    sql: `
  ALTER TABLE deployments ADD COLUMN production_environment INTEGER;
  ALTER TABLE deployments ADD COLUMN transient_environment INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE deployments ADD COLUMN environment_disagreements TEXT;
  `,
  },
  // The GitHub deployment id moves to the report whose answer brought it (reports/report-outbox.ts):
  // reports write only their own table, and a deployment row no longer changes after it ended.
  {
    name: "010-report-github-id",
    sql: `
  ALTER TABLE reports ADD COLUMN github_id INTEGER;
  UPDATE reports SET github_id = (SELECT d.github_id FROM deployments d WHERE d.id = reports.deployment_id)
    WHERE kind = 'github-deployment' AND state = 'sent';
  ALTER TABLE deployments DROP COLUMN github_id;
  `,
  },
  // Gates (deployments/gates.ts): what a deployment waits for before any host runs — each CI workflow or
  // check by name, and a person's approval — and how each was decided. A `waiting` deployment ends
  // `blocked` (with its reason) at `wait_until`. `conclusions` keeps the CI conclusions the webhook
  // took (deployments/conclusions.ts), so one that came before its push still opens the gate; bounded
  // per target, kept for the retention period.
  {
    name: "011-gates",
    sql: `
  ALTER TABLE deployments ADD COLUMN blocked_reason TEXT;
  ALTER TABLE deployments ADD COLUMN wait_until INTEGER;
  CREATE TABLE gates (
    deployment_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    url TEXT,
    decided_at INTEGER,
    decided_by TEXT,
    note TEXT,
    required_by TEXT NOT NULL,
    PRIMARY KEY (deployment_id, kind, name)
  );
  CREATE TABLE conclusions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    sha TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    conclusion TEXT NOT NULL,
    url TEXT,
    run_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    received_at INTEGER NOT NULL
  );
  CREATE INDEX conclusions_attempt ON conclusions (kind, run_id, attempt);
  CREATE INDEX conclusions_run ON conclusions (repo, sha, kind, name, id);
  CREATE INDEX deployments_waiting ON deployments (status, wait_until);
  `,
  },
  // The setup page (handlers/setup-calls.ts): the last delivery of each event GitHub sent this target,
  // and the last refused for its signature (deployments/github-events.ts); each agent's protocol, and
  // the last hello refused with why (a protocol this worker does not speak, a declaration over a limit).
  {
    name: "012-setup",
    sql: `
  CREATE TABLE github_events (
    kind TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    delivery TEXT NOT NULL,
    status INTEGER NOT NULL,
    answer TEXT NOT NULL,
    at INTEGER NOT NULL,
    count INTEGER NOT NULL
  );
  ALTER TABLE agents ADD COLUMN protocol INTEGER;
  ALTER TABLE agents ADD COLUMN refused_at INTEGER;
  ALTER TABLE agents ADD COLUMN refused_reason TEXT;
  `,
  },
];

export type MigrateResult = { ok: true; applied: string[] } | { ok: false; problem: string };

/** Rolls the whole transaction back; its message becomes the result's problem. */
class SchemaProblem extends Error {}

function names(list: readonly string[]): string {
  return list.length === 0 ? "none" : list.join(", ");
}

/** The old integer, converted to the names it stood for; a version this code never had is a problem. */
function convertSchemaVersion(sql: SqlStorage, now: number): string | null {
  const old = sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").one().n;
  if (old === 0) return null;
  const version = sql.exec<{ version: number }>("SELECT version FROM schema_version").toArray()[0]?.version ?? 0;
  if (!Number.isInteger(version) || version < 0 || version > MIGRATIONS.length) {
    const what = Number.isInteger(version) && version > 0 ? "is newer than this code" : "is not a version";
    throw new SchemaProblem(`version ${version} (schema_version) ${what}, which knows ${MIGRATIONS.length} migrations (${names(MIGRATIONS.map((m) => m.name))})`);
  }
  for (const m of MIGRATIONS.slice(0, version)) sql.exec("INSERT OR IGNORE INTO schema_migrations (name, applied_at) VALUES (?, ?)", m.name, now);
  sql.exec("DROP TABLE schema_version");
  return `its schema_version ${version} was taken as ${names(MIGRATIONS.slice(0, version).map((m) => m.name))}`;
}

/**
 * Applies each migration the database lacks; cheap (three queries) when it lacks none. An unknown
 * recorded name or a failing migration changes nothing and is returned as a problem, never thrown.
 */
export function migrate(storage: DurableObjectStorage, now = Date.now()): MigrateResult {
  const sql = storage.sql;
  // Read after a rollback: what the conversion took the old integer for, and which step failed.
  const at: { converted: string | null; step: string } = { converted: null, step: "recording migrations" };
  try {
    return storage.transactionSync(() => {
      sql.exec("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)");
      at.converted = convertSchemaVersion(sql, now);
      const recorded = new Set(sql.exec<{ name: string }>("SELECT name FROM schema_migrations").toArray().map((r) => r.name));
      const known = new Set(MIGRATIONS.map((m) => m.name));
      const unknown = [...recorded].filter((n) => !known.has(n)).sort();
      if (unknown.length > 0) {
        throw new SchemaProblem(`has migrations this code does not know: ${names(unknown)} (made by newer or diverged code; this code knows ${names([...known])})`);
      }
      const applied: string[] = [];
      for (const m of MIGRATIONS) {
        if (recorded.has(m.name)) continue;
        at.step = `migration ${m.name}`;
        sql.exec(m.sql);
        sql.exec("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", m.name, now);
        applied.push(m.name);
      }
      return { ok: true, applied };
    });
  } catch (e) {
    const why = e instanceof SchemaProblem ? e.message : `${at.step} failed: ${errorMessage(e)}`;
    return { ok: false, problem: at.converted === null ? why : `${why}; ${at.converted}` };
  }
}
