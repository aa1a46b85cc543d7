/**
 * `npm start`: the whole system on this machine — the worker under `wrangler dev` (workerd, local
 * Durable Object storage) and two agents (demo-1, demo-2) deploying a demo git repo, one after the other —
 * then prints how to send a signed push.
 * `npm start -- --smoke` does one push itself, waits until both agents deployed it, prints their logs and
 * exits (0 = it worked: both jobs succeeded and, once the worker answers with a deployment, it succeeded
 * with demo-1 done before demo-2 started).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { freePort } from "../dev/free-port.ts";
import { wranglerDevEnv } from "../dev/worker-process.ts";
import { DEMO_AGENTS, DEMO_PIPELINE, type DemoAgent, LEGACY_DEMO_AGENT, prepareDemo, REPO_ROOT, type Demo } from "./demo.ts";
import { demoPush } from "./demo-push.ts";

const smoke = process.argv.includes("--smoke");
const BIN = join(REPO_ROOT, "node_modules/.bin");

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

async function choosePort(): Promise<number> {
  const wanted = Number(process.env.PORT ?? 8787);
  if (await portIsFree(wanted)) return wanted;
  const port = await freePort();
  console.log(`port ${wanted} is busy; using ${port}`);
  return port;
}

const children: ChildProcess[] = [];
function run(label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string) => void): ChildProcess {
  const child = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  children.push(child);
  for (const stream of [child.stdout, child.stderr]) {
    let rest = "";
    stream?.on("data", (chunk: Buffer) => {
      const lines = (rest + chunk.toString("utf8")).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        // wrangler cannot reach Cloudflare from an offline machine; its Request.cf warning is harmless.
        if (/Request\.cf|getaddrinfo|GetAddrInfoReqWrap|workers\.cloudflare\.com/.test(line)) continue;
        if (!smoke || process.env.HOOKRELAY_VERBOSE) console.log(`${label} | ${line}`);
        onLine?.(line);
      }
    });
  }
  child.on("exit", (code, signal) => {
    if (!stopping) {
      console.error(`${label} exited (${signal ?? code}); stopping`);
      void shutdown(1);
    }
  });
  return child;
}

let stopping = false;
async function shutdown(code: number): Promise<never> {
  stopping = true;
  for (const c of children) {
    try {
      if (c.pid !== undefined && c.exitCode === null) process.kill(-c.pid, "SIGTERM");
    } catch {
      /* gone */
    }
  }
  await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once("exit", r)))));
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

function waitFor<T>(what: string, ms: number, register: (done: (v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    register((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

async function adminGet(demo: Demo, path: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${demo.port}${path}`, { headers: { authorization: `Bearer ${demo.secrets.ADMIN_TOKEN}` } });
}

async function adminPost(demo: Demo, path: string, body?: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${demo.port}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${demo.secrets.ADMIN_TOKEN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/**
 * A demo agent's own token, as an operator gets one: registered through the admin API, or — the
 * demo's worker state is kept between runs and the token is shown only once — rotated.
 */
async function demoAgentToken(demo: Demo, name: string): Promise<string> {
  let res = await adminPost(demo, "/api/targets/default/agents", { name });
  if (res.status === 409) res = await adminPost(demo, `/api/targets/default/agents/${name}/token`);
  if (!res.ok) throw new Error(`registering demo agent ${name}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/**
 * A demo from before rollouts registered one agent, demo-agent, in the worker state kept between runs. It
 * would still declare the demo pipeline (offline), so every push would wait for it: revoke it (404 = not there).
 */
async function revokeLegacyAgent(demo: Demo): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${demo.port}/api/targets/default/agents/${LEGACY_DEMO_AGENT}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${demo.secrets.ADMIN_TOKEN}` },
  });
  if (res.ok) console.log(`revoked ${LEGACY_DEMO_AGENT}, the previous demo's single agent (now: ${DEMO_AGENTS.join(", ")})`);
  else if (res.status !== 404) throw new Error(`revoking ${LEGACY_DEMO_AGENT}: ${res.status} ${await res.text()}`);
}

async function startAgent(demo: Demo, agent: DemoAgent, env: NodeJS.ProcessEnv): Promise<void> {
  const token = await demoAgentToken(demo, agent.name);
  let onConnected: (v: true) => void = () => {};
  const connected = waitFor<true>(`agent ${agent.name} to connect`, 30_000, (d) => (onConnected = d));
  run(agent.name, process.execPath, [join(REPO_ROOT, "agent/commands/cli.ts"), "run", "--config", agent.config], { ...env, HOOKRELAY_AGENT_TOKEN: token }, (line) => {
    if (/connected/i.test(line) && !/disconnected/i.test(line)) onConnected(true);
  });
  await connected;
}

interface JobView {
  id: string;
  agent: string;
  status: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const FINAL_JOB = ["succeeded", "failed", "timed_out", "canceled", "superseded", "interrupted", "skipped"];
const FINAL_DEPLOYMENT = ["succeeded", "failed", "canceled", "superseded"];

async function adminJson<T>(demo: Demo, path: string): Promise<T> {
  const r = await adminGet(demo, path);
  if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

/** Polls `read` until `done` says so or `ms` passed; returns the last value. */
async function pollUntil<T>(ms: number, read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (done(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The smoke run's push: waits for every job it made (through its deployment when the answer names one),
 * prints each job's log in rollout order, and says whether the demo did what it shows: every demo agent
 * deployed, and — with a deployment — it succeeded, one host at a time, demo-1 first.
 */
async function smokePush(demo: Demo): Promise<boolean> {
  const push = await demoPush();
  console.log(`push ${push.sha}: worker answered ${push.status} ${JSON.stringify(push.body)}`);
  const body = push.body as { jobs?: { id: string; agent: string }[]; deployments?: { id: string; pipeline: string; jobs: string[] }[] };
  if (push.status !== 202 || !body.jobs?.length) return false;
  const problems: string[] = [];
  let jobs: JobView[];
  const deployment = body.deployments?.find((d) => d.pipeline === DEMO_PIPELINE);
  if (deployment) {
    const path = `/api/targets/default/deployments/${deployment.id}`;
    const d = await pollUntil(90_000, () => adminJson<{ status: string; jobs: JobView[] }>(demo, path), (v) => FINAL_DEPLOYMENT.includes(v.status));
    console.log(`deployment ${deployment.id} ${d.status}: ${d.jobs.map((j) => `${j.agent} ${j.status}`).join(", then ")}`);
    if (d.status !== "succeeded") problems.push(`deployment ${deployment.id} is ${d.status}`);
    jobs = d.jobs;
    for (const [i, j] of jobs.entries()) {
      const next = jobs[i + 1];
      if (next?.startedAt && j.finishedAt && Date.parse(next.startedAt) < Date.parse(j.finishedAt)) {
        problems.push(`${next.agent} started (${next.startedAt}) before ${j.agent} finished (${j.finishedAt}): not one host at a time`);
      }
    }
    const order = jobs.map((j) => j.agent).join(", ");
    if (order !== DEMO_AGENTS.join(", ")) problems.push(`rollout order ${order}, expected ${DEMO_AGENTS.join(", ")}`);
  } else {
    // A worker without deployments: the push's jobs, one per agent, run independently.
    jobs = await Promise.all(
      body.jobs.map((j) => pollUntil(90_000, () => adminJson<JobView>(demo, `/api/targets/default/jobs/${j.id}`), (v) => FINAL_JOB.includes(v.status))),
    );
  }
  for (const j of jobs) {
    const log = await (await adminGet(demo, `/api/targets/default/jobs/${j.id}/log`)).text();
    console.log(`job ${j.id} on ${j.agent}: ${j.status}\n${log}`);
  }
  for (const name of DEMO_AGENTS) {
    const j = jobs.find((x) => x.agent === name);
    if (!j) problems.push(`no job for ${name}`);
    else if (j.status !== "succeeded") problems.push(`${name}'s job ${j.id} is ${j.status}`);
  }
  for (const p of problems) console.error(`smoke: ${p}`);
  if (problems.length === 0) console.log(`smoke: ${DEMO_AGENTS.join(" and ")} deployed ${push.sha}`);
  return problems.length === 0;
}

async function main(): Promise<void> {
  const port = await choosePort();
  const demo = prepareDemo(port);
  const env = wranglerDevEnv();

  let onReady: (v: true) => void = () => {};
  const ready = waitFor<true>("the worker to start", 90_000, (d) => (onReady = d));
  run("worker", join(BIN, "wrangler"), ["dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", "0", "--persist-to", demo.workerState, "--env-file", demo.envFile, "--show-interactive-dev-session=false"], env, (line) => {
    if (/Ready on http/.test(line)) onReady(true);
  });
  await ready;
  await revokeLegacyAgent(demo);
  for (const agent of demo.agents) await startAgent(demo, agent, env);

  const base = `http://127.0.0.1:${port}`;
  const auth = `-H 'Authorization: Bearer ${demo.secrets.ADMIN_TOKEN}'`;
  console.log(`
hookrelay is running locally.
  webhook URL:   ${base}/webhook            (GitHub "Payload URL"; secret in ${demo.envFile})
  dashboard:     ${base}/                   (sign in at ${base}/login with the admin token: ${demo.secrets.ADMIN_TOKEN})
  agents:        ${demo.agents.map((a) => a.name).join(", ")} — two "servers", each with its own config and live checkout:
${demo.agents.map((a) => `                 ${a.config}\n                 ${a.live}`).join("\n")}

Send a signed push (commits a new version to the demo repo, then POSTs GitHub's webhook):
  npm run demo:push
Both agents declare pipeline ${DEMO_PIPELINE}, so the push is one deployment rolled out one host at a time:
${demo.agents.map((a) => a.name).join(" deploys first, then ")} (halting if a host fails). Look at it:
  curl -s ${auth} ${base}/api/targets/default/deployments
  curl -s ${auth} ${base}/api/targets/default/jobs
Ctrl-C stops everything.
`);

  if (!smoke) return;
  await shutdown((await smokePush(demo)) ? 0 : 1);
}
main().catch((e: unknown) => {
  console.error(`npm start failed: ${e instanceof Error ? e.message : String(e)}`);
  void shutdown(1);
});
