/**
 * POST /webhook/:target (and /webhook = target "default"), in this order: secret configured (each
 * target verifies with its own, target-secret.ts), declared length, signature header well-formed
 * (before any read), capped body, signature on the raw bytes, content type, parse, headers, ping,
 * push (a branch or a tag, with its changed files) or a CI run's conclusion (workflow_run, check_run:
 * the gates) → the target's DO.
 */
import { type Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { answerLine } from "../target-object/deployments/github-events.ts";
import { errorMessage } from "../../shared/errors.ts";
import { toHex } from "../../shared/encoding.ts";
import { DELIVERY_PATTERN, EVENT_PATTERN, HOOK_ID_PATTERN, NAME_HINT, NAME_PATTERN } from "../../shared/patterns.ts";
import type { AppEnv } from "../http/app-env.ts";
import { alarmSettings } from "../target-object/deadline-settings.ts";
import type { DeliveryBody } from "../target-object/types.ts";
import { type BodyResult, declaredTooLarge, MAX_WEBHOOK_BYTES, readCappedBody, tooLargeReason } from "./body.ts";
import { BUDGET_RETRY_AFTER_SECONDS, unverifiedBodies } from "./body-budget.ts";
import { pushedAtMs, staleReason } from "./freshness.ts";
import { parseBody, pingHookId, readPush, readPushScope } from "./payload.ts";
import { isRunEvent, readRunEvent, type RunEvent } from "./run-event.ts";
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
    noteRefused(c, target, deliveryHeader);
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

  const answer = await handleSigned(c, target, deliveryHeader, body.bytes);
  if (!answer.fromTarget) noteSigned(c, target, answer);
  return c.json(answer.body, answer.status);
}

interface Answer {
  status: ContentfulStatusCode;
  body: object;
  /** Answered by the target's DO, which records the delivery itself (github-events.ts). */
  fromTarget: boolean;
  event: string;
  delivery: string;
}

/** After the signature: the delivery's answer, from here or from the target's DO. */
async function handleSigned(c: Context<AppEnv>, target: string, deliveryHeader: string | null, bytes: Uint8Array<ArrayBuffer>): Promise<Answer> {
  const claimedEvent = c.req.header("X-GitHub-Event") ?? "";
  const here = (body: object, status: ContentfulStatusCode): Answer => ({ status, body, fromTarget: false, event: EVENT_PATTERN.test(claimedEvent) ? claimedEvent : "", delivery: boundedDelivery(deliveryHeader) });
  const fromTarget = (a: { status: ContentfulStatusCode; body: object }): Answer => ({ ...here(a.body, a.status), fromTarget: true });
  const parsed = parseBody(c.req.header("Content-Type") ?? null, bytes);
  if (!parsed.ok) return here({ error: parsed.error }, parsed.status);

  const event = c.req.header("X-GitHub-Event");
  if (!event) return here({ error: "missing X-GitHub-Event header" }, 400);
  if (!deliveryHeader) return here({ error: "missing X-GitHub-Delivery header" }, 400);
  // The headers are not covered by the signature: bound them before they become part of a job.
  if (!EVENT_PATTERN.test(event)) return here({ error: "X-GitHub-Event must be 1-100 lowercase letters or _" }, 400);
  if (!DELIVERY_PATTERN.test(deliveryHeader)) return here({ error: "X-GitHub-Delivery must be 1-200 letters, digits or . _ : -" }, 400);
  const delivery = deliveryHeader;
  const hookId = c.req.header("X-GitHub-Hook-ID") ?? "";
  if (!HOOK_ID_PATTERN.test(hookId)) return here({ error: "X-GitHub-Hook-ID must be at most 100 letters, digits or . _ -" }, 400);

  if (event === "ping") {
    logInfo(`[delivery ${delivery}] ping for target ${target}`);
    return here({ pong: true, hook: pingHookId(parsed.value, hookId || null) }, 200);
  }
  if (isRunEvent(event)) {
    const run = await handleRunEvent(c, target, { hookId, delivery, event, payload: parsed.value, bytes });
    return run.fromTarget ? fromTarget(run) : here(run.body, run.status);
  }
  if (event !== "push") return here(ignored(delivery, `${event} events are not deployed (only push; workflow_run and check_run open gates)`), 200);

  const push = readPush(parsed.value);
  if (!push.ok) {
    logWarn(`[delivery ${delivery}] ${push.error}`);
    return here({ error: push.error }, 400);
  }
  const scope = readPushScope(parsed.value);
  if (!scope.ok) {
    logWarn(`[delivery ${delivery}] ${scope.error}`);
    return here({ error: scope.error }, 400);
  }
  const { deleted, pushedAt, ...fields } = push.push;
  const { repo, ref } = fields;
  if (deleted) return here(ignored(delivery, `${ref.startsWith("refs/tags/") ? "tag" : "branch"} deletion (${ref} of ${repo})`), 200);
  if (scope.scope.ref.kind === "ignored") return here(ignored(delivery, scope.scope.ref.reason), 200);

  // Judged in the DO after the dedupe lookups, so a redelivery still gets its first answer.
  const stale = staleReason(pushedAt, Date.now(), alarmSettings(c.env).retentionMs);
  const bodyHash = await sha256Hex(bytes);
  return fromTarget(await c.env.TARGET.getByName(target).receiveDelivery({ hookId, delivery, event, ...fields, bodyHash, stale, changedFiles: scope.scope.changedFiles }));
}

/**
 * A CI run's conclusion: a completed workflow run or check run, for the gates of the target's
 * deployments (the DO keeps it, refuses a fork's). Replay-checked as a push: deduplicated by delivery
 * and body in the DO, and stale past RETENTION_DAYS by its signed completion time.
 */
async function handleRunEvent(
  c: Context<AppEnv>,
  target: string,
  d: { hookId: string; delivery: string; event: RunEvent; payload: unknown; bytes: Uint8Array<ArrayBuffer> },
): Promise<{ status: ContentfulStatusCode; body: object; fromTarget: boolean }> {
  const read = readRunEvent(d.event, d.payload);
  if (read.status === "invalid") {
    logWarn(`[delivery ${d.delivery}] ${read.error}`);
    return { status: 400, body: { error: read.error }, fromTarget: false };
  }
  if (read.status === "ignored") return { status: 200, body: ignored(d.delivery, read.reason), fromTarget: false };
  const run = read.run;
  const stale = staleReason(runCompletedAt(d.event, d.payload), Date.now(), alarmSettings(c.env).retentionMs);
  const answer = await c.env.TARGET.getByName(target).receiveConclusion({
    hookId: d.hookId,
    delivery: d.delivery,
    bodyHash: await sha256Hex(d.bytes),
    stale,
    run: { kind: run.kind === "workflow_run" ? "workflow" : "check", repo: run.repo, headRepo: run.fromFork ? (run.headRepo ?? "a fork") : run.repo, sha: run.headSha, name: run.name, conclusion: run.conclusion, url: run.url, runId: run.runId, attempt: run.runAttempt },
  });
  return { status: answer.status, body: answer.body, fromTarget: true };
}

/** When the run completed, as its signed body says (workflow_run.updated_at, check_run.completed_at), or null. */
function runCompletedAt(event: RunEvent, payload: unknown): number | null {
  if (typeof payload !== "object" || payload === null) return null;
  const run: unknown = (payload as Record<string, unknown>)[event];
  if (typeof run !== "object" || run === null) return null;
  const r = run as Record<string, unknown>;
  return pushedAtMs(event === "workflow_run" ? r["updated_at"] : r["completed_at"]);
}

/** The delivery header as recorded for the setup page: only a well-formed one (it is not signed). */
function boundedDelivery(header: string | null): string {
  return header !== null && DELIVERY_PATTERN.test(header) ? header : "";
}

/** Keeps `work` running after the answer (waitUntil); without an execution context (app.request in tests) it simply runs. */
function afterAnswer(c: Context<AppEnv>, work: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(work);
  } catch {
    // no ExecutionContext: nothing ends the request's isolate early
  }
}

/** A signed delivery answered here, not by the DO: recorded for the setup page after the answer (never delaying it). */
function noteSigned(c: Context<AppEnv>, target: string, a: Answer): void {
  const note = c.env.TARGET.getByName(target)
    .noteDelivery({ event: a.event, delivery: a.delivery, status: a.status, answer: answerLine(a.status, a.body), refused: false })
    .catch((e: unknown) => logWarn(`[delivery ${a.delivery || "?"}] not recorded for the setup page: ${errorMessage(e)}`));
  afterAnswer(c, note);
}

/**
 * A refused signature is what a wrong hook secret looks like, so the setup page shows the last one.
 * Unsigned requests are anyone's: at most one per target per REFUSED_NOTE_EVERY_MS per isolate
 * reaches the DO (one overwritten row), so refusals cannot make it work.
 */
export const REFUSED_NOTE_EVERY_MS = 10_000;
const lastRefusedNote = new Map<string, number>();

function noteRefused(c: Context<AppEnv>, target: string, deliveryHeader: string | null): void {
  const now = Date.now();
  if (now - (lastRefusedNote.get(target) ?? -Infinity) < REFUSED_NOTE_EVERY_MS) return;
  if (lastRefusedNote.size >= 1000) lastRefusedNote.clear();
  lastRefusedNote.set(target, now);
  const claimed = c.req.header("X-GitHub-Event") ?? "";
  const note = c.env.TARGET.getByName(target)
    .noteDelivery({ event: EVENT_PATTERN.test(claimed) ? claimed : "", delivery: boundedDelivery(deliveryHeader), status: 401, answer: "401: invalid signature", refused: true })
    .catch((e: unknown) => logWarn(`[delivery ?] refusal not recorded for the setup page: ${errorMessage(e)}`));
  afterAnswer(c, note);
}

export function webhookRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.post("/", (c) => handleWebhook(c, DEFAULT_TARGET));
  app.post("/:target", (c) => handleWebhook(c, c.req.param("target")));
  return app;
}
