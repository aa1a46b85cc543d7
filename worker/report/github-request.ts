/** One call to GitHub's REST API with the headers every call needs, answered as a SendOutcome. Runtime-neutral. */
import { classifyResponse, fetchWithin, type SendOutcome } from "./outcome.ts";

export const GITHUB_API_VERSION = "2022-11-28";
/** GitHub refuses a request without a User-Agent (403). */
export const GITHUB_USER_AGENT = "hookrelay";
/** A call that hangs would hold the alarm pass; it is retried later instead. */
const TIMEOUT_MS = 15_000;

export interface GitHubCall {
  method: "GET" | "POST";
  /** Path under the API base, starting with "/". */
  path: string;
  token: string;
  body?: unknown;
  /** Said in the error before the call ("creating the deployment"). */
  step: string;
  /** The secret(s) a 401 points at. */
  unauthorized: string;
}

export function gitHubHeaders(token: string, withBody: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    accept: "application/vnd.github+json",
    "x-github-api-version": GITHUB_API_VERSION,
    "user-agent": GITHUB_USER_AGENT,
    authorization: `Bearer ${token}`,
  };
  if (withBody) headers["content-type"] = "application/json";
  return headers;
}

/** The outcome, and the HTTP status when there was an answer (null for a network error or timeout). */
export interface GitHubAnswer {
  outcome: SendOutcome;
  status: number | null;
}

/** Like outcome.ts's sendRequest, but keeps the status: a 401 or 404 tells the App auth to drop its cache. */
export async function callGitHub(apiUrl: string, call: GitHubCall, now: number): Promise<GitHubAnswer> {
  const withBody = call.body !== undefined;
  const init: RequestInit = { method: call.method, headers: gitHubHeaders(call.token, withBody) };
  if (withBody) init.body = JSON.stringify(call.body);
  const what = `GitHub ${call.step} (${call.method} ${call.path})`;
  let answer: { res: Response; text: string };
  try {
    answer = await fetchWithin(`${apiUrl}${call.path}`, init, TIMEOUT_MS);
  } catch (e) {
    return { outcome: { kind: "retry", error: `${what}: ${e instanceof Error ? e.message : String(e)}`, notBefore: null }, status: null };
  }
  return { outcome: classifyResponse(answer.res, answer.text, now, what, call.unauthorized), status: answer.res.status };
}

/** `/repos/owner/name`, each part encoded (the name was validated at the webhook edge; this keeps the path a path anyway). */
export function repoPath(repo: string): string {
  const slash = repo.indexOf("/");
  return `/repos/${encodeURIComponent(repo.slice(0, slash))}/${encodeURIComponent(repo.slice(slash + 1))}`;
}
