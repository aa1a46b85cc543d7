/**
 * The generic notification: a JSON event signed as Standard Webhooks (https://www.standardwebhooks.com):
 * `webhook-id`, `webhook-timestamp` (seconds), `webhook-signature: v1,<base64 HMAC-SHA256 of
 * "id.timestamp.body">` keyed with the base64-decoded part of the `whsec_…` secret.
 *
 * Signed with the `standardwebhooks` package itself, so what we send is what its verifiers accept: it
 * is plain JavaScript (fast-sha256 and @stablelib/base64, no Node APIs), and runs in workerd as it does
 * in Node.
 */
import { Webhook } from "standardwebhooks";
import type { DeploymentReport } from "./notify-text.ts";

/** The event as the receiver reads it. */
export function standardEvent(r: DeploymentReport) {
  return {
    type: r.type,
    timestamp: new Date(r.at).toISOString(),
    data: {
      target: r.target,
      deployment: r.deployment,
      pipeline: r.pipeline,
      repo: r.repo,
      ref: r.ref,
      sha: r.sha,
      pusher: r.pusher,
      message: r.message,
      status: r.status,
      // blocked: why; waiting: "waiting for approval"; otherwise null. JSON: nothing to escape.
      reason: r.reason ?? null,
      url: r.url,
      hosts: r.hosts.map((h) => ({ agent: h.agent, status: h.status, failedStep: h.failedStep })),
    },
  };
}

/** Standard Webhooks' secret: "whsec_" and base64 of 24 to 64 random bytes (the spec's range). */
const SECRET_PATTERN = /^whsec_([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Why `secret` is not a usable Standard Webhooks secret (never quoting it), or null. */
export function secretProblem(secret: string): string | null {
  if (!SECRET_PATTERN.test(secret)) return 'must be "whsec_" followed by base64 (make one with: echo "whsec_$(openssl rand -base64 32)")';
  const b64 = secret.slice("whsec_".length);
  const bytes = (b64.length / 4) * 3 - (b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0);
  if (bytes < 24 || bytes > 64) return `must hold 24 to 64 bytes after "whsec_" (it holds ${bytes})`;
  return null;
}

/** The `webhook-signature` value for one message. `seconds` is the `webhook-timestamp`. */
export function signStandardWebhook(secret: string, id: string, seconds: number, body: string): string {
  return new Webhook(secret).sign(id, new Date(seconds * 1000), body);
}
