/** Small helpers for the benchmark: percentiles, wall-clock nanoseconds, the table. */
export interface Row {
  metric: string;
  value: string;
  target: string;
  ok: boolean | undefined;
  /** Side by side, where there is something to compare with: e.g. "1.9× webhook", "1.04× bash". */
  ratio?: string;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * The pause before each measured request. The worker writes its log lines LINE_DELAY_MS after the
 * answer (worker/console-lines.ts) and an idle agent's job runs meanwhile: measured back to back, one
 * request's afterwork would land in the next one's time. Real pushes are seconds apart.
 */
export const SETTLE_MS = 150;

export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}

/** Wall-clock time in ns, comparable with `date +%s%N` in a child process. */
export function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

export function printTable(rows: Row[]): void {
  const w = [
    Math.max(6, ...rows.map((r) => r.metric.length)),
    Math.max(5, ...rows.map((r) => r.value.length)),
    Math.max(5, ...rows.map((r) => (r.ratio ?? "").length)),
    Math.max(6, ...rows.map((r) => r.target.length)),
  ];
  const line = (a: string, b: string, r: string, c: string, d: string) => `${a.padEnd(w[0]!)}  ${b.padEnd(w[1]!)}  ${r.padEnd(w[2]!)}  ${c.padEnd(w[3]!)}  ${d}`;
  console.log(`\n${line("metric", "value", "ratio", "target", "")}\n${"-".repeat(w[0]! + w[1]! + w[2]! + w[3]! + 12)}`);
  for (const r of rows) console.log(line(r.metric, r.value, r.ratio ?? "", r.target, r.ok === undefined ? "" : r.ok ? "ok" : "MISS"));
}
