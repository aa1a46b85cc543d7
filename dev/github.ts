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

export interface RunFields {
  /** The repository the webhook is for ("owner/name"). */
  repo: string;
  /** The commit the run ran on. */
  sha: string;
  /** The workflow's name, as `wait_for.workflows` names it. Default "CI". */
  name?: string;
  /** success, failure, neutral, skipped, cancelled, timed_out, action_required… Default "success". */
  conclusion?: string;
  /** The repository the run's head commit came from: another one for a fork's pull request. Default `repo`. */
  headRepo?: string;
  headBranch?: string;
  /** Default "completed". */
  action?: string;
  /** The run's id (its html_url ends with it). Default: a new one per call. */
  id?: number;
  runAttempt?: number;
}

let runs = 0;

/** A repository object as GitHub puts it in a webhook payload (the fields hookrelay or a reader may look at). */
function repositoryObject(fullName: string, id: number): Record<string, unknown> {
  const [owner = "", name = ""] = fullName.split("/");
  return {
    id,
    node_id: `R_${id}`,
    name,
    full_name: fullName,
    private: false,
    owner: { login: owner, id: id + 1, type: "Organization" },
    html_url: `https://github.com/${fullName}`,
    fork: false,
    default_branch: "main",
  };
}

/**
 * A completed `workflow_run` delivery shaped like GitHub's own example (@octokit/webhooks-examples,
 * workflow_run.completed): `workflow_run.{id, name, head_branch, head_sha, status, conclusion, html_url,
 * run_attempt, updated_at, head_repository}`, `workflow`, `repository`, `sender`. Like GitHub's, no two
 * are byte-identical (a new run id per call, `updated_at` now). Send it with
 * `sendWebhook(url, {event: "workflow_run", …})`.
 */
export function workflowRunPayload(f: RunFields): Record<string, unknown> {
  runs++;
  const id = f.id ?? 7_000_000_000 + Date.now() % 1_000_000_000 + runs;
  const name = f.name ?? "CI";
  const now = new Date().toISOString();
  const repository = repositoryObject(f.repo, 100_001);
  const headRepository = f.headRepo === undefined || f.headRepo === f.repo ? repository : { ...repositoryObject(f.headRepo, 200_002), fork: true };
  return {
    action: f.action ?? "completed",
    workflow_run: {
      id,
      name,
      node_id: `WFR_${id}`,
      head_branch: f.headBranch ?? "main",
      head_sha: f.sha,
      path: ".github/workflows/ci.yml",
      display_title: `test commit ${runs}`,
      run_number: runs,
      event: "push",
      status: f.action === undefined || f.action === "completed" ? "completed" : "in_progress",
      conclusion: f.action === undefined || f.action === "completed" ? (f.conclusion ?? "success") : null,
      workflow_id: 4242,
      check_suite_id: id + 1,
      url: `https://api.github.com/repos/${f.repo}/actions/runs/${id}`,
      html_url: `https://github.com/${f.repo}/actions/runs/${id}`,
      pull_requests: [],
      created_at: now,
      updated_at: now,
      run_attempt: f.runAttempt ?? 1,
      run_started_at: now,
      head_commit: { id: f.sha, tree_id: "0".repeat(40), message: `test commit ${runs}`, timestamp: now },
      repository,
      head_repository: headRepository,
    },
    workflow: { id: 4242, node_id: "W_4242", name, path: ".github/workflows/ci.yml", state: "active", html_url: `https://github.com/${f.repo}/blob/main/.github/workflows/ci.yml` },
    repository,
    sender: { login: "octocat", id: 1, type: "User" },
  };
}

/**
 * A `check_run` delivery shaped like GitHub's `check_run.completed` example: a check (any CI app) named
 * `name` (`wait_for.checks`) on `sha`. Its suite names the head branch (`headBranch`, default "main");
 * GitHub leaves it null for a fork's head, which the worker reads as a fork's run.
 */
export function checkRunPayload(f: Omit<RunFields, "headRepo" | "runAttempt"> & { headBranch?: string | null }): Record<string, unknown> {
  runs++;
  const id = f.id ?? 8_000_000_000 + (Date.now() % 1_000_000_000) + runs;
  const now = new Date().toISOString();
  const completed = f.action === undefined || f.action === "completed";
  return {
    action: f.action ?? "completed",
    check_run: {
      id,
      name: f.name ?? "lint",
      node_id: `CR_${id}`,
      head_sha: f.sha,
      status: completed ? "completed" : "in_progress",
      conclusion: completed ? (f.conclusion ?? "success") : null,
      started_at: now,
      completed_at: completed ? now : null,
      html_url: `https://github.com/${f.repo}/runs/${id}`,
      check_suite: { id: id + 1, head_branch: f.headBranch === undefined ? "main" : f.headBranch, head_sha: f.sha, status: "completed", conclusion: null, pull_requests: [] },
      app: { id: 15368, slug: "github-actions", name: "GitHub Actions" },
    },
    repository: repositoryObject(f.repo, 100_001),
    sender: { login: "octocat", id: 1, type: "User" },
  };
}
