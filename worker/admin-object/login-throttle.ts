/**
 * Sign-in attempts per client address: after LOGIN_FAILURES_ALLOWED failures in a window of
 * LOGIN_WINDOW_MS (from the first), that address is refused until the window ends — before its token
 * is compared, so a right guess in the meantime does not get through either. An attempt counts as a
 * failure when it starts (one transaction in the object), and a right token clears the count: guesses
 * sent all at once cannot pass the gate together. Stored in the AdminState object, not in an isolate
 * (which a guesser's requests spread over, and which forgets). Bounded: rows of ended windows are
 * dropped on every write, and past MAX_TRACKED_CLIENTS the oldest go first.
 */
export const LOGIN_FAILURES_ALLOWED = 5;
export const LOGIN_WINDOW_MS = 5 * 60_000;
export const MAX_TRACKED_CLIENTS = 10_000;

export type LoginGate = { ok: true } | { ok: false; retryAfterSeconds: number };

interface FailureRow extends Record<string, SqlStorageValue> {
  failures: number;
  window_start: number;
}

function row(sql: SqlStorage, client: string, nowMs: number): FailureRow | null {
  const found = sql.exec<FailureRow>("SELECT failures, window_start FROM login_failures WHERE client = ?", client).toArray()[0];
  return found && nowMs < found.window_start + LOGIN_WINDOW_MS ? found : null;
}

/** Refused while the address is over its failures; otherwise let in, counted as a failure until cleared. */
export function beginLogin(sql: SqlStorage, client: string, nowMs: number): LoginGate {
  const found = row(sql, client, nowMs);
  if (found !== null && found.failures >= LOGIN_FAILURES_ALLOWED) {
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((found.window_start + LOGIN_WINDOW_MS - nowMs) / 1000)) };
  }
  sql.exec("DELETE FROM login_failures WHERE window_start <= ?", nowMs - LOGIN_WINDOW_MS);
  if (found) sql.exec("UPDATE login_failures SET failures = failures + 1 WHERE client = ?", client);
  else sql.exec("INSERT OR REPLACE INTO login_failures (client, failures, window_start) VALUES (?, 1, ?)", client, nowMs);
  sql.exec(
    "DELETE FROM login_failures WHERE client IN (SELECT client FROM login_failures ORDER BY window_start DESC LIMIT -1 OFFSET ?)",
    MAX_TRACKED_CLIENTS,
  );
  return { ok: true };
}

export function clearLoginFailures(sql: SqlStorage, client: string): void {
  sql.exec("DELETE FROM login_failures WHERE client = ?", client);
}
