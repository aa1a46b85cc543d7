/**
 * The AdminState object's tables. A new object with three small tables, each created if missing: no
 * migrations yet (the first change to them brings a list like the Target's).
 */
export function createTables(sql: SqlStorage): void {
  // One row: sessions signed in an earlier generation have ended ("sign out everywhere").
  sql.exec("CREATE TABLE IF NOT EXISTS session_generation (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL)");
  // Sessions ended one by one (logout), each kept only until its cookie would have expired anyway.
  sql.exec("CREATE TABLE IF NOT EXISTS ended_sessions (sid TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)");
  sql.exec("CREATE INDEX IF NOT EXISTS ended_sessions_expiry ON ended_sessions (expires_at)");
  // Failed sign-ins per client address, in a window that starts at the first failure.
  sql.exec("CREATE TABLE IF NOT EXISTS login_failures (client TEXT PRIMARY KEY, failures INTEGER NOT NULL, window_start INTEGER NOT NULL)");
  sql.exec("CREATE INDEX IF NOT EXISTS login_failures_window ON login_failures (window_start)");
}
