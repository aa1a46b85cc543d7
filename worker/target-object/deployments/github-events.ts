/**
 * What GitHub has sent this target: the last delivery of each event (ping, push, workflow_run, …) with
 * our answer, and the last one refused for its signature. The setup page reads it to say whether the
 * webhook reaches the worker at all, with the right secret and the events the gates need.
 * One row per event name, overwritten: bounded by MAX_EVENT_KINDS, never by traffic.
 */
import { isoOrNull } from "../types.ts";

/** GitHub has about 70 event names; past this, a new name is not recorded (the ones kept still are). */
export const MAX_EVENT_KINDS = 64;
/** The row of a delivery refused before its body was trusted (bad or missing signature). */
export const REFUSED_KIND = "(refused)";
const MAX_ANSWER_CHARS = 300;

export interface SeenDelivery {
  /** The X-GitHub-Event header, or for a refused delivery whatever it claimed ("" when none). */
  event: string;
  delivery: string;
  status: number;
  /** Our answer in a line: "202: 2 jobs", "200: ignored: …", "401: invalid signature". */
  answer: string;
}

export interface SeenDeliveryView extends SeenDelivery {
  /** The row's key: the event name, or REFUSED_KIND. */
  kind: string;
  at: string;
  /** How many of this kind since the first was recorded. */
  count: number;
}

interface Row extends Record<string, SqlStorageValue> {
  kind: string;
  event: string;
  delivery: string;
  status: number;
  answer: string;
  at: number;
  count: number;
}

/** Records a delivery that passed the signature check (`refused` false) or one refused for it. */
export function recordSeenDelivery(sql: SqlStorage, d: SeenDelivery & { refused: boolean }, now: number): void {
  const kind = d.refused ? REFUSED_KIND : d.event;
  const known = sql.exec<{ n: number }>("SELECT count(*) AS n FROM github_events WHERE kind = ?", kind).one().n > 0;
  if (!known && sql.exec<{ n: number }>("SELECT count(*) AS n FROM github_events").one().n >= MAX_EVENT_KINDS) return;
  sql.exec(
    `INSERT INTO github_events (kind, event, delivery, status, answer, at, count) VALUES (?, ?, ?, ?, ?, ?, 1)
     ON CONFLICT (kind) DO UPDATE SET event = excluded.event, delivery = excluded.delivery, status = excluded.status,
       answer = excluded.answer, at = excluded.at, count = github_events.count + 1`,
    kind,
    d.event.slice(0, 100),
    d.delivery.slice(0, 200),
    d.status,
    d.answer.slice(0, MAX_ANSWER_CHARS),
    now,
  );
}

/** Newest first. */
export function seenDeliveries(sql: SqlStorage): SeenDeliveryView[] {
  return sql
    .exec<Row>("SELECT * FROM github_events ORDER BY at DESC, kind")
    .toArray()
    .map((r) => ({ kind: r.kind, event: r.event, delivery: r.delivery, status: r.status, answer: r.answer, at: isoOrNull(r.at)!, count: r.count }));
}

/** An answer body in a line, as the setup page shows it. */
export function answerLine(status: number, body: unknown): string {
  const b = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  if (typeof b["error"] === "string") return `${status}: ${b["error"]}`;
  if (b["pong"] === true) return `${status}: pong`;
  if (typeof b["ignored"] === "string") return `${status}: ignored: ${b["ignored"]}`;
  const jobs = Array.isArray(b["jobs"]) ? b["jobs"].length : 0;
  const gates = Array.isArray(b["gates"]) ? b["gates"].length : 0;
  const parts = [`${jobs} job${jobs === 1 ? "" : "s"}`];
  if (gates > 0) parts.push(`${gates} gate${gates === 1 ? "" : "s"} decided`);
  return `${status}: ${parts.join(", ")}`;
}
