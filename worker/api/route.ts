/**
 * /api/targets/:target/… — the operator's JSON API (admin bearer token, or the dashboard's session
 * cookie) — and /api/sessions/sign-out-everywhere.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { assertNever } from "../../shared/assert-never.ts";
import { BRANCH_REF_HINT, BRANCH_REF_PATTERN, JOB_ID_PATTERN, NAME_HINT, NAME_PATTERN, SHA_HINT, SHA_PATTERN } from "../../shared/patterns.ts";
import { InvalidInput, Reader } from "../../shared/reader.ts";
import { textValueProblem } from "../../shared/text-value.ts";
import type { DeployRequest } from "../target-object/deployments/manual-deploy.ts";
import type { CancelResult, DeploymentCancelResult } from "../target-object/types.ts";
import type { AppEnv } from "../http/app-env.ts";
import { adminAuth } from "../http/admin-auth.ts";
import { readAdminToken } from "../http/admin-secret.ts";
import { endEverySession } from "../http/login-session-store.ts";
import { readSecrets } from "../webhook/signature.ts";
import { targetSecret } from "../webhook/target-secret.ts";
import { logError, logInfo } from "../console-lines.ts";
import { cursorFromEventId, followLog } from "./follow-log.ts";
import { setupChecklist } from "./setup-checklist.ts";
import { installCommands, type PipelineFlags, readPipelineFlags } from "../../shared/install-commands.ts";
import { publicUrl } from "../target-object/reports/report-wiring.ts";

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 200;

function validTarget(): MiddlewareHandler<AppEnv> {
  return async function validTargetMiddleware(c, next) {
    const target = c.req.param("target") ?? "";
    if (!NAME_PATTERN.test(target)) return c.json({ error: `unknown target ${JSON.stringify(target)}: a target name ${NAME_HINT}` }, 404);
    await next();
  };
}

function stub(c: Context<AppEnv>) {
  return c.env.TARGET.getByName(c.req.param("target") ?? "default");
}

function jobNotFound(c: Context<AppEnv>, id: string): Response {
  return c.json({ error: `no job ${JSON.stringify(id)} in target ${c.req.param("target") ?? ""}` }, 404);
}

function deploymentNotFound(c: Context<AppEnv>, id: string): Response {
  return c.json({ error: `no deployment ${JSON.stringify(id)} in target ${c.req.param("target") ?? ""}` }, 404);
}

/** A job's or a deployment's cancel: 202 when canceled or asked to stop, 409 when it had already finished. */
function cancelAnswer(
  c: Context<AppEnv>,
  kind: "job" | "deployment",
  id: string,
  result: CancelResult | DeploymentCancelResult,
  notFound: (c: Context<AppEnv>, id: string) => Response,
): Response {
  switch (result.outcome) {
    case "not-found":
      return notFound(c, id);
    case "already-finished":
      return c.json({ error: `${kind} ${id} already finished (${result.status})`, id, status: result.status }, 409);
    case "canceled":
    case "cancel-requested":
      return c.json({ id: result.id, status: result.status }, 202);
    default:
      return assertNever(result, "cancel result");
  }
}

function agentNotFound(c: Context<AppEnv>, name: string): Response {
  return c.json({ error: `no agent ${JSON.stringify(name)} registered in target ${c.req.param("target") ?? ""}` }, 404);
}

function parseLimit(value: string | undefined): number | null {
  if (value === undefined) return DEFAULT_LIMIT;
  if (!/^\d{1,6}$/.test(value)) return null;
  const n = Number(value);
  return n >= 1 ? Math.min(n, MAX_LIMIT) : null;
}

/** The request's JSON body (or `text`, already read), or a 400 answer saying what shape was expected. */
async function jsonBody(c: Context<AppEnv>, shape: string, text?: string): Promise<{ ok: true; value: unknown } | { ok: false; answer: Response }> {
  try {
    return { ok: true, value: text === undefined ? await c.req.json() : JSON.parse(text) };
  } catch {
    return { ok: false, answer: c.json({ error: `body must be JSON: ${shape}` }, 400) };
  }
}

export function apiRoutes(): Hono<AppEnv> {
  const api = new Hono<AppEnv>();
  api.use("*", adminAuth());
  api.use("/targets/:target/*", validTarget());

  // Ends every dashboard session (a lost laptop, a shared screen); the bearer token is not a session.
  api.post("/sessions/sign-out-everywhere", async (c) => {
    const admin = readAdminToken(c.env);
    if (!admin.ok) return c.json({ error: admin.problem }, 500); // adminAuth answered this already
    await endEverySession(c.env, admin.token);
    logInfo("every dashboard session ended (POST /api/sessions/sign-out-everywhere)");
    return c.json({ signedOut: "everywhere" });
  });

  // The secret to put in this target's GitHub hook: derived from the first configured secret (the
  // current one; the others verify until they are removed). docs/operations.md "Deploying by hand", docs/security.md "Per-target secrets".
  api.get("/targets/:target/webhook-secret", async (c) => {
    const configured = readSecrets(c.env.GITHUB_WEBHOOK_SECRET, "GITHUB_WEBHOOK_SECRET");
    if (!configured.ok) {
      logError(configured.problem);
      return c.json({ error: configured.problem }, 500);
    }
    const target = c.req.param("target");
    return c.json({ target, secret: await targetSecret(configured.secrets[0]!, target) });
  });

  // The setup page's checklist (setup-checklist.ts): red items stop a push from deploying.
  api.get("/targets/:target/setup", async (c) => {
    const target = c.req.param("target");
    const secret = readSecrets(c.env.GITHUB_WEBHOOK_SECRET, "GITHUB_WEBHOOK_SECRET");
    const view = await stub(c).getSetup();
    const origin = publicUrl(c.env.PUBLIC_URL) ?? new URL(c.req.url).origin;
    const checks = setupChecklist({
      webhookSecretProblem: secret.ok ? null : secret.problem,
      payloadUrl: `${origin}/webhook${target === "default" ? "" : `/${target}`}`,
      legacyAgentToken: "AGENT_TOKEN" in c.env,
      view,
      now: Date.now(),
    });
    return c.json({ target, red: checks.filter((k) => k.state === "red").length, checks, facts: view });
  });

  api.get("/targets/:target/agents", async (c) => c.json({ agents: await stub(c).listAgents() }));

  api.post("/targets/:target/agents", async (c) => {
    const body = await jsonBody(c, "{name, repo?, workdir?, branch?}");
    if (!body.ok) return body.answer;
    const name = readAgentName(body.value);
    if (!name.ok) return c.json({ error: name.error }, 400);
    const flags = readInstallFields(body.value);
    if (!flags.ok) return c.json({ error: flags.error }, 400);
    const result = await stub(c).registerAgent(name.name);
    if (!result.ok) return c.json({ error: result.error }, result.status);
    // `install`: the server's commands with this worker's URL, the target, the name and the token filled
    // in (and the pipeline's repo, workdir and branch when given) — what `hookrelay agents add` prints,
    // and the dashboard's "Add a server" shows once.
    const url = publicUrl(c.env.PUBLIC_URL) ?? new URL(c.req.url).origin;
    const install = installCommands({ url, target: c.req.param("target"), name: result.name, token: result.token, ...flags.flags });
    return c.json({ name: result.name, token: result.token, install }, 201);
  });

  api.post("/targets/:target/agents/:name/token", async (c) => {
    const name = c.req.param("name");
    const result = NAME_PATTERN.test(name) ? await stub(c).rotateAgentToken(name) : null;
    return result ? c.json(result) : agentNotFound(c, name);
  });

  api.delete("/targets/:target/agents/:name", async (c) => {
    const name = c.req.param("name");
    const result = NAME_PATTERN.test(name) ? await stub(c).revokeAgent(name) : { ok: false as const };
    if (!result.ok) return agentNotFound(c, name);
    return c.json({ name: result.name, revoked: true, canceled: result.canceled, interrupted: result.interrupted });
  });

  // Stored log bytes and rows against the target's budget (docs/operations.md "Storage budget").
  api.get("/targets/:target/storage", async (c) => c.json(await stub(c).getLogStorage()));

  api.get("/targets/:target/jobs", async (c) => {
    const limit = parseLimit(c.req.query("limit"));
    if (limit === null) return c.json({ error: `limit must be an integer from 1 to ${MAX_LIMIT}` }, 400);
    return c.json({ jobs: await stub(c).listJobs(limit) });
  });

  api.get("/targets/:target/jobs/:id", async (c) => {
    const id = c.req.param("id");
    if (!JOB_ID_PATTERN.test(id)) return jobNotFound(c, id);
    const job = await stub(c).getJob(id);
    return job ? c.json(job) : jobNotFound(c, id);
  });

  api.get("/targets/:target/jobs/:id/log", async (c) => {
    const id = c.req.param("id");
    if (!JOB_ID_PATTERN.test(id)) return jobNotFound(c, id);
    const step = c.req.query("step") ?? null;
    if (c.req.query("follow") === "1") {
      if (!(await stub(c).getJob(id))) return jobNotFound(c, id);
      return followLog(c, stub(c), id, step, cursorFromEventId(c.req.header("Last-Event-ID")));
    }
    const log = await stub(c).getJobLog(id, step);
    if (!log) return jobNotFound(c, id);
    return new Response(log, { headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" } });
  });

  api.post("/targets/:target/jobs/:id/cancel", async (c) => {
    const id = c.req.param("id");
    if (!JOB_ID_PATTERN.test(id)) return jobNotFound(c, id);
    return cancelAnswer(c, "job", id, await stub(c).cancelJob(id), jobNotFound);
  });

  api.get("/targets/:target/deployments", async (c) => {
    const limit = parseLimit(c.req.query("limit"));
    if (limit === null) return c.json({ error: `limit must be an integer from 1 to ${MAX_LIMIT}` }, 400);
    return c.json({ deployments: await stub(c).listDeployments(limit) });
  });

  api.get("/targets/:target/deployments/:id", async (c) => {
    const id = c.req.param("id");
    if (!JOB_ID_PATTERN.test(id)) return deploymentNotFound(c, id);
    const deployment = await stub(c).getDeployment(id);
    return deployment ? c.json(deployment) : deploymentNotFound(c, id);
  });

  api.post("/targets/:target/deployments/:id/cancel", async (c) => {
    const id = c.req.param("id");
    if (!JOB_ID_PATTERN.test(id)) return deploymentNotFound(c, id);
    return cancelAnswer(c, "deployment", id, await stub(c).cancelDeployment(id), deploymentNotFound);
  });

  // A person's decision on a deployment waiting for approval (its gates: README "Deploy only what passed").
  for (const [verb, approve] of [["approve", true], ["reject", false]] as const) {
    api.post(`/targets/:target/deployments/:id/${verb}`, async (c) => {
      const id = c.req.param("id");
      if (!JOB_ID_PATTERN.test(id)) return deploymentNotFound(c, id);
      const text = await c.req.text();
      let note: string | null = null;
      if (text.trim() !== "") {
        const body = await jsonBody(c, "{note?}", text);
        if (!body.ok) return body.answer;
        const read = readNote(body.value);
        if (!read.ok) return c.json({ error: read.error }, 400);
        note = read.note;
      }
      const result = await stub(c).decideApproval(id, approve, note);
      switch (result.outcome) {
        case "not-found":
          return deploymentNotFound(c, id);
        case "not-waiting":
          return c.json({ error: `deployment ${id} is ${result.status}: it does not wait for approval` }, 409);
        case "decided":
          return c.json({ id: result.id, status: result.status, gates: result.gates });
        default:
          return assertNever(result, "approval result");
      }
    });
  }

  api.post("/targets/:target/deploy", async (c) => {
    const body = await jsonBody(c, "{pipeline, agent?, ref?, sha?}");
    if (!body.ok) return body.answer;
    const req = readDeployRequest(body.value);
    if (!req.ok) return c.json({ error: req.error }, 400);
    const result = await stub(c).deploy(req.request);
    if (!result.ok) return c.json({ error: result.error }, result.status);
    return c.json({ delivery: result.delivery, jobs: result.jobs, deployments: result.deployments }, 202);
  });

  return api;
}

function readAgentName(value: unknown): { ok: true; name: string } | { ok: false; error: string } {
  try {
    return { ok: true, name: new Reader(value).field("name").string({ pattern: NAME_PATTERN, patternHint: NAME_HINT }) };
  } catch (e) {
    if (e instanceof InvalidInput) return { ok: false, error: e.message };
    throw e;
  }
}

/** The optional pipeline fields of POST …/agents (strings; "" is absent), checked as the CLI's flags are. */
function readInstallFields(value: unknown): { ok: true; flags: PipelineFlags } | { ok: false; error: string } {
  try {
    const r = new Reader(value);
    const field = (key: "repo" | "workdir" | "branch") => {
      const v = r.has(key) ? r.field(key).optionalString({ max: 4096 }) : null;
      return v === null || v === undefined || v.trim() === "" ? undefined : v.trim();
    };
    const flags: PipelineFlags = {};
    for (const key of ["repo", "workdir", "branch"] as const) {
      const v = field(key);
      if (v !== undefined) flags[key] = v;
    }
    return readPipelineFlags(flags, "");
  } catch (e) {
    if (e instanceof InvalidInput) return { ok: false, error: e.message };
    throw e;
  }
}

/** An approval's or rejection's note: shown on the dashboard, sent to GitHub and the chats. */
export const MAX_NOTE_CHARS = 500;

function readNote(value: unknown): { ok: true; note: string | null } | { ok: false; error: string } {
  try {
    const field = new Reader(value).field("note");
    const note = field.optionalString({ max: MAX_NOTE_CHARS });
    const problem = note === undefined ? null : textValueProblem(note, { maxBytes: 4 * MAX_NOTE_CHARS });
    if (problem !== null) field.fail(`${problem}: a note is one line of text`);
    return { ok: true, note: note === undefined || note.trim() === "" ? null : note.trim() };
  } catch (e) {
    if (e instanceof InvalidInput) return { ok: false, error: e.message };
    throw e;
  }
}

function readDeployRequest(value: unknown): { ok: true; request: DeployRequest } | { ok: false; error: string } {
  try {
    const r = new Reader(value);
    const request: DeployRequest = { pipeline: r.field("pipeline").string({ pattern: NAME_PATTERN, patternHint: NAME_HINT }) };
    const agent = r.field("agent").optionalString({ pattern: NAME_PATTERN, patternHint: NAME_HINT });
    const ref = r.field("ref").optionalString({ pattern: BRANCH_REF_PATTERN, patternHint: BRANCH_REF_HINT });
    const sha = r.field("sha").optionalString({ pattern: SHA_PATTERN, patternHint: SHA_HINT });
    if (agent !== undefined) request.agent = agent;
    if (ref !== undefined) request.ref = ref;
    if (sha !== undefined) request.sha = sha;
    return { ok: true, request };
  } catch (e) {
    if (e instanceof InvalidInput) return { ok: false, error: e.message };
    throw e;
  }
}
