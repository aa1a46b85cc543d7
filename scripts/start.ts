/**
 * `npm start`: the whole system on this machine — the worker under `wrangler dev` (workerd, local
 * Durable Object storage) and an agent deploying a demo git repo — then prints how to send a signed push.
 * `npm start -- --smoke` does one push itself, waits for the deploy, prints its log and exits (0 = it worked).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { freePort } from "../dev/free-port.ts";
import { DEMO_AGENT, prepareDemo, REPO_ROOT, type Demo } from "./demo.ts";
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
 * The demo agent's own token, as an operator gets one: registered through the admin API, or — the
 * demo's worker state is kept between runs and the token is shown only once — rotated.
 */
async function demoAgentToken(demo: Demo): Promise<string> {
  let res = await adminPost(demo, "/api/targets/default/agents", { name: DEMO_AGENT });
  if (res.status === 409) res = await adminPost(demo, `/api/targets/default/agents/${DEMO_AGENT}/token`);
  if (!res.ok) throw new Error(`registering the demo agent: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

async function main(): Promise<void> {
  const port = await choosePort();
  const demo = prepareDemo(port);
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", PATH: `${BIN}:${process.env.PATH ?? ""}` };

  let onReady: (v: true) => void = () => {};
  const ready = waitFor<true>("the worker to start", 90_000, (d) => (onReady = d));
  run("worker", join(BIN, "wrangler"), ["dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", "0", "--persist-to", demo.workerState, "--env-file", demo.envFile, "--show-interactive-dev-session=false"], env, (line) => {
    if (/Ready on http/.test(line)) onReady(true);
  });
  await ready;
  const agentToken = await demoAgentToken(demo);

  let onConnected: (v: true) => void = () => {};
  const connected = waitFor<true>("the agent to connect", 30_000, (d) => (onConnected = d));
  run("agent ", process.execPath, [join(REPO_ROOT, "agent/cli.ts"), "run", "--config", demo.agentConfig], { ...env, HOOKRELAY_AGENT_TOKEN: agentToken }, (line) => {
    if (/connected/i.test(line) && !/disconnected/i.test(line)) onConnected(true);
  });
  await connected;

  const base = `http://127.0.0.1:${port}`;
  console.log(`
hookrelay is running locally.
  webhook URL:   ${base}/webhook            (GitHub "Payload URL"; secret in ${demo.envFile})
  dashboard:     ${base}/                   (admin token: ${demo.secrets.ADMIN_TOKEN})
  agent config:  ${demo.agentConfig}
  demo checkout: ${demo.live}

Send a signed push (commits a new version to the demo repo, then POSTs GitHub's webhook):
  npm run demo:push
Then look at the jobs:
  curl -s -H 'Authorization: Bearer ${demo.secrets.ADMIN_TOKEN}' ${base}/api/targets/default/jobs
Ctrl-C stops everything.
`);

  if (!smoke) return;
  const push = await demoPush();
  console.log(`push ${push.sha}: worker answered ${push.status} ${JSON.stringify(push.body)}`);
  const job = (push.body as { jobs?: { id: string }[] }).jobs?.[0];
  if (push.status !== 202 || !job) return void (await shutdown(1));
  const deadline = Date.now() + 60_000;
  let status = "queued";
  while (Date.now() < deadline) {
    const r = await adminGet(demo, `/api/targets/default/jobs/${job.id}`);
    status = ((await r.json()) as { status: string }).status;
    if (!["queued", "running"].includes(status)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const log = await (await adminGet(demo, `/api/targets/default/jobs/${job.id}/log`)).text();
  console.log(`job ${job.id} ${status}\n${log}`);
  await shutdown(status === "succeeded" ? 0 : 1);
}

main().catch((e: unknown) => {
  console.error(`npm start failed: ${e instanceof Error ? e.message : String(e)}`);
  void shutdown(1);
});
