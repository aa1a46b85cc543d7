/**
 * How one deployment rolls out: its hosts in agent-name order (natural: web-2 before web-10), cut
 * into batches. Each agent declares its own `rollout` for the pipeline; when they disagree the most
 * cautious wins — the smallest batch, and halting if any of them halts — and the plan says so.
 */
import { batchHosts, type BatchSize, describeBatch, type Rollout } from "../../../shared/rollout.ts";
import type { RolloutPlan } from "../types.ts";

export interface Member {
  agent: string;
  rollout: Rollout;
}

const collator = new Intl.Collator("en", { numeric: true, sensitivity: "variant" });

/** Agent names in rollout order: natural (web-2 before web-10), ties by code unit so the order is total. */
export function rolloutOrder(names: readonly string[]): string[] {
  return [...names].sort((a, b) => collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0));
}

function sameBatch(a: BatchSize, b: BatchSize): boolean {
  return a === b;
}

/** The plan for these members (at least one); `batchOf(agent)` is its 0-based batch. */
export function planRollout(members: readonly Member[]): { plan: RolloutPlan; order: string[]; batchOf: (agent: string) => number } {
  if (members.length === 0) throw new RangeError("hookrelay: a deployment needs at least one host");
  const hosts = members.length;
  const order = rolloutOrder(members.map((m) => m.agent));
  const byAgent = new Map(members.map((m) => [m.agent, m.rollout]));
  // Most cautious: the fewest hosts per batch (first in rollout order among equals), halting if any halts.
  let chosen = byAgent.get(order[0]!)!;
  for (const agent of order) {
    const r = byAgent.get(agent)!;
    if (batchHosts(r.batch, hosts) < batchHosts(chosen.batch, hosts)) chosen = r;
  }
  const size = batchHosts(chosen.batch, hosts);
  const halt = members.some((m) => m.rollout.haltOnFailure);
  const notes: string[] = [];
  const disagree = members.some((m) => !sameBatch(m.rollout.batch, members[0]!.rollout.batch) || m.rollout.haltOnFailure !== members[0]!.rollout.haltOnFailure);
  if (disagree) {
    const said = order.map((agent) => {
      const r = byAgent.get(agent)!;
      return `${agent} batch ${describeBatch(r.batch)}${r.haltOnFailure ? "" : ", no halt"}`;
    });
    notes.push(`agents disagree (${said.join("; ")}): using the most cautious, ${size} host${size === 1 ? "" : "s"} per batch${halt ? ", halting on failure" : ""}`);
  }
  if (typeof chosen.batch === "string") {
    const exact = (hosts * Number(chosen.batch.slice(0, -1))) / 100;
    if (exact !== size) notes.push(`${chosen.batch} of ${hosts} host${hosts === 1 ? "" : "s"} is ${exact}: ${exact < size ? "rounded up" : "capped"} to ${size} per batch`);
  } else if (chosen.batch > hosts) {
    notes.push(`batch ${chosen.batch} is more than the ${hosts} host${hosts === 1 ? "" : "s"}: all at once`);
  }
  const indexOf = new Map(order.map((agent, i) => [agent, i]));
  return {
    plan: { batch: chosen.batch, hosts, batchHosts: size, batches: Math.ceil(hosts / size), haltOnFailure: halt, note: notes.length > 0 ? notes.join("; ") : null },
    order,
    batchOf: (agent) => Math.floor(indexOf.get(agent)! / size),
  };
}
