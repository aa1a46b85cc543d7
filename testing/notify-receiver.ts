/**
 * For tests: a real HTTP server on 127.0.0.1 (a free port) standing in for the places notifications go,
 * enforcing what each one enforces. By path:
 * - `/slack/…`: Slack's incoming webhook — `text`, and Block Kit's shapes and limits (else 400, like Slack);
 * - `/discord/…`: Discord's webhook — content/embeds within Discord's limits (else 400, like Discord);
 * - anything else: a Standard Webhooks receiver, verifying the signature with the `standardwebhooks`
 *   package's `Webhook.verify` (not hookrelay's code): a bad one is a 401.
 * Records every request (path, headers, raw body) and can be told to fail the next N (500, or 429 with
 * retry-after, or any status).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export type ReceiverKind = "slack" | "discord" | "standard";

export interface ReceivedNotification {
  method: string;
  path: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The raw body, as received. */
  body: string;
  kind: ReceiverKind;
  /** What the real service (or a Standard Webhooks verifier) would object to; [] when nothing. */
  problems: string[];
  /** A standard notification's event, as `Webhook.verify` returned it; null unless it verified. */
  event: unknown;
  /** The status it was answered with. */
  status: number;
}

export interface Failure {
  /** 0: never answer (a receiver that hangs; the connection stays open until close()). */
  status: number;
  /** Sent as retry-after (seconds). */
  retryAfter?: number;
  /** Sent as location (for a redirect). */
  location?: string;
}

export interface NotifyReceiver {
  /** http://127.0.0.1:<port> */
  url: string;
  slackUrl(name?: string): string;
  discordUrl(name?: string): string;
  standardUrl(name?: string): string;
  received: ReceivedNotification[];
  /** Answer the next `count` requests with `failure` (recorded, not checked). */
  failNext(count: number, failure: Failure): void;
  /** Drops the failures not yet used: every request from now on is answered on its merits. */
  stopFailing(): void;
  /** Resolves once `count` requests have been received (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedNotification[]>;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;

export async function startNotifyReceiver(options: { secret?: string } = {}): Promise<NotifyReceiver> {
  const failures: Failure[] = [];
  const waiters = new Set<() => void>();
  const received: ReceivedNotification[] = [];

  const server = createServer((req, res) => {
    void take(req, res).catch((e: unknown) => {
      res.writeHead(500).end(String(e));
    });
  });

  async function take(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > MAX_BODY) {
        res.writeHead(413).end();
        return;
      }
      chunks.push(b);
    }
    const body = Buffer.concat(chunks).toString("utf8");
    const path = req.url ?? "/";
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    const kind: ReceiverKind = path.startsWith("/slack/") ? "slack" : path.startsWith("/discord/") ? "discord" : "standard";
    const record: ReceivedNotification = { method: req.method ?? "", path, headers, body, kind, problems: [], event: null, status: 0 };
    const failure = failures.shift();
    if (failure?.status === 0) {
      // Hang: recorded, never answered.
    } else if (failure) {
      record.status = failure.status;
      const extra: Record<string, string> = {};
      if (failure.retryAfter !== undefined) extra["retry-after"] = String(failure.retryAfter);
      if (failure.location !== undefined) extra.location = failure.location;
      res.writeHead(failure.status, { "content-type": "text/plain", ...extra }).end(`programmed failure ${failure.status} for POST ${path}`); // echoes the path, as many servers do: the sender must not repeat it
    } else {
      answer(record, res);
    }
    received.push(record);
    for (const wake of waiters) wake();
  }

  function answer(record: ReceivedNotification, res: ServerResponse): void {
    if (record.method !== "POST") record.problems.push(`method ${record.method}, not POST`);
    if (!/^application\/json\b/.test(record.headers["content-type"] ?? "")) record.problems.push("content-type is not application/json");
    if (record.kind === "standard") {
      if (options.secret === undefined) record.problems.push("the receiver has no secret to verify with");
      else {
        try {
          record.event = new Webhook(options.secret).verify(record.body, record.headers);
        } catch (e) {
          record.problems.push(`Webhook.verify: ${e instanceof Error ? e.message : String(e)}`);
          record.status = 401;
          res.writeHead(401, { "content-type": "text/plain" }).end(record.problems.join("; "));
          return;
        }
      }
    } else {
      let parsed: unknown;
      try {
        parsed = JSON.parse(record.body);
      } catch {
        record.problems.push("body is not JSON");
      }
      if (record.problems.length === 0) record.problems.push(...(record.kind === "slack" ? slackProblems(parsed) : discordProblems(parsed)));
    }
    if (record.problems.length > 0) {
      record.status = 400;
      res.writeHead(400, { "content-type": "text/plain" }).end(record.problems.join("; "));
      return;
    }
    // What each service answers: Slack "ok", Discord 204 (without ?wait=true), a generic receiver 200.
    if (record.kind === "discord") {
      record.status = 204;
      res.writeHead(204).end();
    } else {
      record.status = 200;
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    }
  }

  server.listen(0, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    slackUrl: (name = "T000/B000/slacksecret") => `${url}/slack/${name}`,
    discordUrl: (name = "123/discordsecret") => `${url}/discord/${name}`,
    standardUrl: (name = "hooks/standardsecret") => `${url}/${name}`,
    received,
    failNext(count, failure) {
      for (let i = 0; i < count; i++) failures.push(failure);
    },
    stopFailing() {
      failures.length = 0;
    },
    waitFor(count, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(received.slice(0, count));
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`notify receiver: ${received.length} of ${count} requests within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---- What the services enforce -------------------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function textObjectProblems(t: unknown, where: string, max: number, only?: "plain_text"): string[] {
  if (!isObject(t)) return [`${where}: not a text object`];
  const out: string[] = [];
  if (t.type !== "plain_text" && t.type !== "mrkdwn") out.push(`${where}.type must be plain_text or mrkdwn`);
  if (only && t.type !== only) out.push(`${where}.type must be ${only}`);
  if (typeof t.text !== "string" || t.text.length < 1 || t.text.length > max) out.push(`${where}.text must be 1-${max} characters`);
  if (t.verbatim !== undefined && t.type !== "mrkdwn") out.push(`${where}.verbatim is only for mrkdwn`);
  if (t.emoji !== undefined && t.type !== "plain_text") out.push(`${where}.emoji is only for plain_text`);
  return out;
}

/** Slack's incoming webhook: `text` (we always send it: notifications and old clients show only that) and valid Block Kit. */
export function slackProblems(body: unknown): string[] {
  if (!isObject(body)) return ["body is not a JSON object"];
  const out: string[] = [];
  if (typeof body.text !== "string" || body.text.trim() === "") out.push("no_text");
  else if (body.text.length > 40_000) out.push("text longer than 40000");
  if (body.blocks === undefined) return out;
  if (!Array.isArray(body.blocks) || body.blocks.length > 50) return [...out, "invalid_blocks: blocks must be an array of at most 50"];
  body.blocks.forEach((b: unknown, i) => {
    const where = `blocks[${i}]`;
    if (!isObject(b)) return void out.push(`${where}: not an object`);
    switch (b.type) {
      case "header":
        out.push(...textObjectProblems(b.text, `${where}.text`, 150, "plain_text"));
        break;
      case "section":
        if (b.text === undefined && b.fields === undefined) out.push(`${where}: text or fields required`);
        if (b.text !== undefined) out.push(...textObjectProblems(b.text, `${where}.text`, 3000));
        if (b.fields !== undefined) {
          if (!Array.isArray(b.fields) || b.fields.length < 1 || b.fields.length > 10) out.push(`${where}.fields must be 1-10 text objects`);
          else b.fields.forEach((f: unknown, j) => out.push(...textObjectProblems(f, `${where}.fields[${j}]`, 2000)));
        }
        break;
      case "context":
        if (!Array.isArray(b.elements) || b.elements.length < 1 || b.elements.length > 10) out.push(`${where}.elements must be 1-10`);
        else b.elements.forEach((e: unknown, j) => out.push(...textObjectProblems(e, `${where}.elements[${j}]`, 3000)));
        break;
      case "divider":
        break;
      default:
        out.push(`${where}: unsupported block type ${JSON.stringify(b.type)}`);
    }
  });
  return out;
}

export const DISCORD_MAX = { content: 2000, embeds: 10, title: 256, description: 4096, fields: 25, fieldName: 256, fieldValue: 1024, footer: 2048, author: 256, total: 6000 };

/** Discord's execute-webhook checks (each a 400 "Invalid Form Body" there). Lengths in UTF-16 code units, never fewer than Discord's characters. */
export function discordProblems(body: unknown): string[] {
  if (!isObject(body)) return ["body is not a JSON object"];
  const out: string[] = [];
  const len = (v: unknown) => (typeof v === "string" ? v.length : 0);
  const content = body.content;
  if (content !== undefined && (typeof content !== "string" || content.length > DISCORD_MAX.content)) out.push(`content must be a string of at most ${DISCORD_MAX.content}`);
  const embeds = body.embeds ?? [];
  if (!Array.isArray(embeds) || embeds.length > DISCORD_MAX.embeds) return [...out, "embeds must be an array of at most 10"];
  if (len(content) === 0 && embeds.length === 0) out.push("Cannot send an empty message");
  let total = 0;
  embeds.forEach((e: unknown, i) => {
    const where = `embeds[${i}]`;
    if (!isObject(e)) return void out.push(`${where}: not an object`);
    const bounded = (v: unknown, max: number, name: string) => {
      if (v === undefined) return;
      if (typeof v !== "string" || v.length > max) out.push(`${where}.${name} must be a string of at most ${max}`);
      total += len(v);
    };
    bounded(e.title, DISCORD_MAX.title, "title");
    bounded(e.description, DISCORD_MAX.description, "description");
    if (e.footer !== undefined) bounded(isObject(e.footer) ? e.footer.text : null, DISCORD_MAX.footer, "footer.text");
    if (e.author !== undefined) bounded(isObject(e.author) ? e.author.name : null, DISCORD_MAX.author, "author.name");
    if (e.url !== undefined && (typeof e.url !== "string" || !/^https?:\/\//.test(e.url))) out.push(`${where}.url must be an http(s) URL`);
    if (e.color !== undefined && (!Number.isInteger(e.color) || (e.color as number) < 0 || (e.color as number) > 0xffffff)) out.push(`${where}.color must be 0-0xffffff`);
    if (e.timestamp !== undefined && (typeof e.timestamp !== "string" || Number.isNaN(Date.parse(e.timestamp)))) out.push(`${where}.timestamp must be ISO 8601`);
    const fields = e.fields ?? [];
    if (!Array.isArray(fields) || fields.length > DISCORD_MAX.fields) return void out.push(`${where}.fields must be at most ${DISCORD_MAX.fields}`);
    fields.forEach((f: unknown, j) => {
      if (!isObject(f) || typeof f.name !== "string" || typeof f.value !== "string") return void out.push(`${where}.fields[${j}] needs name and value`);
      if (f.name.length < 1 || f.name.length > DISCORD_MAX.fieldName) out.push(`${where}.fields[${j}].name must be 1-${DISCORD_MAX.fieldName}`);
      if (f.value.length < 1 || f.value.length > DISCORD_MAX.fieldValue) out.push(`${where}.fields[${j}].value must be 1-${DISCORD_MAX.fieldValue}`);
      total += f.name.length + f.value.length;
    });
  });
  if (total > DISCORD_MAX.total) out.push(`embeds hold ${total} characters, more than ${DISCORD_MAX.total}`);
  const am = body.allowed_mentions;
  if (am !== undefined && (!isObject(am) || !Array.isArray(am.parse) || am.parse.some((p) => p !== "users" && p !== "roles" && p !== "everyone"))) out.push("allowed_mentions.parse must list users, roles or everyone");
  return out;
}
