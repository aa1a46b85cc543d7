/** Durations (`500ms`, `10s`, `15m`, `1h`) and sizes (`512KiB`, `8MiB`) as written in the agent config. */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds, or an error message. */
export function parseDuration(text: string): number | { error: string } {
  const m = DURATION.exec(text.trim());
  if (!m) return { error: `expected a duration like 500ms, 10s, 15m or 1h, got ${JSON.stringify(text)}` };
  const ms = Math.round(Number(m[1]) * DURATION_MS[m[2]!]!);
  if (ms <= 0) return { error: "must be greater than zero" };
  return ms;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$/;
const SIZE_BYTES: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3 };

/** Bytes, or an error message. A bare number is bytes. */
export function parseSize(text: string): number | { error: string } {
  const m = SIZE.exec(text.trim());
  if (!m) return { error: `expected a size like 512KiB or 8MiB, got ${JSON.stringify(text)}` };
  const bytes = Math.floor(Number(m[1]) * SIZE_BYTES[m[2] ?? "B"]!);
  if (bytes <= 0) return { error: "must be greater than zero" };
  return bytes;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export function formatSize(bytes: number): string {
  if (bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3}GiB`;
  if (bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2}MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return `${bytes}B`;
}
