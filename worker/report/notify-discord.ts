/**
 * The Discord webhook body: a one-line `content` and one embed. `allowed_mentions: {parse: []}` means
 * nothing in it pings anyone, whatever a commit message says (@everyone, <@id>); markdown characters in
 * untrusted values are backslash-escaped so they show as written — a blocked deployment's reason (a run's
 * URL, a person's note) as a commit message is.
 * Limits (Discord): content ≤ 2000, embed title ≤ 256, description ≤ 4096, ≤ 25 fields with name ≤ 256
 * and value ≤ 1024, footer ≤ 2048, and all of an embed's text together ≤ 6000.
 */
import { blockedReason, branch, commitUrl, cutTo, type DeploymentReport, escapeWithin, headline, hostCount, httpUrl, joinWithin, shortSha, troubleText, troubles } from "./notify-text.ts";

export const DISCORD_LIMITS = { content: 2000, title: 256, description: 4096, fields: 25, fieldName: 256, fieldValue: 1024, footer: 2048, embedTotal: 6000 } as const;

/** A backslash before each character Discord's markdown (or a mention) would act on. */
export function discordEscape(text: string): string {
  return text.replace(/[\\*_~`|<>#\-[\]()@]/g, (c) => `\\${c}`);
}

const esc = (text: string, max: number) => escapeWithin(text, max, discordEscape);

const COLORS: Record<DeploymentReport["type"], number> = {
  "deployment.succeeded": 0x2ea043,
  "deployment.failed": 0xd1242f,
  "deployment.canceled": 0x8c959f,
  // GitHub's "attention" yellow and "severe" orange: a pause, and a stop that is not a failed step.
  "deployment.waiting": 0xbf8700,
  "deployment.blocked": 0xbc4c00,
};

interface Field {
  name: string;
  value: string;
  inline?: boolean;
}

export function discordBody(r: DeploymentReport): unknown {
  const failed = troubles(r).map(troubleText);
  const reason = blockedReason(r);
  const url = httpUrl(r.url);
  const title = cutTo(headline(r), DISCORD_LIMITS.title);
  const push = `${r.repo}@${shortSha(r.sha)} by ${r.pusher}`;
  const summary =
    reason !== null
      ? `${headline(r)}: ${cutTo(reason, 1000)} — ${push}`
      : `${headline(r)}: ${push}${failed.length > 0 ? ` — ${failed.join(", ")}` : ""}`;
  const fields: Field[] = [];
  if (reason !== null) fields.push({ name: "Why it is blocked", value: esc(reason, DISCORD_LIMITS.fieldValue) });
  if (r.type === "deployment.waiting") {
    // Our own URL as a markdown link (a parenthesis in it would end the link: percent-encoded); the title links it too.
    const target = url?.replace(/[()]/g, (c) => encodeURIComponent(c)) ?? null;
    fields.push({ name: "Waiting for approval", value: `Nothing runs on any host until a person decides. ${target !== null ? `[Approve or reject it](${target})` : "Approve or reject it on the dashboard"}.` });
  }
  fields.push(
    { name: "Repository", value: esc(r.repo, 256), inline: true },
    { name: "Commit", value: `[${shortSha(r.sha)}](${commitUrl(r)}) on ${esc(branch(r.ref), 256)}`, inline: true },
    { name: "Pushed by", value: esc(r.pusher, 256), inline: true },
    { name: "Hosts", value: hostCount(r) },
  );
  if (failed.length > 0) fields.push({ name: "What failed", value: joinWithin(failed.map((f) => discordEscape(f)), DISCORD_LIMITS.fieldValue) });
  // The footer is not markdown: plain, and short.
  const footer = cutTo(`${r.target} · deployment ${r.deployment}`, 256);
  const used = title.length + footer.length + fields.reduce((n, f) => n + f.name.length + f.value.length, 0);
  const message = r.message.trim();
  const room = Math.min(DISCORD_LIMITS.description, DISCORD_LIMITS.embedTotal - used);
  const embed: Record<string, unknown> = {
    title,
    color: COLORS[r.type],
    fields,
    footer: { text: footer },
    timestamp: new Date(r.at).toISOString(),
  };
  if (url !== null) embed.url = url;
  if (message !== "" && room > 1) embed.description = esc(message, room);
  return {
    content: esc(summary, DISCORD_LIMITS.content),
    embeds: [embed],
    allowed_mentions: { parse: [] },
  };
}
