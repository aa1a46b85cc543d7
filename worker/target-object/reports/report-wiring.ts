/**
 * From the worker's secrets and vars to the outbox's channels: the setup the DO records (report-outbox.ts)
 * and a sender per channel (report-sending.ts). Missing or partial configuration turns a channel off,
 * saying why (naming the secret, never its value) — never a crash.
 */
import { toHex } from "../../../shared/encoding.ts";
import { positiveNumber } from "../../env-number.ts";
import { gitHubSetup, type GitHubVars } from "../../report/github.ts";
import { notifyRequest, notifySetup, type NotifyTarget, type NotifyVars, sendNotification } from "../../report/notify.ts";
import type { ReportSetup } from "./report-outbox.ts";
import type { ReportBody } from "./report-record.ts";
import type { ChannelSender, SenderFor } from "./report-sending.ts";

export interface ReportVars extends GitHubVars, NotifyVars {
  PUBLIC_URL?: string;
  /** The first retry's wait in seconds (doubling, at most an hour); default 30. */
  REPORT_RETRY_SECONDS?: string;
}

const DEFAULT_RETRY_SECONDS = 30;

/** PUBLIC_URL without a trailing slash, when it is an http(s) URL; else null. */
export function publicUrl(value: string | undefined): string | null {
  if (value === undefined || value.trim() === "") return null;
  try {
    const url = new URL(value.trim());
    if (url.protocol !== "https:" && url.protocol !== "http:") return null;
    return url.href.replace(/\/+$/, "");
  } catch {
    return null;
  }
}

export interface ReportWiring {
  setup: ReportSetup;
  senderFor: SenderFor;
  backoffMs: number;
}

/**
 * A notification target's channel: `notify:` + the first 16 hex digits of the SHA-256 of its URL.
 * Keyed by the URL, not its place in NOTIFY_URLS, so a retry queued before the list was reordered or
 * shortened goes to the URL it was queued for, or nowhere (report-sending.ts drops it). The hash of a
 * URL whose path is a secret does not give the secret away.
 */
export async function notifyChannel(url: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url)));
  return `notify:${toHex(digest.subarray(0, 8))}`;
}

/** Async for the channels' digests: the DO builds it in `blockConcurrencyWhile`, before any event. */
export async function reportWiring(env: ReportVars, target: string): Promise<ReportWiring> {
  const gh = gitHubSetup(env);
  const notify = notifySetup(env);
  const base = publicUrl(env.PUBLIC_URL);
  const link = (path: string) => (base === null ? null : `${base}${path}`);
  const targets: NotifyTarget[] = notify.state === "on" ? notify.targets : [];
  const channels = await Promise.all(targets.map((t) => notifyChannel(t.url)));
  const setup: ReportSetup = {
    target,
    github: gh.state === "on" ? { state: "on", why: null } : { state: gh.state, why: gh.why },
    notify:
      notify.state === "on"
        ? { state: "on", why: null, on: notify.on, targets: targets.map((t, i) => ({ channel: channels[i]!, label: t.label })) }
        : { state: notify.state, why: notify.why, on: "all", targets: [] },
    publicUrl: base,
  };

  const github: ChannelSender | null =
    gh.state !== "on"
      ? null
      : {
          // An earlier attempt (row.attempts > 0) may have reached GitHub though its answer was lost
          // (a timeout, a worker stopped mid-send): look first, so GitHub gets each deployment and status once.
          async send(body: ReportBody, row, githubId, now) {
            switch (body.kind) {
              case "github-deployment": {
                const d = { sha: body.sha, environment: body.environment, description: body.description, production: body.production, transient: body.transient, payload: { target: body.target, deployment: body.deployment } };
                return (row.attempts > 0 ? await gh.client.findDeployment(body.repo, d, now) : null) ?? gh.client.createDeployment(body.repo, d, now);
              }
              case "github-status": {
                const s = { state: body.state, description: body.description, logUrl: link(body.path), environmentUrl: body.environmentUrl, environment: body.environment };
                return (row.attempts > 0 ? await gh.client.findStatus(body.repo, githubId ?? 0, s, now) : null) ?? gh.client.createStatus(body.repo, githubId ?? 0, s, now);
              }
              default:
                return Promise.resolve({ kind: "fail", error: `a ${body.kind} report on the github channel` });
            }
          },
        };

  const notifier = (t: NotifyTarget): ChannelSender => ({
    async send(body, row, _githubId, now) {
      if (body.kind !== "notify") return { kind: "fail", error: `a ${body.kind} report on a notification channel` };
      const { kind: _kind, path, ...report } = body;
      // webhook-id: the same on every retry of this row, so a receiver can drop a repeat.
      const request = await notifyRequest(t, { ...report, url: link(path) }, notify.state === "on" ? notify.secret : null, `msg_${row.deployment_id}_${row.id}`, now);
      return sendNotification(request, now, t.label);
    },
  });
  const byChannel = new Map<string, ChannelSender>(targets.map((t, i) => [channels[i]!, notifier(t)]));

  const backoffMs = positiveNumber(env.REPORT_RETRY_SECONDS, DEFAULT_RETRY_SECONDS) * 1000;
  return { setup, senderFor: (channel) => (channel === "github" ? github : (byChannel.get(channel) ?? null)), backoffMs };
}
