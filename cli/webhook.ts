/**
 * `hookrelay webhook add --repo OWNER/NAME`: creates (or updates) the repository's webhook for a target
 * through GitHub's REST API (`/repos/{owner}/{repo}/hooks`), with the target's payload URL and its own
 * secret (from the admin API), then waits for GitHub's `ping` delivery and says what the worker answered.
 * The GitHub token and the secret are never printed.
 */
import { errorCode, errorMessage } from "../shared/errors.ts";
import { Client } from "./client.ts";
import type { Io } from "./commands.ts";
import { CliError } from "./output.ts";

export const GITHUB_TOKEN_ENV = "GITHUB_TOKEN";
export const HOOK_EVENTS = ["push", "workflow_run", "check_run"];
const NO_TOKEN = `no GitHub token: set ${GITHUB_TOKEN_ENV} (a token with Repository → Webhooks: Read and write) or pass --token`;

export interface WebhookAddOptions {
  repo: string;
  target: string;
  token?: string;
  json: boolean;
  /** How long to wait for the ping's delivery (ms). */
  waitMs?: number;
  /** Between polls of the deliveries (ms). */
  pollMs?: number;
}

/** The payload URL GitHub posts to for `target`. */
export function payloadUrl(workerUrl: string, target: string): string {
  const base = workerUrl.replace(/\/+$/, "");
  return target === "default" ? `${base}/webhook` : `${base}/webhook/${encodeURIComponent(target)}`;
}

class GitHub {
  readonly api: string;
  private readonly token: string;
  private readonly repo: string;
  /** The hook's payload URL, for the hint on a 422. */
  payloadUrl: string | null = null;
  constructor(api: string, token: string, repo: string) {
    this.api = api;
    this.token = token;
    this.repo = repo;
  }

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const where = `${this.api}${path}`;
    let res: Response;
    try {
      res = await fetch(where, {
        method,
        headers: {
          accept: "application/vnd.github+json",
          authorization: `Bearer ${this.token}`,
          "x-github-api-version": "2022-11-28",
          "user-agent": "hookrelay-cli",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      throw new CliError(`cannot reach GitHub's API at ${this.api} (${errorCode(cause) ?? errorMessage(cause ?? e)}): check GITHUB_API_URL and the network`);
    }
    const text = await res.text();
    let parsed: any = null;
    try {
      parsed = text === "" ? null : JSON.parse(text);
    } catch {
      // not JSON
    }
    if (res.ok) return { status: res.status, body: parsed };
    const message = typeof parsed?.message === "string" ? parsed.message : text.slice(0, 200);
    if (res.status === 401) throw new CliError(`GitHub refused the token (401 ${message}): ${NO_TOKEN.replace(/^no GitHub token: /, "")} with a valid token`);
    if (res.status === 404) {
      throw new CliError(`GitHub answered 404 for ${method} ${path}: the repository ${this.repo} does not exist, or the token cannot manage its hooks (it needs Repository → Webhooks: Read and write on ${this.repo})`);
    }
    if (res.status === 422) {
      const details = Array.isArray(parsed?.errors) ? parsed.errors.map((e: any) => (typeof e === "string" ? e : (e?.message ?? JSON.stringify(e)))).join("; ") : "";
      const local = this.payloadUrl !== null && /^https?:\/\/(localhost|127\.|\[::1\])/.test(this.payloadUrl);
      throw new CliError(`GitHub refused the hook (422): ${message}${details ? ` — ${details}` : ""}${local ? ` (the payload URL ${this.payloadUrl} is on this machine: GitHub needs a public URL, e.g. the deployed worker's)` : ""}`);
    }
    if (res.status === 403) throw new CliError(`GitHub answered 403 (${message}): the token lacks Repository → Webhooks: Read and write on ${this.repo}, or a rate limit was hit`);
    throw new CliError(`GitHub answered ${res.status} to ${method} ${path}: ${message}`);
  }
}

export async function webhookAdd(client: Client, io: Io, o: WebhookAddOptions, env: NodeJS.ProcessEnv): Promise<number> {
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(o.repo)) throw new CliError(`--repo must be OWNER/NAME (e.g. octo/app), not ${JSON.stringify(o.repo)}`, 2);
  const token = (o.token ?? env[GITHUB_TOKEN_ENV] ?? "").trim();
  if (token === "") throw new CliError(NO_TOKEN);
  const apiRaw = env.GITHUB_API_URL?.trim() || "https://api.github.com";
  let api: string;
  try {
    const u = new URL(apiRaw);
    if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error();
    api = apiRaw.replace(/\/+$/, "");
  } catch {
    throw new CliError(`GITHUB_API_URL ${JSON.stringify(apiRaw)} is not an http(s) URL: leave it unset for https://api.github.com`, 2);
  }

  const secret: string = (await client.json("GET", `/api/targets/${encodeURIComponent(o.target)}/webhook-secret`)).body.secret;
  if (typeof secret !== "string" || secret === "") throw new CliError(`the worker gave no webhook secret for target ${o.target}`);
  const url = payloadUrl(client.conn.url, o.target);
  const gh = new GitHub(api, token, o.repo);
  gh.payloadUrl = url;
  const [owner, name] = o.repo.split("/") as [string, string];
  const hooksPath = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/hooks`;
  const config = { url, content_type: "json", secret, insecure_ssl: "0" };

  const existing = ((await gh.call("GET", `${hooksPath}?per_page=100`)).body ?? []) as any[];
  const same = existing.find((h) => h?.config?.url === url);
  // Pings already delivered to this hook: the one to report is a new one.
  const seen = new Set<number>(same ? (((await gh.call("GET", `${hooksPath}/${same.id}/deliveries?per_page=100`)).body ?? []) as any[]).map((d) => d?.id) : []);
  const hook = same
    ? (await gh.call("PATCH", `${hooksPath}/${same.id}`, { active: true, events: HOOK_EVENTS, config })).body
    : (await gh.call("POST", hooksPath, { name: "web", active: true, events: HOOK_EVENTS, config })).body;
  const action = same ? "updated" : "created";
  if (!o.json) io.out(`${action === "created" ? "Created" : "Updated"} ${o.repo}'s webhook ${hook.id}: ${url} (target ${o.target}), events ${HOOK_EVENTS.join(", ")}\n`);
  if (same) await gh.call("POST", `${hooksPath}/${hook.id}/pings`).catch(() => undefined);

  // GitHub sends a ping when a hook is created; after an update we asked for one (POST …/pings).
  const ping = await waitForPing(gh, `${hooksPath}/${hook.id}/deliveries?per_page=100`, seen, o.waitMs ?? 30_000, o.pollMs ?? 500);
  const summary = { id: hook.id, url, events: hook.events ?? HOOK_EVENTS, active: hook.active ?? true, content_type: hook.config?.content_type ?? "json" };
  if (o.json) {
    io.out(JSON.stringify({ hook: summary, [action]: true, ping: ping ? { status_code: ping.status_code, status: ping.status, guid: ping.guid ?? null } : null }, null, 2) + "\n");
    return ping?.status_code === 200 ? 0 : 1;
  }
  if (!ping) {
    io.out(`GitHub's ping has not been delivered after ${Math.round((o.waitMs ?? 30_000) / 1000)} s: look under the hook's Recent Deliveries (Settings → Webhooks) in a moment.\n`);
    return 1;
  }
  if (ping.status_code === 200) {
    io.out(`GitHub's ping reached the worker (200).\n`);
    return 0;
  }
  io.out(`GitHub's ping did not get through: the worker answered ${ping.status_code || "nothing"} (${ping.status ?? "?"}). ${explain(ping.status_code, o.target)}\n`);
  return 1;
}

function explain(code: number, target: string): string {
  if (code === 401) return `401: the hook's secret differs from target ${target}'s; run this command again to set it (after \`hookrelay init --rotate\` it changes).`;
  if (code === 404) return "404: the payload URL does not reach a hookrelay worker's /webhook.";
  if (code === 0) return "GitHub could not connect to the worker: is its URL public?";
  return "See the hook's Recent Deliveries on GitHub for the worker's answer.";
}

/** The newest `ping` delivery not in `seen` (GitHub lists the newest first), polled for up to `waitMs`. */
async function waitForPing(gh: GitHub, path: string, seen: Set<number>, waitMs: number, pollMs: number): Promise<any | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const deliveries = ((await gh.call("GET", path)).body ?? []) as any[];
    const ping = deliveries.find((d) => d?.event === "ping" && !seen.has(d.id));
    if (ping) return ping;
    if (Date.now() >= deadline) return null;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
