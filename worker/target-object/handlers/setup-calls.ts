/**
 * The setup page's facts about one target (GET /api/targets/:target/setup; the checklist itself is
 * judged in worker/api/setup-checklist.ts): what GitHub has sent, which agents are registered and
 * connected and in which protocol, which hellos were refused and why, the reporting channels' state,
 * the pipelines that wait for CI, and the stored logs against the budget.
 */
import { listAgentRows, readStoredPipelines } from "../agents/agents.ts";
import { registeredNames } from "../agents/agent-tokens.ts";
import { recordSeenDelivery, type SeenDelivery, type SeenDeliveryView, seenDeliveries } from "../deployments/github-events.ts";
import { type LogStorageView, logStorageView } from "../jobs/log-budget.ts";
import type { ReportSetup } from "../reports/report-outbox.ts";
import { isoOrNull } from "../types.ts";
import type { TargetContext } from "./target-context.ts";

export interface SetupAgent {
  name: string;
  /** `registered`: it has a token and has never said hello. */
  state: "connected" | "offline" | "registered";
  version: string;
  protocol: number | null;
  /** Connected since, or offline since. */
  since: string | null;
  /** Its last hello that was refused, and why; cleared by an accepted one. */
  refused: { at: string; reason: string } | null;
}

export interface SetupWaitFor {
  agent: string;
  pipeline: string;
  repo: string;
  workflows: string[];
  checks: string[];
}

export interface SetupView {
  target: string;
  deliveries: SeenDeliveryView[];
  agents: SetupAgent[];
  reporting: { github: { state: string; why: string | null }; notify: { state: string; why: string | null; targets: number } };
  waitFor: SetupWaitFor[];
  storage: LogStorageView;
}

export function setupView(c: TargetContext, reports: ReportSetup): SetupView {
  const sql = c.ctx.storage.sql;
  const rows = listAgentRows(sql);
  const seen = new Set(rows.map((r) => r.name));
  const agents: SetupAgent[] = rows.map((r) => ({
    name: r.name,
    state: r.connected === 1 ? "connected" : r.connected_at === null && r.last_seen_at === null ? "registered" : "offline",
    version: r.version,
    protocol: r.protocol,
    since: r.connected === 1 ? isoOrNull(r.connected_at) : isoOrNull(r.disconnected_at ?? r.last_seen_at),
    refused: r.refused_at === null ? null : { at: isoOrNull(r.refused_at)!, reason: r.refused_reason ?? "" },
  }));
  for (const name of registeredNames(sql)) {
    if (!seen.has(name)) agents.push({ name, state: "registered", version: "", protocol: null, since: null, refused: null });
  }
  agents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const waitFor: SetupWaitFor[] = [];
  for (const r of rows) {
    for (const p of readStoredPipelines(r.pipelines)) {
      if (p.waitFor && (p.waitFor.workflows.length > 0 || p.waitFor.checks.length > 0)) {
        waitFor.push({ agent: r.name, pipeline: p.name, repo: p.repo, workflows: p.waitFor.workflows, checks: p.waitFor.checks });
      }
    }
  }
  return {
    target: c.target,
    deliveries: seenDeliveries(sql),
    agents,
    reporting: {
      github: { state: reports.github.state, why: reports.github.why },
      notify: { state: reports.notify.state, why: reports.notify.why, targets: reports.notify.targets.length },
    },
    waitFor,
    storage: logStorageView(sql, c.target, c.logBudgetBytes),
  };
}

/** A delivery the worker answered itself (a ping, an event it does not deploy, one refused for its signature). */
export function noteDelivery(c: TargetContext, d: SeenDelivery & { refused: boolean }): void {
  recordSeenDelivery(c.ctx.storage.sql, d, c.now);
}
