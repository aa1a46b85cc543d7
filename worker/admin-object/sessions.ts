/**
 * Which dashboard sessions have ended. A session is its cookie's id (`sid`) and the generation it was
 * signed in; "sign out everywhere" moves the generation on (one write, whatever the number of
 * sessions), a logout records its id until its cookie expires (so the list stays bounded by the
 * sign-ins of the last 12 hours).
 */
export function currentGeneration(sql: SqlStorage): number {
  return sql.exec<{ generation: number }>("SELECT generation FROM session_generation WHERE id = 1").toArray()[0]?.generation ?? 0;
}

export function sessionLive(sql: SqlStorage, sid: string, generation: number): boolean {
  if (generation !== currentGeneration(sql)) return false;
  return sql.exec("SELECT 1 FROM ended_sessions WHERE sid = ?", sid).toArray().length === 0;
}

export function endSession(sql: SqlStorage, sid: string, expiresAtMs: number, nowMs: number): void {
  sql.exec("DELETE FROM ended_sessions WHERE expires_at <= ?", nowMs);
  if (expiresAtMs > nowMs) sql.exec("INSERT OR IGNORE INTO ended_sessions (sid, expires_at) VALUES (?, ?)", sid, expiresAtMs);
}

/** Ends every session signed in so far; the ids ended one by one are covered by the generation now. */
export function endAllSessions(sql: SqlStorage): number {
  const next = currentGeneration(sql) + 1;
  sql.exec("INSERT INTO session_generation (id, generation) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET generation = excluded.generation", next);
  sql.exec("DELETE FROM ended_sessions");
  return next;
}
