/**
 * Signed deliveries sent the way GitHub does when the receiver is flaky: a POST that gets no answer
 * (connection refused or reset, a timeout, a 5xx) is re-sent later with the same GUID and the same
 * body, as the Redeliver button does, until it is answered. Every answer is kept, so a test can check
 * that a delivery answered twice got the same answer (the same jobs) both times.
 */
import { randomUUID } from "node:crypto";
import { sendWebhook } from "../dev/github.ts";

export interface Answer {
  status: number;
  jobIds: string[];
  text: string;
}

export interface TrackedDelivery {
  guid: string;
  sha: string;
  payload: unknown;
  /** POSTs made for it so far. */
  attempts: number;
  /** The first answer received, and on which attempt. */
  first?: Answer;
  firstOnAttempt?: number;
  /** Why attempts got no answer (error codes, 5xx statuses). */
  failures: string[];
  /** Later answers that differ from the first. */
  mismatches: Answer[];
  /** Re-sends made after the first answer arrived. */
  repeatsAfterAnswer: number;
}

export interface Redeliverer {
  readonly deliveries: readonly TrackedDelivery[];
  /** A new delivery (fresh GUID) of `payload`, sent once; returns it answered or not. */
  send(sha: string, payload: unknown): Promise<TrackedDelivery>;
  /** Send an existing delivery again, same GUID and body. Returns whether it was answered. */
  resend(d: TrackedDelivery): Promise<boolean>;
  unanswered(): TrackedDelivery[];
}

function describeError(e: unknown): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  return err.cause?.code ?? err.cause?.message ?? (err.name === "TimeoutError" ? "timeout" : (err.message ?? String(e)));
}

export function redeliverer(opts: { url: () => string; target: string; secret: string; timeoutMs?: number }): Redeliverer {
  const deliveries: TrackedDelivery[] = [];
  const attempt = async (d: TrackedDelivery): Promise<boolean> => {
    d.attempts++;
    if (d.first) d.repeatsAfterAnswer++;
    let answer: Answer;
    try {
      const res = await sendWebhook(opts.url(), { target: opts.target, delivery: d.guid, secret: opts.secret, payload: d.payload, timeoutMs: opts.timeoutMs ?? 10_000 });
      const text = typeof res.body === "string" ? res.body : JSON.stringify(res.body);
      if (res.status >= 500) {
        d.failures.push(`HTTP ${res.status} ${text.slice(0, 200)}`);
        return false;
      }
      const jobs: unknown = typeof res.body === "object" && res.body !== null ? (res.body as { jobs?: unknown }).jobs : undefined;
      const jobIds = Array.isArray(jobs) ? jobs.map((j) => String((j as { id?: unknown }).id)) : [];
      answer = { status: res.status, jobIds, text };
    } catch (e) {
      d.failures.push(describeError(e));
      return false;
    }
    if (!d.first) {
      d.first = answer;
      d.firstOnAttempt = d.attempts;
    } else if (answer.status !== d.first.status || answer.jobIds.join(",") !== d.first.jobIds.join(",")) {
      d.mismatches.push(answer);
    }
    return true;
  };
  return {
    deliveries,
    async send(sha, payload) {
      const d: TrackedDelivery = { guid: randomUUID(), sha, payload, attempts: 0, failures: [], mismatches: [], repeatsAfterAnswer: 0 };
      deliveries.push(d);
      await attempt(d);
      return d;
    },
    resend: attempt,
    unanswered: () => deliveries.filter((d) => !d.first),
  };
}

/** mulberry32: a small seeded PRNG, so a soak's choices can be replayed from its printed seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
