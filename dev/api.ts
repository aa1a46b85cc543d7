/** The worker's admin API, as an operator (or the dashboard) uses it. */
import { eventually } from "./eventually.ts";
import { TEST_SECRETS } from "./worker-process.ts";

export async function api(url: string, path: string, init: RequestInit = {}, token: string = TEST_SECRETS.ADMIN_TOKEN): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(`${url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    /* plain text (logs) */
  }
  return { status: res.status, body, text };
}

/** POST /api/targets/:target/agents: registers `name` and returns its token (shown once). */
export async function registerAgent(url: string, target: string, name: string): Promise<string> {
  const r = await api(url, `/api/targets/${target}/agents`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name }) });
  if (r.status !== 201) throw new Error(`registering agent ${name} in target ${target}: ${r.status} ${r.text}`);
  tokens.set(`${url} ${target} ${name}`, r.body.token);
  return r.body.token;
}

const tokens = new Map<string, string>();
/**
 * The agent's own token, registered through the admin API on first use; the same token after that
 * (a restarted agent, or a second process with the same name, uses it too).
 */
export async function agentToken(url: string, target: string, name: string): Promise<string> {
  return tokens.get(`${url} ${target} ${name}`) ?? registerAgent(url, target, name);
}

/** A job's final statuses (`skipped`: a halted rollout never started it; nothing ran there). */
export const FINAL = ["succeeded", "failed", "timed_out", "canceled", "superseded", "interrupted", "skipped"];

/** A deployment's final statuses. */
export const DEPLOYMENT_FINAL = ["succeeded", "failed", "canceled", "superseded", "blocked"];

/** GET /api/targets/:target/deployments/:id: the deployment with its jobs (rollout order) and their steps. */
export async function getDeployment(url: string, target: string, id: string): Promise<any> {
  const r = await api(url, `/api/targets/${target}/deployments/${id}`);
  if (r.status !== 200) throw new Error(`deployment ${id}: ${r.status} ${r.text}`);
  return r.body;
}

/** Wait until the deployment reaches one of `statuses` (default: any final status) and return its JSON. */
export async function waitForDeployment(url: string, target: string, id: string, statuses: string[] = DEPLOYMENT_FINAL, timeoutMs = 60_000): Promise<any> {
  let last = "unread";
  try {
    return await eventually(
      `deployment ${id} to be ${statuses.join("|")}`,
      async () => {
        const r = await api(url, `/api/targets/${target}/deployments/${id}`);
        last = r.status === 200 ? `${r.body.status}; jobs ${(r.body.jobs ?? []).map((j: any) => `${j.agent} ${j.status}`).join(", ")}` : `${r.status} ${r.text.slice(0, 200)}`;
        return r.status === 200 && statuses.includes(r.body.status) ? r.body : undefined;
      },
      timeoutMs,
      100,
    );
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)} (last seen: ${last})`);
  }
}

/** Wait until the job reaches one of `statuses` (default: any final status) and return its JSON. */
export async function waitForJob(url: string, target: string, id: string, statuses: string[] = FINAL, timeoutMs = 60_000): Promise<any> {
  return eventually(
    `job ${id} to be ${statuses.join("|")}`,
    async () => {
      const r = await api(url, `/api/targets/${target}/jobs/${id}`);
      return r.status === 200 && statuses.includes(r.body.status) ? r.body : undefined;
    },
    timeoutMs,
    100,
  );
}

/**
 * The job once it reaches a final status, or as it stands when `timeoutMs` has passed (no throw):
 * for tests that report what a stuck job's status was rather than only that a wait timed out.
 */
export async function jobWhenSettled(url: string, target: string, id: string, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api(url, `/api/targets/${target}/jobs/${id}`);
    if (r.status === 200 && (FINAL.includes(r.body.status) || Date.now() > deadline)) return r.body;
    if (Date.now() > deadline) return { id, status: `unreadable (${r.status} ${r.text.slice(0, 200)})` };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function jobLog(url: string, target: string, id: string, step?: string): Promise<string> {
  const r = await api(url, `/api/targets/${target}/jobs/${id}/log${step ? `?step=${encodeURIComponent(step)}` : ""}`);
  if (r.status !== 200) throw new Error(`log of ${id}: ${r.status} ${r.text}`);
  return r.text;
}

export async function waitForAgent(url: string, target: string, name: string, timeoutMs = 30_000): Promise<any> {
  return eventually(
    `agent ${name} connected to target ${target}`,
    async () => {
      const r = await api(url, `/api/targets/${target}/agents`);
      return r.status === 200 ? r.body.agents.find((a: any) => a.name === name && a.connected) : undefined;
    },
    timeoutMs,
  );
}
