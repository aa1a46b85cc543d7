/**
 * What a deployment notification says, before any chat's markup: the report's shape, the status line,
 * and which host failed at which step. Runtime-neutral (workerd and Node).
 */

/**
 * One deployment's end — or its stop at a gate (`deployment.waiting`: it waits for a person's approval;
 * `deployment.blocked`: a gate failed, was rejected or timed out) — as the outbox froze it. Every string
 * in it is untrusted text from a push, a config, a CI run or a person's note.
 */
export interface DeploymentReport {
  type: "deployment.succeeded" | "deployment.failed" | "deployment.canceled" | "deployment.waiting" | "deployment.blocked";
  target: string;
  deployment: string;
  pipeline: string;
  repo: string;
  ref: string;
  sha: string;
  pusher: string;
  message: string;
  status: string;
  /** The deployment's dashboard page, when PUBLIC_URL is set. */
  url: string | null;
  hosts: { agent: string; status: string; failedStep: string | null }[];
  /** ms epoch of the deployment's end (or of its stop at the gate) */
  at: number;
  /**
   * Why it stopped at a gate: blocked → the reason ("CI concluded failure — <run url>", "rejected: <note>",
   * "CI did not finish within 2h"); waiting → "waiting for approval"; otherwise null. Untrusted: it can
   * hold a run's URL and a person's note. Optional only so that reports queued before gates existed
   * (and their writer, until it sets it) still read; absent is null.
   */
  reason?: string | null;
}

export type ReportHost = DeploymentReport["hosts"][number];

const ICONS: Record<DeploymentReport["type"], string> = {
  "deployment.succeeded": "✅",
  "deployment.failed": "❌",
  "deployment.canceled": "⚪",
  "deployment.waiting": "⏸",
  "deployment.blocked": "⛔",
};

/**
 * "❌ web deploy failed", "⏸ web deploy waits for approval", "⛔ web deploy blocked" — the headline every
 * body starts with. It never holds the reason (untrusted text): each body adds `blockedReason(r)`,
 * escaped for its own markup.
 */
export function headline(r: DeploymentReport): string {
  switch (r.type) {
    case "deployment.waiting":
      return `${ICONS[r.type]} ${r.pipeline} deploy waits for approval`;
    case "deployment.blocked":
      return `${ICONS[r.type]} ${r.pipeline} deploy blocked`;
    default:
      return `${ICONS[r.type]} ${r.pipeline} deploy ${r.status}`;
  }
}

/** A blocked deployment's reason, trimmed; null for other types, or when it has none. Not escaped. */
export function blockedReason(r: DeploymentReport): string | null {
  if (r.type !== "deployment.blocked") return null;
  const reason = (r.reason ?? "").trim();
  return reason === "" ? null : reason;
}

/** Whether the deployment stopped at a gate (nothing ran on any host). */
export function atGate(r: DeploymentReport): boolean {
  return r.type === "deployment.waiting" || r.type === "deployment.blocked";
}

/** What went wrong on one host: "failed" at a step, "timed out" at a step, "interrupted"; null if nothing did. */
export function hostTrouble(h: ReportHost): { agent: string; what: string; step: string | null } | null {
  switch (h.status) {
    case "failed":
      return { agent: h.agent, what: "failed", step: h.failedStep };
    case "timed_out":
      return { agent: h.agent, what: "timed out", step: h.failedStep };
    case "interrupted":
      return { agent: h.agent, what: "interrupted", step: null };
    default:
      return null;
  }
}

export type HostTrouble = NonNullable<ReturnType<typeof hostTrouble>>;

export function troubles(r: DeploymentReport): HostTrouble[] {
  return r.hosts.map(hostTrouble).filter((t): t is HostTrouble => t !== null);
}

/** "web-2 failed at migrate", "web-3 timed out at install", "web-1 interrupted". */
export function troubleText(t: HostTrouble): string {
  return `${t.agent} ${t.what}${t.step !== null ? ` at ${t.step}` : ""}`;
}

/** "2/3 hosts deployed"; at a gate, where nothing ran: "3 hosts waiting", "none of 3 hosts deployed" (no hosts: "no host started", "nothing deployed"). */
export function hostCount(r: DeploymentReport): string {
  const n = r.hosts.length;
  const hosts = `host${n === 1 ? "" : "s"}`;
  if (r.type === "deployment.waiting") return n === 0 ? "no host started" : `${n} ${hosts} waiting`;
  if (r.type === "deployment.blocked") return n === 0 ? "nothing deployed" : `none of ${n} ${hosts} deployed`;
  const done = r.hosts.filter((h) => h.status === "succeeded").length;
  return `${done}/${n} ${hosts} deployed`;
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

export function commitUrl(r: DeploymentReport): string {
  return `https://github.com/${r.repo}/commit/${r.sha}`;
}

/** The branch name without refs/heads/. */
export function branch(ref: string): string {
  return ref.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : ref;
}

/**
 * At most `max` UTF-16 code units, ending in "…" when cut, never splitting a surrogate pair. Code units,
 * not code points: each service counts one or the other, and code units are never fewer.
 */
export function cutTo(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

/** Joins lines, keeping as many whole ones as fit in `max` and saying how many were left out. */
export function joinWithin(lines: string[], max: number, sep = "\n"): string {
  let out = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const next = out === "" ? line : `${out}${sep}${line}`;
    const rest = lines.length - i - 1;
    const more = rest > 0 ? `${sep}…and ${rest} more` : "";
    // Keep room for the "…and N more" line whenever lines remain after this one.
    if (next.length + more.length > max) {
      const left = `${out === "" ? "" : sep}…and ${lines.length - i} more`;
      return out.length + left.length <= max ? `${out}${left}` : cutTo(out, max);
    }
    out = next;
  }
  return out;
}

/** `text` escaped by `escape`, at most `max` code units, cut between characters (never inside an escape) with "…". */
export function escapeWithin(text: string, max: number, escape: (s: string) => string): string {
  const escaped = escape(text);
  if (escaped.length <= max) return escaped;
  let out = "";
  for (const ch of text) {
    const next = escape(ch);
    if (out.length + next.length > max - 1) break;
    out += next;
  }
  return `${out}…`;
}

/** An http(s) URL as given, or null: a link a chat would refuse is better left out. */
export function httpUrl(url: string | null): string | null {
  if (url === null) return null;
  try {
    const u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch {
    return null;
  }
}
