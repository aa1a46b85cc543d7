/**
 * POST /webhook/:target (and /webhook = target "default"), in this order: secret configured (each
 * target verifies with its own, target-secret.ts), declared length, signature header well-formed
 * (before any read), capped body, signature on the raw bytes, content type, parse, headers, ping,
 * push → the target's DO.
 */
import { type Context, Hono } from "hono";
import { toHex } from "../../shared/encoding.ts";
import { DELIVERY_PATTERN, EVENT_PATTERN, HOOK_ID_PATTERN, NAME_HINT, NAME_PATTERN } from "../../shared/patterns.ts";
import type { AppEnv } from "../http/app-env.ts";
import { alarmSettings } from "../target-object/deadline-settings.ts";
import type { DeliveryBody } from "../target-object/types.ts";
import { type BodyResult, declaredTooLarge, MAX_WEBHOOK_BYTES, readCappedBody, tooLargeReason } from "./body.ts";
import { BUDGET_RETRY_AFTER_SECONDS, unverifiedBodies } from "./body-budget.ts";
import { staleReason } from "./freshness.ts";
import { parseBody, pingHookId, readPush } from "./payload.ts";
import { checkSignature, readSecrets, readSignatureHeaders, type SignatureResult } from "./signature.ts";
import { DEFAULT_TARGET, secretsForTarget } from "./target-secret.ts";
import { logError, logInfo, logWarn } from "../console-lines.ts";

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return toHex(digest);
}

function ignored(delivery: string, why: string): DeliveryBody {
  return { delivery, jobs: [], ignored: why };
}

async function handleWebhook(c: Context<AppEnv>, target: string): Promise<Response> {
  if (!NAME_PATTERN.test(target)) return c.json({ error: `unknown target ${JSON.stringify(target)}: a target name ${NAME_HINT}` }, 404);

  const configured = readSecrets(c.env.GITHUB_WEBHOOK_SECRET, "GITHUB_WEBHOOK_SECRET");
  if (!configured.ok) {
    logError(configured.problem);
    return c.json({ error: configured.problem }, 500);
  }
  // This target's own secrets: a signature made for another target does not open this one.
  const secrets = await secretsForTarget(configured.secrets, target);

  if (declaredTooLarge(c.req.raw, MAX_WEBHOOK_BYTES)) return c.json({ error: tooLargeReason(MAX_WEBHOOK_BYTES) }, 413);

  // A missing or malformed signature header is refused before the body is read: an unsigned
  // request costs no memory. The reason goes to the log only.
  const deliveryHeader = c.req.header("X-GitHub-Delivery") ?? null;
  const refuse = (reason: string) => {
    logWarn(`[delivery ${deliveryHeader ?? "?"}] refused: ${reason}`);
    return c.json({ error: "invalid signature" }, 401);
  };
  const claimed = readSignatureHeaders(
    { sha256: c.req.header("X-Hub-Signature-256") ?? null, sha1: c.req.header("X-Hub-Signature") ?? null },
    c.env.ALLOW_SHA1 === "true",
  );
  if (!claimed.ok) return refuse(claimed.reason);

  // The body counts against the isolate's budget until its signature is judged, on every path: a
  // signed body is the secret holder's, and what follows it is bounded by the cap alone.
  const reservation = unverifiedBodies.reserve();
  let body: BodyResult;
  let signature: SignatureResult | null = null;
  try {
    body = await readCappedBody(c.req.raw, MAX_WEBHOOK_BYTES, reservation);
    if (body.ok) signature = await checkSignature(claimed.claim, body.bytes, secrets);
  } finally {
    reservation.release();
  }
  if (!body.ok) {
    logWarn(`[delivery ${deliveryHeader ?? "?"}] target ${target}: ${body.status} ${body.reason}`);
    if (body.status === 503) c.header("Retry-After", String(BUDGET_RETRY_AFTER_SECONDS));
    return c.json({ error: body.reason }, body.status);
  }
  if (!signature?.ok) return refuse(signature?.reason ?? "unchecked");

  const parsed = parseBody(c.req.header("Content-Type") ?? null, body.bytes);
  if (!parsed.ok) return c.json({ error: parsed.error }, parsed.status);

  const event = c.req.header("X-GitHub-Event");
  if (!event) return c.json({ error: "missing X-GitHub-Event header" }, 400);
  if (!deliveryHeader) return c.json({ error: "missing X-GitHub-Delivery header" }, 400);
  // The headers are not covered by the signature: bound them before they become part of a job.
  if (!EVENT_PATTERN.test(event)) return c.json({ error: "X-GitHub-Event must be 1-100 lowercase letters or _" }, 400);
  if (!DELIVERY_PATTERN.test(deliveryHeader)) return c.json({ error: "X-GitHub-Delivery must be 1-200 letters, digits or . _ : -" }, 400);
  const delivery = deliveryHeader;
  const hookId = c.req.header("X-GitHub-Hook-ID") ?? "";
  if (!HOOK_ID_PATTERN.test(hookId)) return c.json({ error: "X-GitHub-Hook-ID must be at most 100 letters, digits or . _ -" }, 400);

  if (event === "ping") {
    logInfo(`[delivery ${delivery}] ping for target ${target}`);
    return c.json({ pong: true, hook: pingHookId(parsed.value, hookId || null) }, 200);
  }
  if (event !== "push") return c.json(ignored(delivery, `${event} events are not deployed (only push)`), 200);

  const push = readPush(parsed.value);
  if (!push.ok) {
    logWarn(`[delivery ${delivery}] ${push.error}`);
    return c.json({ error: push.error }, 400);
  }
  const { deleted, pushedAt, ...fields } = push.push;
  const { repo, ref } = fields;
  if (deleted) return c.json(ignored(delivery, `branch deletion (${ref} of ${repo})`), 200);
  if (!ref.startsWith("refs/heads/")) return c.json(ignored(delivery, `not a branch push (${ref} of ${repo})`), 200);

  // Judged in the DO after the dedupe lookups, so a redelivery still gets its first answer.
  const stale = staleReason(pushedAt, Date.now(), alarmSettings(c.env).retentionMs);
  const bodyHash = await sha256Hex(body.bytes);
  const answer = await c.env.TARGET.getByName(target).receiveDelivery({ hookId, delivery, event, ...fields, bodyHash, stale });
  return c.json(answer.body, answer.status);
}

export function webhookRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.post("/", (c) => handleWebhook(c, DEFAULT_TARGET));
  app.post("/:target", (c) => handleWebhook(c, c.req.param("target")));
  return app;
}
