/**
 * How old a push is, by the one time the signature covers: `repository.pushed_at`. The delivery
 * headers are not signed, so a captured body can be sent again under any GUID; its hash stops that
 * while its delivery record is kept (RETENTION_DAYS), and past that the push is stale: an old commit
 * is never deployed again by a replay.
 */
const DAY_MS = 86_400_000;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * `pushed_at` as ms since the epoch. Push payloads carry Unix seconds (a number); other events, and
 * GitHub Enterprise's older versions, an ISO string. Anything else is null: not a time we can judge.
 */
export function pushedAtMs(value: unknown): number | null {
  let ms = Number.NaN;
  if (typeof value === "number") ms = value * 1000;
  else if (typeof value === "string" && ISO_8601.test(value)) ms = Date.parse(value);
  return Number.isFinite(new Date(ms).getTime()) ? ms : null;
}

/**
 * Why this push is too old to deploy, or null. A push with no usable `pushed_at` is not judged stale:
 * GitHub always sends one, so only other senders (Gitea-style hooks, hand-made tests) lack it, and their
 * bodies are still deduplicated by hash while the record lives. Refusing them would break those senders
 * for a replay window that opens only after RETENTION_DAYS. At exactly the limit a push counts as stale,
 * so every push that is not stale still has its delivery record if it was seen before.
 */
export function staleReason(pushedAt: number | null, now: number, retentionMs: number): string | null {
  if (pushedAt === null || now - pushedAt < retentionMs) return null;
  return `stale delivery: pushed_at ${new Date(pushedAt).toISOString()} is older than RETENTION_DAYS (${retentionMs / DAY_MS} days)`;
}
