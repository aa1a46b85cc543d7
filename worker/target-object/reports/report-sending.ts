/**
 * The alarm's outbox pass: sends the reports that are due (report-outbox.ts), one at a time in id order per
 * deployment and channel, within a time budget, and records each outcome. Each row is leased before its attempt, so a
 * second pass cannot send it meanwhile; a crash between a 2xx and its record sends that one row again
 * (the one at-least-once window, a few milliseconds wide).
 */
import { errorMessage } from "../../../shared/errors.ts";
import type { SendOutcome } from "../../report/outcome.ts";
import { formatDuration } from "../../duration-text.ts";
import { dueReports, githubDeploymentId, leaseReport, recordOutcome } from "./report-outbox.ts";
import type { ReportBody, ReportRow } from "./report-record.ts";
import { parseReportBody } from "./report-body.ts";
import { logError, logInfo, logWarn } from "../../console-lines.ts";

/** Sends one report on its channel. `githubId`: the GitHub deployment its statuses belong to. */
export interface ChannelSender {
  send(body: ReportBody, row: ReportRow, githubId: number | null, now: number): Promise<SendOutcome>;
}

/** The sender for a channel as the worker is configured now; null when that channel is not (any more). */
export type SenderFor = (channel: string) => ChannelSender | null;

/** At most this many attempts per alarm pass; the alarm comes back at once for the rest. */
const MAX_SENDS_PER_PASS = 50;
/**
 * No send starts once a pass has spent this long sending: the alarm, re-derived to "now" while reports
 * are due, comes back at once — running deadlines and the dispatch net first — for the rest. A pass so
 * lasts at most this plus one send (its timeout: 15 s a call, a GitHub App send up to three calls).
 */
export const PASS_BUDGET_MS = 3_000;

export async function sendDueReports(sql: SqlStorage, senderFor: SenderFor, backoffMs: number, clock: () => number = Date.now): Promise<number> {
  const started = clock();
  let sent = 0;
  while (sent < MAX_SENDS_PER_PASS) {
    const rows = dueReports(sql, clock(), MAX_SENDS_PER_PASS - sent);
    if (rows.length === 0) break;
    for (const row of rows) {
      if (clock() - started >= PASS_BUDGET_MS) return sent;
      // Leased one at a time, just before its attempt: a row left for the next pass stays due.
      leaseReport(sql, row.id, clock());
      await attempt(sql, row, senderFor, backoffMs, clock);
      sent += 1;
    }
  }
  return sent;
}

async function attempt(sql: SqlStorage, row: ReportRow, senderFor: SenderFor, backoffMs: number, clock: () => number): Promise<void> {
  let body: ReportBody;
  try {
    body = parseReportBody(row);
  } catch (e) {
    // A row no code version can read must not wedge the outbox (the alarm would throw on it forever).
    recordOutcome(sql, row, { kind: "fail", error: `unreadable report: ${errorMessage(e)}` }, clock(), backoffMs);
    logError(`[deployment ${row.deployment_id}] report ${row.id}: unreadable, failed: ${errorMessage(e)}`);
    return;
  }
  const sender = senderFor(row.channel);
  const githubId = githubDeploymentId(sql, row.deployment_id);
  let outcome: SendOutcome;
  if (sender === null) {
    // Dropped, never sent elsewhere: its URL left NOTIFY_URLS, or the row predates channels keyed by
    // URL (`notify:<position>`, 0-9: at most 10 entries), whose URL can no longer be told.
    const byPosition = /^notify:\d$/.test(row.channel);
    outcome = { kind: "fail", error: byPosition
      ? `channel ${row.channel} was keyed by its position in NOTIFY_URLS before an upgrade; dropped, its URL can no longer be told`
      : `channel ${row.channel} is not configured any more` };
  } else if (body.kind === "github-status" && githubId === null) {
    outcome = { kind: "fail", error: "the GitHub deployment was never created (see the report before this one)" };
  } else {
    try {
      outcome = await sender.send(body, row, githubId, clock());
    } catch (e) {
      outcome = { kind: "retry", error: errorMessage(e), notBefore: null };
    }
  }
  const now = clock();
  const result = recordOutcome(sql, row, outcome, now, backoffMs);
  const what = `[deployment ${row.deployment_id}] report ${row.id} (${row.channel} ${body.kind}${body.kind === "github-status" ? ` ${body.state}` : ""})`;
  switch (result.state) {
    case "sent":
      logInfo(`${what}: sent`);
      break;
    case "retrying":
      logWarn(`${what}: attempt ${row.attempts + 1} failed, retrying in ${formatDuration(Math.ceil(Math.max(0, (result.nextAt ?? now) - now) / 1000) * 1000)}: ${outcome.kind === "sent" ? "" : outcome.error}`);
      break;
    case "given_up":
    case "failed":
      logWarn(`${what}: ${result.state === "given_up" ? "given up" : sender === null ? "dropped" : "failed"}: ${outcome.kind === "sent" ? "" : outcome.error}`);
      break;
  }
}
