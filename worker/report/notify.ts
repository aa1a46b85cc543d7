/**
 * Notifications of a deployment's end to people: Slack, Discord, or any URL as a signed Standard
 * Webhooks event. `notifySetup` reads the worker's secrets (cheap: the DO calls it when it starts),
 * `notifyRequest` builds one target's request, `sendNotification` sends it and says how it went.
 * Runtime-neutral: fetch, TextEncoder and pure JavaScript only, so it runs in workerd and in Node.
 *
 * A webhook URL is a secret (whoever has a Slack or Discord webhook URL can post to the channel): no
 * message here ever contains one; logs and the API get the target's `label` instead.
 */
import { assertNever } from "../../shared/assert-never.ts";
import { type SendOutcome, sendRequest } from "./outcome.ts";
import { discordBody } from "./notify-discord.ts";
import { slackBody } from "./notify-slack.ts";
import { secretProblem, signStandardWebhook, standardEvent } from "./notify-standard.ts";
import type { DeploymentReport } from "./notify-text.ts";

export type { DeploymentReport } from "./notify-text.ts";

export interface NotifyVars {
  NOTIFY_URLS?: string;
  NOTIFY_SECRET?: string;
  NOTIFY_ON?: string;
}

export interface NotifyTarget {
  kind: "slack" | "discord" | "standard";
  url: string;
  /** For logs and the API: scheme + host + "/…", never the secret-bearing path. */
  label: string;
}

export type NotifySetup =
  | { state: "off"; why: string }
  | { state: "broken"; why: string }
  | { state: "on"; targets: NotifyTarget[]; on: "all" | "failure"; secret: string | null };

export const MAX_NOTIFY_TARGETS = 10;
export const MAX_NOTIFY_URL_LENGTH = 2048;
/** A receiver that does not answer within this long is retried later; the alarm pass has other reports to send. */
export const NOTIFY_TIMEOUT_MS = 10_000;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** One NOTIFY_URLS entry → a target, or why not (never quoting the URL). */
function parseTarget(entry: string): NotifyTarget | string {
  const prefix = /^(slack|discord):(?!\/\/)/i.exec(entry);
  const rest = prefix ? entry.slice(prefix[0].length).trim() : entry;
  if (rest.length > MAX_NOTIFY_URL_LENGTH) return `longer than ${MAX_NOTIFY_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(rest);
  } catch {
    return prefix ? `not a URL after "${prefix[1]?.toLowerCase()}:"` : 'not a URL (write "slack:<url>", "discord:<url>" or an https URL)';
  }
  const loopback = LOOPBACK.has(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    return "must be an https URL (http only to 127.0.0.1, localhost or [::1], for local testing)";
  }
  if (url.username !== "" || url.password !== "") return "must not hold a user name or password";
  const kind = prefix ? (prefix[1]?.toLowerCase() === "slack" ? "slack" : "discord") : kindOf(url);
  return { kind, url: url.href, label: `${url.protocol}//${url.host}/…` };
}

function kindOf(url: URL): NotifyTarget["kind"] {
  if (url.hostname === "hooks.slack.com") return "slack";
  const discordHost = /^(?:(?:ptb|canary)\.)?discord(?:app)?\.com$/.test(url.hostname);
  if (discordHost && url.pathname.startsWith("/api/webhooks/")) return "discord";
  return "standard";
}

export function notifySetup(vars: NotifyVars): NotifySetup {
  const entries = (vars.NOTIFY_URLS ?? "")
    .split(/[\n,]/)
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (entries.length === 0) return { state: "off", why: "notifications are off: set NOTIFY_URLS to turn them on" };
  if (entries.length > MAX_NOTIFY_TARGETS) return { state: "broken", why: `NOTIFY_URLS: at most ${MAX_NOTIFY_TARGETS} URLs (it has ${entries.length})` };
  const targets: NotifyTarget[] = [];
  for (const [i, entry] of entries.entries()) {
    const t = parseTarget(entry);
    if (typeof t === "string") return { state: "broken", why: `NOTIFY_URLS entry ${i + 1}: ${t}` };
    const same = targets.findIndex((o) => o.url === t.url);
    if (same >= 0) return { state: "broken", why: `NOTIFY_URLS entry ${i + 1}: the same URL as entry ${same + 1}` };
    targets.push(t);
  }
  const onText = (vars.NOTIFY_ON ?? "").trim().toLowerCase();
  if (onText !== "" && onText !== "all" && onText !== "failure") return { state: "broken", why: 'NOTIFY_ON must be "all" or "failure"' };
  const on = onText === "failure" ? "failure" : "all";
  const secret = (vars.NOTIFY_SECRET ?? "").trim();
  if (secret !== "") {
    const problem = secretProblem(secret);
    if (problem !== null) return { state: "broken", why: `NOTIFY_SECRET ${problem}` };
  }
  const unsigned = targets.findIndex((t) => t.kind === "standard");
  if (unsigned >= 0 && secret === "") {
    // Fail closed: a generic receiver must be able to tell our events from anyone's.
    return { state: "broken", why: `NOTIFY_SECRET is not set: NOTIFY_URLS entry ${unsigned + 1} is a generic webhook, and those are only sent signed` };
  }
  return { state: "on", targets, on, secret: secret === "" ? null : secret };
}

/** The outbox row's id as a `webhook-id`: the same on every retry, so a receiver can drop a repeat. */
const ID_PATTERN = /^[A-Za-z0-9_:-]{1,200}$/;

export interface NotifyRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The request for one target. `id` stays the same on every retry of one report; `now` (ms) is this attempt's time. */
export async function notifyRequest(t: NotifyTarget, r: DeploymentReport, secret: string | null, id: string, now: number): Promise<NotifyRequest> {
  const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "hookrelay" };
  switch (t.kind) {
    case "slack":
      return { url: t.url, headers, body: JSON.stringify(slackBody(r)) };
    case "discord":
      return { url: t.url, headers, body: JSON.stringify(discordBody(r)) };
    case "standard": {
      if (secret === null) throw new TypeError("[hookrelay/notify] a generic webhook needs NOTIFY_SECRET: notifySetup never lets one through without it");
      if (!ID_PATTERN.test(id)) throw new TypeError("[hookrelay/notify] webhook-id must be 1-200 letters, digits, '_', ':' or '-'");
      const body = JSON.stringify(standardEvent(r));
      const seconds = Math.floor(now / 1000);
      headers["webhook-id"] = id;
      headers["webhook-timestamp"] = String(seconds);
      headers["webhook-signature"] = signStandardWebhook(secret, id, seconds, body);
      return { url: t.url, headers, body };
    }
    default:
      return assertNever(t.kind);
  }
}

/**
 * POSTs one notification. Redirects are not followed (a signed body goes only where it was configured
 * to); errors name `label`, and any trace of the URL in them is replaced by it.
 */
export async function sendNotification(req: NotifyRequest, now: number, label: string, timeoutMs = NOTIFY_TIMEOUT_MS): Promise<SendOutcome> {
  const outcome = await sendRequest(req.url, { method: "POST", headers: req.headers, body: req.body, redirect: "manual" }, timeoutMs, now, `notification to ${label}`);
  if (outcome.kind === "sent") return outcome;
  return { ...outcome, error: redact(outcome.error, req.url, label) };
}

function redact(text: string, url: string, label: string): string {
  const { pathname, search } = new URL(url);
  let out = text.split(url).join(label);
  for (const secretPart of [pathname + search, pathname]) {
    if (secretPart.length > 1) out = out.split(secretPart).join("/…");
  }
  return out;
}
