/**
 * For tests: a fake GitHub REST API, a real HTTP server on 127.0.0.1, that enforces what GitHub
 * enforces on the calls hookrelay makes — a User-Agent (403), the Accept and X-GitHub-Api-Version
 * headers (400; GitHub defaults them, we insist), auth (tokens; App JWTs verified RS256 with the App's
 * public key; installation tokens it minted, until they expire), a description over 140 characters
 * (422), `auto_merge` / `required_contexts` left at GitHub's defaults (409: GitHub would merge the
 * default branch in and run every status check) — and misbehaves on demand (502s, a rate limit).
 * It records every call and keeps deployments and their statuses per repository.
 *
 * Repository webhooks (`/repos/{owner}/{repo}/hooks`): create, list, get, update (PATCH), pings and the
 * deliveries list, with GitHub's rules — 422 for a missing or non-http(s) `config.url`, an unknown
 * event, a `content_type` other than json/form, or a second hook with the same URL ("Hook already exists
 * on this repository"); 404 for a repository the token cannot manage (`hookAccess`). On create, update and
 * `POST …/pings` it sends a `ping` to the payload URL as GitHub does (X-GitHub-Event, X-GitHub-Delivery,
 * X-GitHub-Hook-ID, X-Hub-Signature-256 over the body with the hook's secret; body {zen, hook_id, hook})
 * and records the delivery with the status code the receiver answered. Unlike GitHub, it accepts
 * loopback payload URLs unless told (`refuseLoopbackUrls`) — GitHub refuses URLs not reachable over the
 * public Internet.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createHmac, createPublicKey, type KeyObject, randomBytes, randomUUID, verify } from "node:crypto";

export interface FakeGitHubCall {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; null when there was none (or it did not parse). */
  body: unknown;
  /** What the fake answered. */
  status: number;
}

export interface FakeDeployment {
  id: number;
  ref: string;
  environment: string;
  description: string | null;
  production_environment: boolean | null;
  transient_environment: boolean | null;
  payload: unknown;
  /** Which token created it: "token:<token>" or "installation:<id>". */
  creator: string;
}

export interface FakeDeploymentStatus {
  id: number;
  state: string;
  description: string | null;
  environment: string | null;
  log_url: string | null;
  environment_url: string | null;
}

export interface FakeHook {
  id: number;
  name: string;
  active: boolean;
  events: string[];
  config: { url: string; content_type: string; insecure_ssl: string; secret?: string };
  created_at: string;
  updated_at: string;
}

export interface FakeHookDelivery {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  duration: number;
  status: string;
  status_code: number;
  event: string;
  action: string | null;
  installation_id: number | null;
  repository_id: number | null;
  /** Not in GitHub's list: what was sent and answered, for tests. */
  request: { headers: Record<string, string>; body: string };
  response: { body: string };
}

/** The events a hook may subscribe to (a subset of GitHub's list, enough for hookrelay; "*" is all). */
export const HOOK_EVENT_NAMES = new Set([
  "*", "push", "pull_request", "workflow_run", "workflow_job", "check_run", "check_suite", "status", "deployment", "deployment_status",
  "release", "create", "delete", "issues", "issue_comment", "ping", "repository", "star", "watch", "fork",
]);

export interface FakeGitHubOptions {
  /**
   * Which repositories ("owner/name") each token may manage hooks on; a token not listed may manage
   * any. A repository the token cannot manage answers 404, as GitHub does.
   */
  hookAccess?: Record<string, string[]>;
  /** Personal / fine-grained tokens accepted on the repository endpoints. */
  tokens?: string[];
  /** A GitHub App: JWTs signed by its private key (verified with `publicKey`), and where it is installed. */
  app?: { id: string; publicKey: string | KeyObject; installations: Record<string, number> };
  /** How long minted installation tokens live (GitHub: one hour). */
  tokenTtlMs?: number;
}

export interface FakeGitHub {
  /** Base URL, no trailing slash: set GITHUB_API_URL to it. */
  url: string;
  calls: FakeGitHubCall[];
  /** Tokens accepted on repository endpoints (mutable). */
  tokens: Set<string>;
  deployments(repo: string): FakeDeployment[];
  /** The repository's hooks (the secret included, unlike GitHub's answers). */
  hooks(repo: string): FakeHook[];
  /** Every delivery to a hook, newest first. */
  deliveries(repo: string, hookId: number): FakeHookDelivery[];
  /** Changes a hook's secret behind the CLI's back (as someone editing it on GitHub would). */
  setHookSecret(repo: string, hookId: number, secret: string): void;
  /** From now on, as GitHub.com does, refuse (422) payload URLs on loopback hosts (default: accepted, so tests can reach a local worker). */
  refuseLoopbackUrls(on: boolean): void;
  /** From now on pings are signed with `secret` instead of the hook's own (a hook whose stored secret differs); null: the hook's. */
  signPingsWith(secret: string | null): void;
  statusesOf(repo: string, deploymentId: number): FakeDeploymentStatus[];
  /** The next `n` calls answer `status` (default 502) before anything is checked, as a failing proxy would. */
  failNext(n: number, status?: number): void;
  /** For `ms` (on the fake's clock), authenticated calls answer 403 with x-ratelimit-remaining: 0 and x-ratelimit-reset; returns that reset (epoch seconds). */
  rateLimitFor(ms: number): number;
  /** Every call from now on is answered `ms` after it arrived (a slow GitHub); 0: at once. */
  delayAnswers(ms: number): void;
  /**
   * The next `n` POSTs are carried out (a deployment or status is stored) but never answered: the
   * connection stays open, as when GitHub did the work and the answer was lost (a timeout, a crash).
   */
  applyWithoutAnswer(n: number): void;
  /** Revokes every installation token minted so far (as GitHub does when the App is reinstalled). */
  revokeInstallationTokens(): void;
  /** The fake's clock (ms): Date.now() plus what `advance` added. */
  now(): number;
  /** Moves the fake's clock on (token expiry, JWT times, the rate limit window) without sleeping. */
  advance(ms: number): void;
  close(): Promise<void>;
}

const DOCS = "https://docs.github.com/rest";
const STATES = new Set(["error", "failure", "inactive", "in_progress", "queued", "pending", "success"]);
const DESCRIPTION_MAX = 140;

type Caller = { kind: "token"; token: string } | { kind: "installation"; id: number } | { kind: "app" };

export async function startFakeGitHub(options: FakeGitHubOptions = {}): Promise<FakeGitHub> {
  const calls: FakeGitHubCall[] = [];
  const tokens = new Set(options.tokens ?? []);
  const appKey = options.app ? (typeof options.app.publicKey === "string" ? createPublicKey(options.app.publicKey) : options.app.publicKey) : null;
  const issued = new Map<string, { installation: number; expiresAt: number }>();
  const deployments = new Map<string, FakeDeployment[]>();
  const statuses = new Map<number, FakeDeploymentStatus[]>();
  const hooks = new Map<string, FakeHook[]>();
  const hookDeliveries = new Map<number, FakeHookDelivery[]>();
  const repoIds = new Map<string, number>();
  let pingSecret: string | null = null;
  let loopbackRefused = false;
  const repoId = (repo: string) => repoIds.get(repo) ?? (repoIds.set(repo, 500_000 + repoIds.size), repoIds.get(repo)!);
  let offset = 0;
  let nextId = 1000;
  let failures: { left: number; status: number } = { left: 0, status: 502 };
  let limitedUntil = 0;
  let delayMs = 0;
  let unanswered = 0;
  const now = () => Date.now() + offset;

  function reply(res: ServerResponse, body: unknown, status: number, call: FakeGitHubCall, headers: Record<string, string> = {}): void {
    call.status = status;
    if (call.method === "POST" && unanswered > 0) {
      unanswered -= 1;
      return; // done, never answered (the connection closes with the server)
    }
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(status, { "content-type": typeof body === "string" ? "text/plain" : "application/json; charset=utf-8", ...headers });
    res.end(text);
  }

  /** Who the Authorization header says is calling, or the 401 GitHub would give. */
  function authenticate(header: string | undefined): Caller | { error: string } {
    if (header === undefined) return { error: "Requires authentication" };
    const m = /^(Bearer|token) (\S+)$/i.exec(header);
    const credential = m?.[2];
    if (!m || credential === undefined) return { error: "Bad credentials" };
    if (tokens.has(credential)) return { kind: "token", token: credential };
    const minted = issued.get(credential);
    if (minted) return minted.expiresAt > now() ? { kind: "installation", id: minted.installation } : { error: "Bad credentials" };
    if (credential.split(".").length === 3 && m[1]?.toLowerCase() === "bearer") {
      const why = verifyJwt(credential);
      return why === null ? { kind: "app" } : { error: why };
    }
    return { error: "Bad credentials" };
  }

  function verifyJwt(jwt: string): string | null {
    if (!appKey || !options.app) return "A JSON web token could not be decoded";
    const [head = "", claims = "", signature = ""] = jwt.split(".");
    const header = decodeJson(head);
    const payload = decodeJson(claims);
    if (!isRecord(header) || header.alg !== "RS256" || !isRecord(payload)) return "A JSON web token could not be decoded";
    if (!verify("RSA-SHA256", Buffer.from(`${head}.${claims}`), appKey, Buffer.from(signature, "base64url"))) return "A JSON web token could not be decoded";
    const seconds = Math.floor(now() / 1000);
    const { iat, exp, iss } = payload;
    if (typeof iat !== "number" || typeof exp !== "number") return "Missing 'issued at' or 'expiration time' claim";
    if (String(iss) !== options.app.id) return "'Issuer' claim ('iss') must be the GitHub App ID";
    if (iat > seconds + 60) return "'Issued at' claim ('iat') must be an Integer representing a time in the past.";
    if (exp <= seconds) return `'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.`;
    if (exp - iat > 600 || exp > seconds + 660) return "'Expiration time' claim ('exp') is too far in the future";
    return null;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const method = req.method ?? "GET";
    const call: FakeGitHubCall = { method, path, headers: req.headers, body: parseJson(raw), status: 0 };
    calls.push(call);
    const answer = (status: number, body: unknown, headers?: Record<string, string>) => reply(res, body, status, call, headers);

    if (failures.left > 0) {
      failures.left -= 1;
      return answer(failures.status, `<html><body><h1>${failures.status} Server Error</h1></body></html>`);
    }
    if (!req.headers["user-agent"]) {
      return answer(403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).");
    }
    const version = req.headers["x-github-api-version"];
    if (version !== "2022-11-28") return answer(400, { message: version ? `API version ${version} is not supported.` : "X-GitHub-Api-Version is required (hookrelay sends 2022-11-28)", documentation_url: DOCS });
    if (!(req.headers.accept ?? "").includes("application/vnd.github+json")) return answer(400, { message: "Accept must be application/vnd.github+json", documentation_url: DOCS });
    if (raw !== "" && call.body === null) return answer(400, { message: "Problems parsing JSON", documentation_url: DOCS });

    const caller = authenticate(req.headers.authorization);
    if ("error" in caller) return answer(401, { message: caller.error, documentation_url: DOCS });
    const reset = Math.ceil(limitedUntil / 1000);
    if (now() < limitedUntil) {
      return answer(403, { message: "API rate limit exceeded for installation.", documentation_url: DOCS }, { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000", "x-ratelimit-reset": String(reset) });
    }
    const limits = { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999", "x-ratelimit-reset": String(Math.ceil(now() / 1000) + 3600) };
    const notFound = () => answer(404, { message: "Not Found", documentation_url: DOCS });

    let m: RegExpExecArray | null;
    if ((m = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path)) && method === "POST") {
      if (caller.kind !== "app") return answer(401, { message: "A JSON web token could not be decoded", documentation_url: DOCS });
      const id = Number(m[1]);
      if (!Object.values(options.app?.installations ?? {}).includes(id)) return notFound();
      const token = `ghs_${randomBytes(18).toString("hex")}`;
      const expiresAt = Math.floor((now() + (options.tokenTtlMs ?? 3_600_000)) / 1000) * 1000;
      issued.set(token, { installation: id, expiresAt });
      return answer(201, { token, expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"), permissions: { deployments: "write" }, repository_selection: "selected" }, limits);
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/installation$/.exec(path)) && method === "GET") {
      if (caller.kind !== "app") return answer(401, { message: "A JSON web token could not be decoded", documentation_url: DOCS });
      const id = options.app?.installations[decodeURIComponent(m[1] ?? "")];
      return id === undefined ? notFound() : answer(200, { id, app_id: Number(options.app?.id), target_type: "User", account: { login: m[1]?.split("/")[0] } }, limits);
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/hooks(?:\/(\d+)(?:\/(deliveries|pings))?)?$/.exec(path))) {
      const repo = decodeURIComponent(m[1] ?? "");
      if (caller.kind !== "token") return notFound();
      const allowed = options.hookAccess?.[caller.token];
      if (allowed && !allowed.includes(repo)) return notFound();
      return hooksApi(repo, m[2] === undefined ? null : Number(m[2]), m[3] ?? null, method, call, answer, limits);
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/deployments(?:\/(\d+)\/statuses)?$/.exec(path);
    if (!m || (method !== "POST" && method !== "GET")) return notFound();
    const repo = decodeURIComponent(m[1] ?? "");
    if (caller.kind === "app") return answer(401, { message: "Bad credentials", documentation_url: DOCS });
    if (caller.kind === "installation" && options.app?.installations[repo] !== caller.id) return notFound();
    if (method === "GET") {
      // GitHub's lists: newest first, `per_page` (default 30, at most 100); deployments filtered by sha and environment.
      const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
      const perPage = Math.min(100, Math.max(1, Number(query.get("per_page") ?? 30) || 30));
      if (m[2] === undefined) {
        const list = (deployments.get(repo) ?? [])
          .filter((d) => (query.get("sha") === null || d.ref === query.get("sha")) && (query.get("environment") === null || d.environment === query.get("environment")))
          .reverse()
          .slice(0, perPage);
        return answer(200, list.map((d) => ({ ...d, sha: d.ref, task: "deploy" })), limits);
      }
      const id = Number(m[2]);
      if (!(deployments.get(repo) ?? []).some((d) => d.id === id)) return notFound();
      return answer(200, [...(statuses.get(id) ?? [])].reverse().slice(0, perPage), limits);
    }
    const body = isRecord(call.body) ? call.body : {};
    const invalid = (field: string, message: string) => answer(422, { message: "Validation Failed", errors: [{ resource: m?.[2] ? "DeploymentStatus" : "Deployment", code: "custom", field, message }], documentation_url: DOCS });
    const description = body.description;
    if (description !== undefined && description !== null && typeof description !== "string") return invalid("description", "description is not a string");
    if (typeof description === "string" && Array.from(description).length > DESCRIPTION_MAX) return invalid("description", `description is too long (maximum is ${DESCRIPTION_MAX} characters)`);

    if (m[2] === undefined) {
      const ref = body.ref;
      if (typeof ref !== "string" || ref === "") return answer(422, { message: 'Invalid request.\n\n"ref" wasn\'t supplied.', documentation_url: DOCS });
      if (body.auto_merge !== false) return answer(409, { message: `Conflict merging main into ${ref}.`, documentation_url: DOCS });
      if (!Array.isArray(body.required_contexts) || body.required_contexts.length !== 0) {
        return answer(409, { message: "Conflict: Commit status checks failed for main.", errors: [{ contexts: [{ context: "ci/build", state: "pending" }], resource: "Deployment", field: "required_contexts" }], documentation_url: DOCS });
      }
      if (body.environment !== undefined && typeof body.environment !== "string") return invalid("environment", "environment is not a string");
      for (const flag of ["production_environment", "transient_environment"] as const) {
        if (body[flag] !== undefined && typeof body[flag] !== "boolean") return invalid(flag, `${flag} is not a boolean`);
      }
      const deployment: FakeDeployment = {
        id: nextId++,
        ref,
        environment: typeof body.environment === "string" ? body.environment : "production",
        description: typeof description === "string" ? description : null,
        production_environment: typeof body.production_environment === "boolean" ? body.production_environment : null,
        transient_environment: typeof body.transient_environment === "boolean" ? body.transient_environment : null,
        payload: body.payload ?? {},
        creator: caller.kind === "token" ? `token:${caller.token}` : `installation:${caller.id}`,
      };
      deployments.set(repo, [...(deployments.get(repo) ?? []), deployment]);
      statuses.set(deployment.id, []);
      return answer(201, { ...deployment, url: `${fakeUrl}/repos/${repo}/deployments/${deployment.id}`, sha: ref, task: "deploy", created_at: new Date(now()).toISOString() }, limits);
    }

    const id = Number(m[2]);
    if (!(deployments.get(repo) ?? []).some((d) => d.id === id)) return notFound();
    if (typeof body.state !== "string" || !STATES.has(body.state)) return invalid("state", `state is not included in the list`);
    for (const field of ["log_url", "environment_url", "environment", "target_url"] as const) {
      // Stricter than GitHub (which documents strings): hookrelay leaves a field out rather than send null.
      if (body[field] !== undefined && typeof body[field] !== "string") return invalid(field, `${field} is not a string`);
    }
    const str = (v: unknown) => (typeof v === "string" ? v : null);
    const status: FakeDeploymentStatus = { id: nextId++, state: body.state, description: str(description), environment: str(body.environment), log_url: str(body.log_url), environment_url: str(body.environment_url) };
    statuses.get(id)?.push(status);
    return answer(201, { ...status, created_at: new Date(now()).toISOString() }, limits);
  }

  /** GitHub's view of a hook: the secret masked. */
  function hookView(repo: string, h: FakeHook): Record<string, unknown> {
    const { secret, ...config } = h.config;
    const base = `${fakeUrl}/repos/${repo}/hooks/${h.id}`;
    const last = hookDeliveries.get(h.id)?.[0];
    return {
      type: "Repository", id: h.id, name: h.name, active: h.active, events: h.events,
      config: { ...config, ...(secret !== undefined ? { secret: "********" } : {}) },
      updated_at: h.updated_at, created_at: h.created_at,
      url: base, test_url: `${base}/test`, ping_url: `${base}/pings`, deliveries_url: `${base}/deliveries`,
      last_response: last ? { code: last.status_code, status: last.status_code === 200 ? "active" : "misconfigured", message: last.status } : { code: null, status: "unused", message: null },
    };
  }

  function hooksApi(
    repo: string,
    id: number | null,
    sub: string | null,
    method: string,
    call: FakeGitHubCall,
    answer: (status: number, body: unknown, headers?: Record<string, string>) => void,
    limits: Record<string, string>,
  ): void {
    const list = hooks.get(repo) ?? [];
    const notFound = () => answer(404, { message: "Not Found", documentation_url: DOCS });
    const invalid = (message: string, field?: string) =>
      answer(422, { message: "Validation Failed", errors: [{ resource: "Hook", code: "custom", ...(field ? { field } : {}), message }], documentation_url: DOCS });
    const body = isRecord(call.body) ? call.body : {};
    /** The checked fields of a create or update body, or the 422 already sent. */
    const validate = (current: FakeHook | null): Pick<FakeHook, "active" | "events" | "config"> | null => {
      if (body.config !== undefined && !isRecord(body.config)) return invalid("config is not an object", "config"), null;
      const given = isRecord(body.config) ? body.config : current ? {} : null;
      if (given === null) return invalid("Config must contain URL for webhooks", "config"), null;
      const config = { ...(current?.config ?? {}), ...given } as Record<string, unknown>;
      if (typeof config.url !== "string" || config.url === "") return invalid("Config must contain URL for webhooks", "config"), null;
      let parsed: URL | null = null;
      try {
        parsed = new URL(config.url);
      } catch {
        // below
      }
      if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) return invalid(`Config url is not a valid URL (${config.url})`, "config"), null;
      if (loopbackRefused && /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(parsed.hostname)) {
        return invalid(`Sorry, the URL host ${parsed.hostname} is not supported because it isn't reachable over the public Internet`, "config"), null;
      }
      const contentType = config.content_type ?? "form";
      if (contentType !== "json" && contentType !== "form") return invalid(`Config content_type must be json or form`, "config"), null;
      const insecure = config.insecure_ssl ?? "0";
      if (insecure !== "0" && insecure !== "1" && insecure !== 0 && insecure !== 1) return invalid("Config insecure_ssl must be 0 or 1", "config"), null;
      if (config.secret !== undefined && typeof config.secret !== "string") return invalid("Config secret is not a string", "config"), null;
      const events = body.events ?? current?.events ?? ["push"];
      if (!Array.isArray(events) || events.some((e) => typeof e !== "string")) return invalid("events is not an array of strings", "events"), null;
      const unknown = (events as string[]).filter((e) => !HOOK_EVENT_NAMES.has(e));
      if (unknown.length > 0) return invalid(`Invalid event(s): ${unknown.join(", ")}`, "events"), null;
      if (body.active !== undefined && typeof body.active !== "boolean") return invalid("active is not a boolean", "active"), null;
      if (list.some((h) => h !== current && h.config.url === config.url)) return invalid("Hook already exists on this repository"), null;
      return {
        active: typeof body.active === "boolean" ? body.active : (current?.active ?? true),
        events: [...new Set(events as string[])],
        config: { url: config.url, content_type: contentType as string, insecure_ssl: String(insecure), ...(typeof config.secret === "string" ? { secret: config.secret } : {}) },
      };
    };

    if (id === null) {
      if (method === "GET") return answer(200, list.map((h) => hookView(repo, h)), limits);
      if (method !== "POST") return notFound();
      if (body.name !== undefined && body.name !== "web") return invalid(`Name must be "web"`, "name");
      const fields = validate(null);
      if (!fields) return;
      const at = new Date(now()).toISOString().replace(/\.\d{3}Z$/, "Z");
      const hook: FakeHook = { id: nextId++, name: "web", ...fields, created_at: at, updated_at: at };
      hooks.set(repo, [...list, hook]);
      hookDeliveries.set(hook.id, []);
      answer(201, hookView(repo, hook), limits);
      if (hook.active) void sendPing(repo, hook);
      return;
    }
    const hook = list.find((h) => h.id === id);
    if (!hook) return notFound();
    if (sub === "deliveries") {
      if (method !== "GET") return notFound();
      return answer(200, (hookDeliveries.get(id) ?? []).map(({ request: _req, response: _res, ...d }) => d), limits);
    }
    if (sub === "pings") {
      if (method !== "POST") return notFound();
      answer(204, "", limits);
      void sendPing(repo, hook);
      return;
    }
    if (method === "GET") return answer(200, hookView(repo, hook), limits);
    if (method !== "PATCH") return notFound();
    const fields = validate(hook);
    if (!fields) return;
    Object.assign(hook, fields, { updated_at: new Date(now()).toISOString().replace(/\.\d{3}Z$/, "Z") });
    answer(200, hookView(repo, hook), limits);
    if (hook.active) void sendPing(repo, hook);
  }

  /** What GitHub does after creating a hook: a signed `ping` to its URL, recorded as a delivery. */
  async function sendPing(repo: string, hook: FakeHook): Promise<void> {
    const guid = randomUUID();
    const { secret: _secret, ...config } = hook.config;
    const text = JSON.stringify({
      zen: "Keep it logically awesome.",
      hook_id: hook.id,
      hook: { type: "Repository", id: hook.id, name: hook.name, active: hook.active, events: hook.events, config, updated_at: hook.updated_at, created_at: hook.created_at },
      repository: { id: repoId(repo), full_name: repo, name: repo.split("/")[1] },
      sender: { login: repo.split("/")[0], type: "User" },
    });
    const headers: Record<string, string> = {
      "user-agent": "GitHub-Hookshot/fake",
      "content-type": "application/json",
      "x-github-event": "ping",
      "x-github-delivery": guid,
      "x-github-hook-id": String(hook.id),
      "x-github-hook-installation-target-type": "repository",
      "x-github-hook-installation-target-id": String(repoId(repo)),
    };
    const secret = pingSecret ?? hook.config.secret;
    if (secret) headers["x-hub-signature-256"] = `sha256=${createHmac("sha256", secret).update(text).digest("hex")}`;
    const started = Date.now();
    let statusCode = 0;
    let status: string;
    let responseBody = "";
    try {
      const res = await fetch(hook.config.url, { method: "POST", headers, body: text, signal: AbortSignal.timeout(10_000), redirect: "manual" });
      statusCode = res.status;
      responseBody = (await res.text()).slice(0, 2000);
      status = res.ok ? "OK" : `Invalid HTTP Response: ${res.status}`;
    } catch (e) {
      status = `failed to connect to host (${e instanceof Error ? e.message : String(e)})`;
    }
    const delivery: FakeHookDelivery = {
      id: nextId++,
      guid,
      delivered_at: new Date(now()).toISOString().replace(/\.\d{3}Z$/, "Z"),
      redelivery: false,
      duration: (Date.now() - started) / 1000,
      status,
      status_code: statusCode,
      event: "ping",
      action: null,
      installation_id: null,
      repository_id: repoId(repo),
      request: { headers, body: text },
      response: { body: responseBody },
    };
    hookDeliveries.set(hook.id, [delivery, ...(hookDeliveries.get(hook.id) ?? [])]);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`fake-github: ${e instanceof Error ? e.message : String(e)}`);
    });
  });
  server.on("error", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const fakeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: fakeUrl,
    calls,
    tokens,
    deployments: (repo) => deployments.get(repo) ?? [],
    hooks: (repo) => hooks.get(repo) ?? [],
    deliveries: (repo, id) => ((hooks.get(repo) ?? []).some((h) => h.id === id) ? (hookDeliveries.get(id) ?? []) : []),
    setHookSecret(repo, id, secret) {
      const hook = (hooks.get(repo) ?? []).find((h) => h.id === id);
      if (!hook) throw new Error(`fake-github: no hook ${id} on ${repo}`);
      hook.config.secret = secret;
    },
    refuseLoopbackUrls(on) {
      loopbackRefused = on;
    },
    signPingsWith(secret) {
      pingSecret = secret;
    },
    statusesOf: (repo, id) => ((deployments.get(repo) ?? []).some((d) => d.id === id) ? (statuses.get(id) ?? []) : []),
    failNext(n, status = 502) {
      failures = { left: n, status };
    },
    rateLimitFor(ms) {
      limitedUntil = now() + ms;
      return Math.ceil(limitedUntil / 1000);
    },
    applyWithoutAnswer(n) {
      unanswered = n;
    },
    delayAnswers(ms) {
      delayMs = ms;
    },
    revokeInstallationTokens: () => issued.clear(),
    now,
    advance(ms) {
      offset += ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return text === "" ? null : JSON.parse(text);
  } catch {
    return null;
  }
}

function decodeJson(part: string): unknown {
  return parseJson(Buffer.from(part, "base64url").toString("utf8"));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
