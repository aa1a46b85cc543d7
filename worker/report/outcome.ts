/**
 * What one attempt to send a report (to GitHub, or a notification) came to, for the DO's outbox:
 * sent, worth retrying later, or failed for good. Runtime-neutral: workerd and Node.
 */

export type SendOutcome =
  /** A 2xx answer; `body` is its JSON, or null. */
  | { kind: "sent"; status: number; body: unknown }
  /** A network error, a 5xx, a rate limit (403/429), a 401 (a secret may be fixed meanwhile); not before `notBefore` (ms) when the answer said when. */
  | { kind: "retry"; error: string; notBefore: number | null }
  /** Any other 4xx: sending the same again cannot help. */
  | { kind: "fail"; error: string };

/** A short, single-line excerpt of an answer's body for errors and logs. */
export function excerpt(text: string, max = 200): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function parseJson(text: string): unknown {
  try {
    return text === "" ? null : JSON.parse(text);
  } catch {
    return null;
  }
}

/** When a rate-limited answer says to come back: `retry-after` (seconds or an HTTP date), else `x-ratelimit-reset` (epoch seconds). */
export function retryAt(headers: Headers, now: number): number | null {
  const after = headers.get("retry-after");
  if (after !== null) {
    if (/^\d{1,7}$/.test(after.trim())) return now + Number(after.trim()) * 1000;
    const date = Date.parse(after);
    if (!Number.isNaN(date)) return date;
  }
  const reset = headers.get("x-ratelimit-reset");
  if (reset !== null && /^\d{1,12}$/.test(reset.trim())) return Number(reset.trim()) * 1000;
  return null;
}

/** Classifies an answer. `what` names the call for the error ("GitHub POST /repos/o/r/deployments"); `unauthorized` says which secret a 401 points at. */
export function classifyResponse(res: Response, bodyText: string, now: number, what: string, unauthorized?: string): SendOutcome {
  const status = res.status;
  if (status >= 200 && status < 300) return { kind: "sent", status, body: parseJson(bodyText) };
  const detail = `${what}: ${status}${bodyText ? ` ${excerpt(bodyText)}` : ""}`;
  if (status === 401) return { kind: "retry", error: `${detail}${unauthorized ? ` (check ${unauthorized})` : ""}`, notBefore: null };
  if (status === 429 || (status === 403 && (res.headers.get("x-ratelimit-remaining") === "0" || res.headers.has("retry-after")))) {
    return { kind: "retry", error: `${detail} (rate limited)`, notBefore: retryAt(res.headers, now) };
  }
  if (status >= 500 || status === 408) return { kind: "retry", error: detail, notBefore: null };
  return { kind: "fail", error: detail };
}

/**
 * fetch and the answer's body, given up after `timeoutMs` (a thrown TimeoutError). The timer is cleared
 * once the body is in: `AbortSignal.timeout` kept running its whole span after a quick answer, and a
 * pending timer keeps a Durable Object from being evicted — an object that had sent a report stayed in
 * memory (and billed) 15 s longer than its idle time.
 */
export async function fetchWithin(url: string, init: RequestInit, timeoutMs: number): Promise<{ res: Response; text: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`timeout: no answer within ${timeoutMs / 1000} s`, "TimeoutError")), timeoutMs);
  try {
    const res = await fetch(url, { ...init, signal: controller.signal });
    const text = await res.text().catch(() => "");
    return { res, text };
  } finally {
    clearTimeout(timer);
  }
}

/** fetch, answered as a SendOutcome: a thrown fetch (network, or no answer within `timeoutMs`) is a retry. */
export async function sendRequest(url: string, init: RequestInit, timeoutMs: number, now: number, what: string, unauthorized?: string): Promise<SendOutcome> {
  let answer: { res: Response; text: string };
  try {
    answer = await fetchWithin(url, init, timeoutMs);
  } catch (e) {
    return { kind: "retry", error: `${what}: ${e instanceof Error ? e.message : String(e)}`, notBefore: null };
  }
  return classifyResponse(answer.res, answer.text, now, what, unauthorized);
}
