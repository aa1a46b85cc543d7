/**
 * The Slack incoming-webhook body: `text` (what the notification and old clients show) and Block Kit
 * `blocks`. Every untrusted value is escaped for Slack's control characters (&, <, >), so a commit
 * message cannot write `<!channel>` or a link; mrkdwn objects are `verbatim` so Slack does not
 * auto-link names either; names sit in inline code and the commit message in a code block, where
 * *bold* and _italics_ stay text.
 * Limits (Block Kit): header ≤ 150 characters, section text ≤ 3000, ≤ 10 fields of ≤ 2000, ≤ 50 blocks.
 */
import { branch, commitUrl, cutTo, escapeWithin, httpUrl, type DeploymentReport, headline, type HostTrouble, hostCount, joinWithin, shortSha, troubleText, troubles } from "./notify-text.ts";

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

const troubleLine = (t: HostTrouble) => `• ${code(t.agent)} ${t.what}${t.step !== null ? ` at ${code(t.step)}` : ""}`;

export function slackBody(r: DeploymentReport): { text: string; blocks: unknown[] } {
  const failed = troubles(r);
  const title = headline(r);
  const summary = `${title}: ${r.repo}@${shortSha(r.sha)} by ${r.pusher}${failed.length > 0 ? ` — ${failed.map(troubleText).join(", ")}` : ""}`;
  const blocks: unknown[] = [
    { type: "header", text: { type: "plain_text", text: cutTo(title, 150), emoji: true } },
    {
      type: "section",
      fields: [
        mrkdwn(`*Repository*\n${code(r.repo)}`),
        mrkdwn(`*Commit*\n${link(commitUrl(r), slackEscape(shortSha(r.sha)))} on ${code(branch(r.ref))}`),
        mrkdwn(`*Pushed by*\n${code(r.pusher)}`),
        mrkdwn(`*Hosts*\n${hostCount(r)}`),
      ],
    },
  ];
  if (failed.length > 0) blocks.push({ type: "section", text: mrkdwn(joinWithin(["*What failed*", ...failed.map(troubleLine)], 3000)) });
  const message = r.message.trim();
  if (message !== "") {
    // Backticks next to each other (or to the fences) would close the code block early: a zero-width space after each keeps them apart.
    const inner = `\u200b${message.replace(/`/g, "`\u200b")}`;
    blocks.push({ type: "section", text: mrkdwn(`\`\`\`${slackEscapeWithin(inner, 2990)}\`\`\``) });
  }
  const context = [mrkdwn(`${code(r.target)} · deployment ${code(r.deployment)}`)];
  const url = httpUrl(r.url);
  if (url !== null) context.push(mrkdwn(link(url, "Open the deployment")));
  blocks.push({ type: "context", elements: context });
  return { text: slackEscapeWithin(summary, 3000), blocks };
}
