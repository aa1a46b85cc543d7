/**
 * The Slack incoming-webhook body: `text` (what the notification and old clients show) and Block Kit
 * `blocks`. Every untrusted value is escaped for Slack's control characters (&, <, >), so a commit
 * message cannot write `<!channel>` or a link; mrkdwn objects are `verbatim` so Slack does not
 * auto-link names either; names sit in inline code and the commit message in a code block, where
 * *bold* and _italics_ stay text. A blocked deployment's reason (a run's URL, a person's note) is treated
 * like a commit message: escaped, in a code block.
 * Limits (Block Kit): header ≤ 150 characters, section text ≤ 3000, ≤ 10 fields of ≤ 2000, ≤ 50 blocks.
 */
import { blockedReason, branch, commitUrl, cutTo, escapeWithin, httpUrl, type DeploymentReport, headline, type HostTrouble, hostCount, joinWithin, shortSha, troubleText, troubles } from "./notify-text.ts";

/** Slack's three control characters as the entities Slack decodes for display. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Escaped, and at most `max` code units long. */
export function slackEscapeWithin(text: string, max: number): string {
  return escapeWithin(text, max, slackEscape);
}

/** `value` as inline code: escaped, and a backtick in it (which would end the code span) made a look-alike. */
function code(value: string, max = 200): string {
  return `\`${slackEscapeWithin(value.replace(/`/g, "ˋ"), max)}\``;
}

/** <url|label>: our own URLs, with the characters that would end the link percent-encoded. */
function link(url: string, label: string): string {
  const safe = url.replace(/[<>|]/g, (c) => encodeURIComponent(c)).replace(/&/g, "&amp;");
  return `<${safe}|${label}>`;
}

const mrkdwn = (text: string) => ({ type: "mrkdwn", text, verbatim: true });

/**
 * Untrusted multi-line text as a code block: escaped, and at most `max` code units. Backticks next to each
 * other (or to the fences) would close the block early: a zero-width space after each keeps them apart.
 */
function codeBlock(text: string, max: number): string {
  const inner = `\u200b${text.replace(/`/g, "`\u200b")}`;
  return `\`\`\`${slackEscapeWithin(inner, max)}\`\`\``;
}

const troubleLine = (t: HostTrouble) => `• ${code(t.agent)} ${t.what}${t.step !== null ? ` at ${code(t.step)}` : ""}`;

export function slackBody(r: DeploymentReport): { text: string; blocks: unknown[] } {
  const failed = troubles(r);
  const title = headline(r);
  const reason = blockedReason(r);
  const url = httpUrl(r.url);
  const push = `${r.repo}@${shortSha(r.sha)} by ${r.pusher}`;
  const summary =
    reason !== null
      ? `${title}: ${cutTo(reason, 1000)} — ${push}`
      : `${title}: ${push}${failed.length > 0 ? ` — ${failed.map(troubleText).join(", ")}` : ""}`;
  const blocks: unknown[] = [{ type: "header", text: { type: "plain_text", text: cutTo(title, 150), emoji: true } }];
  if (reason !== null) blocks.push({ type: "section", text: mrkdwn(`*Why it is blocked*\n${codeBlock(reason, 2900)}`) });
  if (r.type === "deployment.waiting") {
    const where = url !== null ? link(url, "Approve or reject it") : "Approve or reject it on the dashboard";
    blocks.push({ type: "section", text: mrkdwn(`*Waiting for approval*: nothing runs on any host until a person decides. ${where}.`) });
  }
  blocks.push(
    {
      type: "section",
      fields: [
        mrkdwn(`*Repository*\n${code(r.repo)}`),
        mrkdwn(`*Commit*\n${link(commitUrl(r), slackEscape(shortSha(r.sha)))} on ${code(branch(r.ref))}`),
        mrkdwn(`*Pushed by*\n${code(r.pusher)}`),
        mrkdwn(`*Hosts*\n${hostCount(r)}`),
      ],
    },
  );
  if (failed.length > 0) blocks.push({ type: "section", text: mrkdwn(joinWithin(["*What failed*", ...failed.map(troubleLine)], 3000)) });
  const message = r.message.trim();
  if (message !== "") blocks.push({ type: "section", text: mrkdwn(codeBlock(message, 2990)) });
  const context = [mrkdwn(`${code(r.target)} · deployment ${code(r.deployment)}`)];
  if (url !== null) context.push(mrkdwn(link(url, "Open the deployment")));
  blocks.push({ type: "context", elements: context });
  return { text: slackEscapeWithin(summary, 3000), blocks };
}
