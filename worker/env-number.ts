/**
 * A var read as a positive number: unset, empty, blank or anything but a finite number above zero
 * gives the caller's default (a setting never crashes the worker; wrangler.toml documents each one).
 */
export function positiveNumber(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value.trim() !== "" && Number.isFinite(n) && n > 0 ? n : fallback;
}
