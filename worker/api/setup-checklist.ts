/**
 * The setup page's checklist for one target (GET /api/targets/:target/setup): from the worker's secrets
 * and the target's facts (handlers/setup-calls.ts), each item ok, warn or red, with what to do next.
 * Red is what stops a push from deploying; warn is what a person should know (an optional channel off,
 * an agent offline). Pure: the route hands it everything it judges.
 */
import { GATES_PROTOCOL_VERSION, PROTOCOL_VERSION } from "../../shared/protocol.ts";
import { REFUSED_KIND } from "../target-object/deployments/github-events.ts";
import type { SetupView } from "../target-object/handlers/setup-calls.ts";

export type CheckState = "ok" | "warn" | "red";

export interface SetupCheck {
  id: "secrets" | "webhook" | "agents" | "github" | "notify" | "wait-for" | "storage";
  state: CheckState;
  title: string;
  /** One line per fact behind the state. */
  lines: string[];
  /** What to do next, when not ok. */
  fix: string | null;
}

export interface SetupFacts {
  /** The webhook secret's problem (missing, too short), or null when it is usable. */
  webhookSecretProblem: string | null;
  /** The payload URL of this target's hook. */
  payloadUrl: string;
  /** AGENT_TOKEN is still set on the worker (ignored since per-agent tokens). */
  legacyAgentToken: boolean;
  view: SetupView;
  now: number;
}

const flag = (target: string) => (target === "default" ? "" : ` --target ${target}`);

function secretsCheck(f: SetupFacts): SetupCheck {
  const lines = [f.webhookSecretProblem === null ? "GITHUB_WEBHOOK_SECRET is set." : f.webhookSecretProblem, "ADMIN_TOKEN is set (you are signed in with it)."];
  if (f.legacyAgentToken) lines.push("AGENT_TOKEN is still set but ignored: agents have their own tokens.");
  if (f.webhookSecretProblem !== null) {
    return { id: "secrets", state: "red", title: "Worker secrets", lines, fix: "Run `npx hookrelay init` (or `npx wrangler secret put GITHUB_WEBHOOK_SECRET` with a long random value)." };
  }
  return { id: "secrets", state: f.legacyAgentToken ? "warn" : "ok", title: "Worker secrets", lines, fix: f.legacyAgentToken ? "Remove it: `npx wrangler secret delete AGENT_TOKEN`." : null };
}

function webhookCheck(f: SetupFacts): SetupCheck {
  const { target, deliveries } = f.view;
  const signed = deliveries.filter((d) => d.kind !== REFUSED_KIND);
  const refused = deliveries.find((d) => d.kind === REFUSED_KIND);
  const add = `Run \`npx hookrelay webhook add --repo OWNER/NAME${flag(target)}\`, or add it by hand: payload URL ${f.payloadUrl}, content type application/json, this target's secret.`;
  const title = "GitHub's webhook";
  const lines = signed.map((d) => `Last ${d.event} ${d.delivery ? `(delivery ${d.delivery}) ` : ""}at ${d.at}: answered ${d.answer}${d.count > 1 ? ` · ${d.count} so far` : ""}.`);
  const newest = signed[0];
  if (refused && (!newest || refused.at >= newest.at)) {
    const secretFix =
      target === "default"
        ? "the hook's Secret must be the worker's GITHUB_WEBHOOK_SECRET"
        : `the hook's Secret must be this target's own secret (GET /api/targets/${target}/webhook-secret; \`npx hookrelay webhook add\` sets it)`;
    return {
      id: "webhook",
      state: "red",
      title,
      lines: [`A delivery${refused.event ? ` (${refused.event})` : ""} was refused at ${refused.at}: invalid signature.`, ...lines],
      fix: `Fix the hook's secret: ${secretFix}. Then redeliver the ping from GitHub's Recent Deliveries.`,
    };
  }
  if (!newest) return { id: "webhook", state: "red", title, lines: ["GitHub has sent nothing to this target yet."], fix: add };
  if (newest.status >= 400) return { id: "webhook", state: "warn", title, lines, fix: "The last delivery was refused (its answer is above); fix what it says." };
  return { id: "webhook", state: "ok", title, lines, fix: null };
}

function agentsCheck(f: SetupFacts): SetupCheck {
  const { target, agents } = f.view;
  const title = "Agents";
  const add = `Use "Add a server" below, or \`npx hookrelay agents add web-1${flag(target)}\`.`;
  if (agents.length === 0) return { id: "agents", state: "red", title, lines: ["No agent is registered in this target."], fix: add };
  const speaks = `this worker speaks protocol ${PROTOCOL_VERSION} and ${GATES_PROTOCOL_VERSION}`;
  const lines = agents.map((a) => {
    const what = a.state === "connected" ? `connected since ${a.since}` : a.state === "offline" ? `offline since ${a.since ?? "?"}` : "registered, never connected";
    const version = a.version ? ` · version ${a.version}${a.protocol !== null ? `, protocol ${a.protocol}` : ""}` : "";
    const refused = a.refused ? ` · its hello was refused at ${a.refused.at}: ${a.refused.reason}` : "";
    return `${a.name}: ${what}${version}${refused}`;
  });
  const refusedNow = agents.filter((a) => a.refused !== null && a.state !== "connected");
  const connected = agents.filter((a) => a.state === "connected");
  if (refusedNow.length > 0) {
    return { id: "agents", state: "red", title, lines, fix: `Refused agents cannot take jobs: ${speaks}; upgrade the agent, or fix its config (\`hookrelay-agent check\`).` };
  }
  if (connected.length === 0) {
    return { id: "agents", state: "red", title, lines, fix: "No agent is connected: run the install commands on the server (`journalctl -u hookrelay-agent` shows why it does not connect)." };
  }
  if (connected.length < agents.length) return { id: "agents", state: "warn", title, lines, fix: "Jobs for an agent that is not connected wait for it; revoke one you no longer use (`npx hookrelay agents revoke NAME`)." };
  return { id: "agents", state: "ok", title, lines, fix: null };
}

function channelCheck(id: "github" | "notify", title: string, c: { state: string; why: string | null }, onLine: string): SetupCheck {
  if (c.state === "on") return { id, state: "ok", title, lines: [onLine], fix: null };
  const why = c.why ?? `${title} is ${c.state}`;
  return { id, state: c.state === "broken" ? "red" : "warn", title, lines: [why], fix: c.state === "broken" ? "Fix the secret or var it names (it is off until then)." : "Optional: see the README's sections on GitHub deployments and notifications." };
}

function waitForCheck(f: SetupFacts): SetupCheck {
  const { waitFor, deliveries } = f.view;
  const title = "Gates (wait_for)";
  if (waitFor.length === 0) return { id: "wait-for", state: "ok", title, lines: ["No pipeline waits for CI."], fix: null };
  const seen = new Map(deliveries.filter((d) => d.kind !== REFUSED_KIND).map((d) => [d.event, d]));
  const lines: string[] = [];
  let missing = false;
  for (const w of waitFor) {
    for (const [names, event] of [[w.workflows, "workflow_run"], [w.checks, "check_run"]] as const) {
      if (names.length === 0) continue;
      const last = seen.get(event);
      if (!last) missing = true;
      lines.push(
        `${w.agent}/${w.pipeline} waits for ${event === "workflow_run" ? "workflows" : "checks"} ${names.join(", ")}: ` +
          (last ? `GitHub last sent ${event} at ${last.at}.` : `GitHub has never sent a ${event} event to this target.`),
      );
    }
  }
  return {
    id: "wait-for",
    state: missing ? "red" : "ok",
    title,
    lines,
    fix: missing ? "Tick \"Workflow runs\" and \"Check runs\" in the hook's events (`npx hookrelay webhook add` does); until one arrives, those deployments wait and then block at their timeout." : null,
  };
}

function storageCheck(f: SetupFacts): SetupCheck {
  const s = f.view.storage;
  const pct = s.logBudgetBytes > 0 ? Math.round((100 * s.logBytes) / s.logBudgetBytes) : 0;
  const line = `${(s.logBytes / 1048576).toFixed(1)} MiB of stored logs of a ${(s.logBudgetBytes / 1048576).toFixed(0)} MiB budget (${pct} %).`;
  if (pct >= 90) return { id: "storage", state: "warn", title: "Stored logs", lines: [line, "Past the budget the oldest finished jobs' logs are dropped first."], fix: "Raise LOG_BUDGET_MB, or lower RETENTION_DAYS." };
  return { id: "storage", state: "ok", title: "Stored logs", lines: [line], fix: null };
}

export function setupChecklist(f: SetupFacts): SetupCheck[] {
  const { github, notify } = f.view.reporting;
  return [
    secretsCheck(f),
    agentsCheck(f),
    webhookCheck(f),
    waitForCheck(f),
    channelCheck("github", "GitHub deployments", github, "GitHub reporting is on: each deploy shows in the repository's Deployments."),
    channelCheck("notify", "Notifications", notify, `Notifications are on (${notify.targets} URL${notify.targets === 1 ? "" : "s"}).`),
    storageCheck(f),
  ];
}
