/**
 * The worker's admin API as the CLI calls it: bearer token, JSON in and out, and every failure turned
 * into a sentence that says what to do next (which token was refused, which URL could not be reached,
 * the API's own `error` text). `follow` reads a job's log as server-sent events (`?follow=1`).
 */
import { errorCode, errorMessage } from "../shared/errors.ts";
import { CliError } from "./output.ts";
import { type Connection, TOKEN_ENV } from "./settings.ts";

export interface Answer {
  status: number;
  body: any;
}

export class Client {
  readonly conn: Connection;
  constructor(conn: Connection) {
    this.conn = conn;
  }

  private async send(method: string, path: string, init: { body?: unknown; accept?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.conn.token}`, accept: init.accept ?? "application/json", ...init.headers };
    if (init.body !== undefined) headers["content-type"] = "application/json";
    const where = `${this.conn.url}${path}`;
    let res: Response;
    try {
      res = await fetch(where, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      const why = errorCode(cause) ?? (cause ? errorMessage(cause) : errorMessage(e));
      throw new CliError(`cannot reach the worker at ${this.conn.url} (${why}): check the URL (from ${this.conn.urlSource}) and that the worker is running`);
    }
    if (res.status === 401) {
      await res.body?.cancel();
      const fix = this.conn.tokenSource.startsWith("environment")
        ? `set ${TOKEN_ENV} to the worker's ADMIN_TOKEN, or unset it to use the saved config`
        : `run \`hookrelay init\` to save the worker's ADMIN_TOKEN, or set ${TOKEN_ENV}`;
      throw new CliError(`the worker at ${this.conn.url} refused the admin token from ${this.conn.tokenSource} (401): ${fix}`);
    }
    return res;
  }

  /** A JSON call; a status outside `ok` (default 2xx) is an error carrying the API's own `error` text. */
  async json(method: string, path: string, body?: unknown, ok: (status: number) => boolean = (s) => s >= 200 && s < 300): Promise<Answer> {
    const res = await this.send(method, path, { body });
    const text = await res.text();
    let parsed: any;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new CliError(`${method} ${this.conn.url}${path} answered ${res.status} with ${text === "" ? "nothing" : "something that is not JSON"}: is ${this.conn.url} (from ${this.conn.urlSource}) the hookrelay worker?`);
    }
    if (!ok(res.status)) throw new CliError(apiError(res.status, parsed));
    return { status: res.status, body: parsed };
  }

  /** A plain-text answer (a log). */
  async text(path: string): Promise<string> {
    const res = await this.send("GET", path, { accept: "text/plain" });
    const text = await res.text();
    if (!res.ok) {
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON
      }
      throw new CliError(apiError(res.status, parsed ?? { error: text.slice(0, 300) }));
    }
    return text;
  }

  /**
   * A job's log as it is written, until the job ends: each piece as it arrives. A dropped stream is
   * resumed where it stopped (Last-Event-ID), at most 5 times in a row.
   */
  async follow(path: string, onText: (text: string) => void): Promise<void> {
    let lastId: string | undefined;
    let failures = 0;
    for (;;) {
      const res = await this.send("GET", `${path}${path.includes("?") ? "&" : "?"}follow=1`, { accept: "text/event-stream", headers: lastId ? { "last-event-id": lastId } : {} });
      if (!res.ok) throw new CliError(apiError(res.status, await res.json().catch(() => null)));
      let ended = false;
      try {
        for await (const ev of sseEvents(res)) {
          if (ev.id !== undefined) lastId = ev.id;
          if (ev.event === "log") {
            failures = 0;
            onText(JSON.parse(ev.data) as string);
          } else if (ev.event === "end") {
            const end = JSON.parse(ev.data) as { error?: string };
            if (end.error) throw new CliError(`the log stream ended: ${end.error}`);
            ended = true;
            break;
          }
        }
      } catch (e) {
        if (e instanceof CliError) throw e;
        // the connection dropped: resume below
      }
      if (ended) return;
      if (++failures > 5) throw new CliError(`the log stream from ${this.conn.url} keeps breaking off: try again, or read it whole without -f`);
      await new Promise((r) => setTimeout(r, 500 * failures));
    }
  }
}

function apiError(status: number, body: unknown): string {
  const error = typeof body === "object" && body !== null && typeof (body as { error?: unknown }).error === "string" ? (body as { error: string }).error : null;
  return error === null ? `the worker answered ${status}` : `${error} (${status})`;
}

interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Server-sent events from a response body (lines end in \n, \r\n or \r; a blank line ends an event). */
export async function* sseEvents(res: Response): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let data: string[] = [];
  let id: string | undefined;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (;;) {
      const m = /\r\n|\r|\n/.exec(buffer);
      if (!m) break;
      // A lone \r at the very end may be half of \r\n: wait for more.
      if (m[0] === "\r" && m.index === buffer.length - 1) break;
      const line = buffer.slice(0, m.index);
      buffer = buffer.slice(m.index + m[0].length);
      if (line === "") {
        if (data.length > 0) yield { event, data: data.join("\n"), ...(id !== undefined ? { id } : {}) };
        event = "message";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
  }
}
