/** The soak's report: a table by fault kind (count, recovered, time to recover p50/max), the zeros, and the last line. */
import type { Findings } from "./checks.ts";
import type { FaultResult } from "./faults.ts";

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function summary(results: FaultResult[], f: Findings, seed: number, minutes: number, diskUnavailable: string | null): string {
  const kinds = [...new Set(results.map((r) => r.kind))].sort();
  const rows = kinds.map((kind) => {
    const of = results.filter((r) => r.kind === kind);
    const times = of.filter((r) => r.recovered).map((r) => r.recoverMs).sort((a, b) => a - b);
    return [kind, String(of.length), String(times.length), seconds(percentile(times, 0.5)), seconds(times.at(-1) ?? 0)];
  });
  const header = ["fault", "count", "recovered", "recover p50", "recover max"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const c = f.counters;
  const s = f.seen;
  const out = [
    `soak: seed ${seed} (replay: --seed ${seed})`,
    line(header),
    ...rows.map(line),
    `checked: ${s.deliveries} deliveries, ${s.jobs} jobs (${Object.entries(s.byStatus).map(([k, n]) => `${k} ${n}`).join(", ")}), ${s.deployments} deployments, ${s.githubStatuses} GitHub statuses, ${s.notifications} notifications (${s.redelivered} re-sent with the same webhook-id)`,
    `zeros: lost=${c.lost} repeated=${c.repeated} double_runs=${c.double_runs} stuck=${c.stuck} reports_dup=${c.reports_dup} storage_recount=${c.storage}`,
  ];
  if (diskUnavailable) out.push(`not produced: disk-full (${diskUnavailable})`);
  const evicts = results.filter((r) => r.kind === "evict");
  if (evicts.length > 0) out.push(`evictions: ${evicts.filter((r) => r.what.includes("object evicted")).length} of ${evicts.length} evict faults found the object built again (the others: something woke it meanwhile)`);
  for (const d of f.details.slice(0, 40)) out.push(`  ${d.split("\n")[0]}`);
  if (f.details.length > 40) out.push(`  … ${f.details.length - 40} more`);
  out.push(
    `soak: faults=${results.length} kinds=${new Set(results.flatMap((r) => r.parts)).size} lost=${c.lost} repeated=${c.repeated} double_runs=${c.double_runs} stuck=${c.stuck} reports_dup=${c.reports_dup} seed=${seed} minutes=${minutes.toFixed(1)}`,
  );
  return out.join("\n");
}
