/** Signed GitHub webhook deliveries, as GitHub sends them. */
import { createHmac, randomUUID } from "node:crypto";

export function signSha256(secret: string, body: string | Uint8Array): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * The secret a target's GitHub hook is given: the configured secret for `default` (`/webhook`), else
 * hex(HMAC-SHA256(configured, "hookrelay-target:" + target)) — a signature opens one target only.
 */
export function targetSecret(configured: string, target: string | undefined): string {
  if (target === undefined || target === "default") return configured;
  return createHmac("sha256", configured).update(`hookrelay-target:${target}`).digest("hex");
}

export interface PushFields {
  repo: string;
  ref: string;
  after: string;
  before?: string;
  pusher?: string;
  deleted?: boolean;
}

let pushes = 0;

/**
 * A push payload as GitHub sends it. Like GitHub's, no two are byte-identical (a message numbered per
 * call, `pushed_at` now): the worker treats a body it has seen before as a replay and answers it with
 * the first answer.
 */
export function pushPayload(f: PushFields): Record<string, unknown> {
  const [owner = "", name = ""] = f.repo.split("/");
  pushes++;
  return {
    ref: f.ref,
    before: f.before ?? "0".repeat(40),
    after: f.after,
    created: false,
    deleted: f.deleted ?? false,
    forced: false,
    repository: { name, full_name: f.repo, owner: { login: owner, name: owner }, pushed_at: Math.floor(Date.now() / 1000) },
    pusher: { name: f.pusher ?? "octocat", email: "octocat@example.com" },
    head_commit: { id: f.after, message: `test commit ${pushes}`, timestamp: new Date().toISOString() },
  };
}

export interface Delivery {
  event?: string;
  delivery?: string;
  hookId?: string;
  /** The configured GITHUB_WEBHOOK_SECRET: the delivery is signed with the target's secret derived from it. */
  secret: string;
  payload?: unknown;
  /** The exact body text to sign and send instead of JSON.stringify(payload) (a body written by hand, byte for byte). */
  body?: string;
  target?: string;
  /** Give up waiting for an answer after this long (the fetch rejects, as a refused connection does). */
  timeoutMs?: number;
}

/** POST a signed delivery to `<url>/webhook/<target>` and return the response with its parsed JSON. */
export async function sendWebhook(url: string, d: Delivery): Promise<{ status: number; body: any; delivery: string }> {
  const delivery = d.delivery ?? randomUUID();
  const body = d.body ?? JSON.stringify(d.payload);
  const res = await fetch(`${url}/webhook${d.target ? `/${d.target}` : ""}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": d.event ?? "push",
      "x-github-delivery": delivery,
      "x-github-hook-id": d.hookId ?? "1",
      "x-hub-signature-256": signSha256(targetSecret(d.secret, d.target), body),
      "user-agent": "GitHub-Hookshot/test",
    },
    body,
    signal: d.timeoutMs === undefined ? undefined : AbortSignal.timeout(d.timeoutMs),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* keep the text */
  }
  return { status: res.status, body: parsed, delivery };
}
