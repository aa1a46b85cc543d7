/**
 * Telling GitHub about deployments (the Deployments API): whether it is configured (`gitHubSetup`),
 * and the two calls the outbox makes — create the deployment, add a status. Each call comes back as a
 * SendOutcome; nothing here throws for an answer GitHub gives. Runtime-neutral (workerd and Node).
 */
import { GitHubAppAuth } from "./github-app.ts";
import { type GitHubAuth, TokenAuth } from "./github-auth.ts";
import { parsePrivateKeyPem } from "./github-key.ts";
import { callGitHub, repoPath } from "./github-request.ts";
import type { SendOutcome } from "./outcome.ts";

export interface GitHubVars {
  GITHUB_TOKEN?: string;
  GITHUB_APP_ID?: string;
  GITHUB_APP_PRIVATE_KEY?: string;
  GITHUB_API_URL?: string;
}

export type GitHubSetup = { state: "off"; why: string } | { state: "broken"; why: string } | { state: "on"; client: GitHubClient };

export const DEFAULT_GITHUB_API_URL = "https://api.github.com";
export const GITHUB_OFF = "GitHub reporting is off: set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY";
/** GitHub answers 422 for a deployment or status description longer than this (in characters). */
export const GITHUB_DESCRIPTION_MAX = 140;

/** Reads the configuration; cheap, never throws. A `why` names secrets, never their values. */
export function gitHubSetup(vars: GitHubVars): GitHubSetup {
  const token = present(vars.GITHUB_TOKEN);
  const appId = present(vars.GITHUB_APP_ID);
  const key = present(vars.GITHUB_APP_PRIVATE_KEY);
  if (token === null && appId === null && key === null) return { state: "off", why: GITHUB_OFF };
  const broken = (why: string): GitHubSetup => ({ state: "broken", why: `GitHub reporting is off: ${why}` });
  const apiUrl = parseApiUrl(vars.GITHUB_API_URL);
  if (apiUrl === null) return broken("GITHUB_API_URL is not an http(s) URL (leave it unset for https://api.github.com)");
  if (token !== null && (appId !== null || key !== null)) return broken("set either GITHUB_TOKEN or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY, not both");
  if (token !== null) {
    if (!/^[\x21-\x7e]+$/.test(token)) return broken("GITHUB_TOKEN has spaces or characters no GitHub token has (pasted with a line break?)");
    return { state: "on", client: new GitHubClient(apiUrl, new TokenAuth(token)) };
  }
  if (appId === null) return broken("GITHUB_APP_PRIVATE_KEY is set but GITHUB_APP_ID is not");
  if (key === null) return broken("GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY is not");
  if (!/^(\d{1,20}|Iv[0-9A-Za-z._-]{1,60})$/.test(appId)) return broken("GITHUB_APP_ID is not an App ID (a number) or a client ID (Iv…)");
  const parsed = parsePrivateKeyPem(key);
  if (!parsed.ok) return broken(`GITHUB_APP_PRIVATE_KEY ${parsed.why}`);
  return { state: "on", client: new GitHubClient(apiUrl, new GitHubAppAuth(apiUrl, appId, parsed.pkcs8)) };
}

function present(value: string | undefined): string | null {
  const trimmed = value?.trim() ?? "";
  return trimmed === "" ? null : trimmed;
}

function parseApiUrl(value: string | undefined): string | null {
  const raw = present(value) ?? DEFAULT_GITHUB_API_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") return null;
  return raw.replace(/\/+$/, "");
}

export interface DeploymentInput {
  sha: string;
  environment: string;
  description: string;
  production: boolean;
  /** GitHub's transient_environment: an environment that goes away (a review app). */
  transient: boolean;
  payload: { target: string; deployment: string };
}

/** GitHub's deployment states; the outbox sends (pending while a gate waits →) queued → in_progress → success | failure | error (inactive for superseded). */
export type GitHubStatusState = "pending" | "queued" | "in_progress" | "success" | "failure" | "error" | "inactive";

export interface StatusInput {
  state: GitHubStatusState;
  description: string;
  logUrl: string | null;
  environmentUrl: string | null;
  environment: string;
}

export class GitHubClient {
  readonly apiUrl: string;
  readonly #auth: GitHubAuth;

  constructor(apiUrl: string, auth: GitHubAuth) {
    this.apiUrl = apiUrl;
    this.#auth = auth;
  }

  /** How it authenticates, for the log and the API ("GITHUB_TOKEN", "GitHub App 123"). */
  get auth(): string {
    return this.#auth.label;
  }

  /** POST /repos/{repo}/deployments → sent with body.id (the GitHub deployment id). */
  createDeployment(repo: string, d: DeploymentInput, now: number): Promise<SendOutcome> {
    const body = {
      ref: d.sha,
      environment: d.environment,
      // GitHub's defaults would merge the default branch into the ref and demand every commit status check pass (409s).
      auto_merge: false,
      required_contexts: [],
      description: cutDescription(d.description),
      payload: d.payload,
      production_environment: d.production,
      transient_environment: d.transient,
    };
    return this.#post(repo, "/deployments", body, `creating the deployment of ${d.sha.slice(0, 7)} on ${repo}`, now);
  }

  /** POST /repos/{repo}/deployments/{id}/statuses (`auto_inactive` left at GitHub's default). */
  createStatus(repo: string, githubDeploymentId: number, s: StatusInput, now: number): Promise<SendOutcome> {
    const body: Record<string, string> = { state: s.state, description: cutDescription(s.description), environment: s.environment };
    if (s.logUrl !== null) body.log_url = s.logUrl;
    if (s.environmentUrl !== null) body.environment_url = s.environmentUrl;
    return this.#post(repo, `/deployments/${githubDeploymentId}/statuses`, body, `adding status ${s.state} to deployment ${githubDeploymentId} on ${repo}`, now);
  }

  /**
   * After an attempt whose answer was lost (a timeout, a worker stopped mid-send), GitHub may hold the
   * deployment already: the one made for this hookrelay deployment (its payload names it), as if just
   * created; null when there is none or the list cannot be read (then it is created).
   */
  async findDeployment(repo: string, d: DeploymentInput, now: number): Promise<SendOutcome | null> {
    const query = `?sha=${encodeURIComponent(d.sha)}&environment=${encodeURIComponent(d.environment)}&per_page=100`;
    const list = await this.#get(repo, `/deployments${query}`, `looking for the deployment of ${d.sha.slice(0, 7)} on ${repo}`, now);
    const want = (d.payload as { deployment?: unknown }).deployment;
    const found = list?.find((x) => isObject(x) && isObject(x.payload) && x.payload.deployment === want && typeof x.id === "number");
    return found ? { kind: "sent", status: 200, body: found } : null;
  }

  /** The same for a status: GitHub's newest status of the deployment is this one (state and description). */
  async findStatus(repo: string, githubDeploymentId: number, s: StatusInput, now: number): Promise<SendOutcome | null> {
    const list = await this.#get(repo, `/deployments/${githubDeploymentId}/statuses?per_page=1`, `reading the statuses of deployment ${githubDeploymentId} on ${repo}`, now);
    const newest = list?.[0];
    return isObject(newest) && newest.state === s.state && newest.description === cutDescription(s.description) ? { kind: "sent", status: 200, body: newest } : null;
  }

  /** A GET's JSON array, or null when it is not one (any error: the caller then sends as usual). */
  async #get(repo: string, path: string, step: string, now: number): Promise<unknown[] | null> {
    if (!/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/.test(repo)) return null;
    const got = await this.#auth.tokenFor(repo, now);
    if ("outcome" in got) return null;
    const answer = await callGitHub(this.apiUrl, { method: "GET", path: `${repoPath(repo)}${path}`, token: got.token, step, unauthorized: this.#auth.secrets }, now);
    return answer.outcome.kind === "sent" && Array.isArray(answer.outcome.body) ? answer.outcome.body : null;
  }

  async #post(repo: string, path: string, body: unknown, step: string, now: number): Promise<SendOutcome> {
    if (!/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/.test(repo)) return { kind: "fail", error: `GitHub ${step}: ${JSON.stringify(repo)} is not owner/name` };
    const got = await this.#auth.tokenFor(repo, now);
    if ("outcome" in got) return got.outcome;
    const answer = await callGitHub(this.apiUrl, { method: "POST", path: `${repoPath(repo)}${path}`, token: got.token, body, step, unauthorized: this.#auth.secrets }, now);
    if (answer.status === 401 || answer.status === 404) this.#auth.refused(repo);
    return answer.outcome;
  }
}

/**
 * At most 140 characters, cut with "…". GitHub counts characters (code points), not bytes or UTF-16
 * units, so an emoji counts once and is never split in half.
 */
export function cutDescription(text: string): string {
  const chars = Array.from(text);
  return chars.length <= GITHUB_DESCRIPTION_MAX ? text : `${chars.slice(0, GITHUB_DESCRIPTION_MAX - 1).join("")}…`;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
