/** Helpers for the worker's tests (inside workerd): signed webhooks and a real agent WebSocket. */
import { env, exports } from "cloudflare:workers";
import type { AgentMessage, PipelineDecl, WorkerMessage } from "../../shared/protocol.ts";
import { HEARTBEAT_PING, HEARTBEAT_PONG, helloProtocol, parseWorkerMessage } from "../../shared/protocol.ts";
import { eventually } from "../../dev/eventually.ts";
import { app } from "../../worker/app.ts";
import type { AgentView, DeliveryBody, JobListItem, JobView } from "../../worker/target-object/types.ts";

/** The worker tests wait with the same `eventually` as every other test. */
export { eventually };
/** What the agent sends as a heartbeat; the DO answers it without waking (setWebSocketAutoResponse). */
export const HEARTBEAT = HEARTBEAT_PING;

export const SECRET = "It's a Secret to Everybody";
export const ADMIN = { Authorization: "Bearer test-admin-token-0123456789abcdef" };
export const SHA_A = "a".repeat(40);
export const SHA_B = "b".repeat(40);

let counter = 0;
/** A fresh name per test: every test gets its own Target DO. */
export function uniqueName(prefix = "t"): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

export async function hmacHex(hash: "SHA-256" | "SHA-1", secret: string, body: string | Uint8Array): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash }, false, ["sign"]);
  const data = typeof body === "string" ? new TextEncoder().encode(body) : body;
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

let pushes = 0;
/**
 * A push body. Each call is another push: GitHub's bodies of two pushes always differ (pushed_at,
 * head_commit…) and the webhook dedupes by body, so a test that means a replay sends one string twice.
 */
export function pushPayload(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  pushes += 1;
  return {
    ref: "refs/heads/master",
    before: SHA_A,
    after: SHA_B,
    deleted: false,
    repository: { full_name: "owner/OldManInfo_Flask" },
    pusher: { name: "octocat" },
    head_commit: { message: `test push ${pushes}` },
    ...overrides,
  };
}

/**
 * The webhook secret of `target` as the README tells an operator to put in GitHub's hook: `default`
 * (null: /webhook) takes the configured secret itself, any other target
 * hex(HMAC-SHA256(configured, "hookrelay-target:" + target)). Computed here, not by the worker's code.
 */
export async function targetSecret(configured: string, target: string | null): Promise<string> {
  return target === null || target === "default" ? configured : hmacHex("SHA-256", configured, `hookrelay-target:${target}`);
}

export interface WebhookOptions {
  event?: string;
  delivery?: string;
  hookId?: string;
  /** A configured secret (default SECRET): the delivery is signed with the target's secret derived from it. */
  secret?: string;
  /** The exact HMAC key to sign with, no derivation (a delivery signed for another target). */
  signWith?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

/** A signed webhook POST through the real app, with the test env. */
export async function postWebhook(target: string | null, body: string, o: WebhookOptions = {}, testEnv: Env = env): Promise<Response> {
  const headers: Record<string, string> = {
    "Content-Type": o.contentType ?? "application/json",
    "X-GitHub-Event": o.event ?? "push",
    "X-GitHub-Delivery": o.delivery ?? crypto.randomUUID(),
    "X-GitHub-Hook-ID": o.hookId ?? "1234",
    "X-Hub-Signature-256": `sha256=${await hmacHex("SHA-256", o.signWith ?? (await targetSecret(o.secret ?? SECRET, target)), body)}`,
    ...o.headers,
  };
  return app.request(target === null ? "/webhook" : `/webhook/${target}`, { method: "POST", headers, body }, testEnv);
}

export function pipeline(overrides: Partial<PipelineDecl> = {}): PipelineDecl {
  return {
    name: "app",
    repo: "owner/OldManInfo_Flask",
    events: ["push"],
    branches: ["master"],
    steps: ["fetch", "install", "reload"],
    onFailure: ["rollback"],
    timeoutMs: 30 * 60_000,
    rollout: { batch: 1, haltOnFailure: true },
    ...overrides,
  };
}

export interface TestAgent {
  ws: WebSocket;
  send(message: AgentMessage | string): void;
  /** The next received frame matching `pred` (frames before it that don't match are consumed). */
  next<T extends WorkerMessage["type"]>(type: T, timeoutMs?: number): Promise<Extract<WorkerMessage, { type: T }>>;
  /** Frames received and not yet consumed. */
  pending(): WorkerMessage[];
  /** Resolves with the close frame the worker sent (every wait has a timeout). */
  closed(timeoutMs?: number): Promise<{ code: number; reason: string }>;
  close(): void;
}

/** POST /api/targets/:target/agents: registers `name`, returns its token (shown once). */
export async function registerAgent(target: string, name: string): Promise<string> {
  const res = await api(`/api/targets/${target}/agents`, { method: "POST", body: JSON.stringify({ name }), headers: { "Content-Type": "application/json" } });
  if (res.status !== 201) throw new Error(`registering ${name} in ${target}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { name: string; token: string };
  tokens.set(`${target}/${name}`, body.token);
  return body.token;
}

const tokens = new Map<string, string>();
/** The agent's token, registering it on first use (each test has its own target, so its own agents). */
export async function agentToken(target: string, name: string): Promise<string> {
  return tokens.get(`${target}/${name}`) ?? registerAgent(target, name);
}

/** The raw GET /agent upgrade answer. */
export function agentUpgrade(target: string, agent: string, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Upgrade: "websocket" };
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  return exports.default.fetch(`http://x/agent?target=${target}&agent=${agent}`, { headers });
}

/** Opens the agent's WebSocket with its own token (registered on first use), or `token` when given. */
export async function connectAgent(target: string, agent: string, token?: string): Promise<TestAgent> {
  const res = await agentUpgrade(target, agent, token ?? (await agentToken(target, agent)));
  const ws = res.webSocket;
  if (!ws) throw new Error(`no WebSocket: ${res.status} ${await res.text()}`);
  ws.accept();
  const queue: WorkerMessage[] = [];
  const waiters: (() => void)[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
  ws.addEventListener("message", (e) => {
    if (typeof e.data !== "string") return;
    if (e.data === HEARTBEAT_PONG) return; // the runtime's answer to a heartbeat (the DO's auto-response)
    const parsed = parseWorkerMessage(e.data);
    if (!parsed.ok) throw new Error(`worker sent a bad frame: ${parsed.error}: ${e.data}`);
    queue.push(parsed.message);
    for (const w of waiters.splice(0)) w();
  });
  return {
    ws,
    send: (m) => ws.send(typeof m === "string" ? m : JSON.stringify(m)),
    async next(type, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = queue.findIndex((m) => m.type === type);
        if (i >= 0) return queue.splice(i, 1)[0] as Extract<WorkerMessage, { type: typeof type }>;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no ${type} frame within ${timeoutMs} ms; have ${JSON.stringify(queue)}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
    pending: () => [...queue],
    closed: (timeoutMs = 2000) =>
      Promise.race([closed, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no close within ${timeoutMs} ms`)), timeoutMs))]),
    close: () => ws.close(1000, "bye"),
  };
}

export function hello(agent: string, pipelines: PipelineDecl[] = [pipeline()], unfinished: { jobId: string; lastSeq: number }[] = []): AgentMessage {
  return { type: "hello", protocol: helloProtocol(pipelines), agent, version: "test-1", pipelines, unfinished };
}

/** Connects and says hello; resolves after `welcome`. */
export async function helloAgent(target: string, agent: string, pipelines?: PipelineDecl[]): Promise<TestAgent> {
  const a = await connectAgent(target, agent);
  a.send(hello(agent, pipelines));
  await a.next("welcome");
  return a;
}

export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  return app.request(path, { ...init, headers: { ...ADMIN, ...init.headers } }, env);
}

export async function apiJson(path: string, init: RequestInit = {}): Promise<unknown> {
  const res = await api(path, init);
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

export function event(jobId: string, seq: number, body: Extract<AgentMessage, { type: "event" }>["body"]): AgentMessage {
  return { type: "event", jobId, seq, at: Date.now(), body };
}

/** A signed push of `pushPayload(overrides)`; its status and body. */
export async function push(target: string, overrides: Record<string, unknown> = {}, delivery?: string): Promise<{ status: number; body: DeliveryBody }> {
  const res = await postWebhook(target, JSON.stringify(pushPayload(overrides)), delivery ? { delivery } : {});
  return { status: res.status, body: (await res.json()) as DeliveryBody };
}

export const jobOf = (target: string, id: string) => apiJson(`/api/targets/${target}/jobs/${id}`) as Promise<JobView>;
export const jobsOf = async (target: string) => ((await apiJson(`/api/targets/${target}/jobs`)) as { jobs: JobListItem[] }).jobs;
export const agentsOf = async (target: string) => ((await apiJson(`/api/targets/${target}/agents`)) as { agents: AgentView[] }).agents;

export async function statusBecomes(target: string, id: string, status: string): Promise<void> {
  await eventually(`job ${id} ${status}`, async () => (await jobOf(target, id)).status === status, 2000, 10);
}

export async function disconnected(target: string, agent: TestAgent, name = "web-1"): Promise<void> {
  agent.close();
  await eventually(`${name} disconnected`, async () => (await agentsOf(target)).find((a) => a.name === name)?.connected === false, 2000, 10);
}

/** A job pushed, dispatched to a connected agent and accepted: returns its id. */
export async function runningJob(target: string, agent: TestAgent, overrides: Record<string, unknown> = {}): Promise<string> {
  const { body } = await push(target, overrides);
  const job = await agent.next("job");
  if (job.jobId !== body.jobs[0]?.id) throw new Error(`expected job ${body.jobs[0]?.id}, got ${job.jobId}`);
  agent.send({ type: "accepted", jobId: job.jobId });
  await statusBecomes(target, job.jobId, "running");
  return job.jobId;
}

/** Pushes commit `sha` × 40 to `target` and returns the one job it made (an agent must declare the pipeline). */
export async function pushJob(target: string, sha = "b"): Promise<string> {
  const res = await postWebhook(target, JSON.stringify(pushPayload({ after: sha.repeat(40) })));
  return ((await res.json()) as { jobs: { id: string }[] }).jobs[0]!.id;
}
