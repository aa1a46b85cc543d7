/**
 * `hookrelay webhook add` (cli/webhook.ts) run as a child process against the real worker under
 * `wrangler dev` and the fake GitHub (testing/fake-github.ts), whose hooks API enforces GitHub's rules
 * and, like GitHub, sends a signed `ping` to the payload URL once the hook is created or updated:
 *
 * - a new hook gets the target's payload URL, the worker's own per-target secret, content type json,
 *   SSL verification on, events push/workflow_run/check_run; the worker answers the ping 200 (which it
 *   does only for a signature made with that secret) and the CLI says so; neither token nor secret printed;
 * - a second run updates that hook: one hook in the list, not two;
 * - a hook whose stored secret differs: the worker answers 401 and the CLI reports it as such (exit 1);
 * - no GitHub token, a repository the token cannot manage, GitHub's 422: errors that say what to do.
 * The fake's own rules (422 for a duplicate URL, an unknown event, no URL; 401 without a token) are
 * checked first, so that "the CLI passed" means it passed GitHub's checks.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, REPO_ROOT, startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";
import { type FakeGitHub, startFakeGitHub } from "../testing/fake-github.ts";

const CLI = join(REPO_ROOT, "cli/hookrelay.ts");
const NODE = join(BIN, "node");
const scratch = mkdtempSync(join(tmpdir(), "hookrelay-cli-webhook-"));
const GH_TOKEN = "ghp_fake_hooks_token_0123456789abcdef";
const LIMITED_TOKEN = "ghp_fake_other_repo_token_0123456789";
const REPO = "acme/app";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe("hookrelay webhook add against the real worker and a fake GitHub", () => {
  let worker: WorkerProcess;
  let github: FakeGitHub;

  function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const e: NodeJS.ProcessEnv = { ...process.env, HOME: join(scratch, "home"), XDG_CONFIG_HOME: join(scratch, "xdg"), HOOKRELAY_URL: worker.url, HOOKRELAY_ADMIN_TOKEN: TEST_SECRETS.ADMIN_TOKEN, GITHUB_API_URL: github.url };
    delete e.GITHUB_TOKEN;
    return { ...e, ...extra };
  }

  function cli(args: string[], e: NodeJS.ProcessEnv): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(NODE, [CLI, ...args], { cwd: scratch, env: e, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  async function workerSecret(target: string): Promise<string> {
    const res = await fetch(`${worker.url}/api/targets/${target}/webhook-secret`, { headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { secret: string }).secret;
  }

  async function gh(method: string, path: string, body?: unknown, token: string | null = GH_TOKEN): Promise<{ status: number; body: any }> {
    const res = await fetch(`${github.url}${path}`, {
      method,
      headers: { "user-agent": "test", accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  beforeAll(async () => {
    mkdirSync(join(scratch, "home"), { recursive: true });
    github = await startFakeGitHub({ tokens: [GH_TOKEN, LIMITED_TOKEN], hookAccess: { [LIMITED_TOKEN]: ["acme/other"] } });
    worker = await startWorker();
  }, 90_000);

  afterAll(async () => {
    await worker?.stop();
    await github?.close();
  });

  it("the fake enforces GitHub's hook rules: 401 without a token, 422 for no URL, an unknown event, a duplicate URL", async () => {
    const path = "/repos/acme/rules/hooks";
    const config = { url: "http://127.0.0.1:9/webhook", content_type: "json", secret: "s".repeat(20), insecure_ssl: "0" };
    expect((await gh("POST", path, { config }, null)).status).toBe(401);
    expect((await gh("POST", path, { config: { content_type: "json" } })).status).toBe(422);
    expect((await gh("POST", path, { config: { ...config, url: "ftp://x" } })).status).toBe(422);
    const unknownEvent = await gh("POST", path, { config, events: ["push", "deploy_all_the_things"] });
    expect(unknownEvent.status).toBe(422);
    const created = await gh("POST", path, { name: "web", config, events: ["push"] });
    expect(created.status).toBe(201);
    expect(created.body.config.secret).toBe("********");
    const duplicate = await gh("POST", path, { name: "web", config, events: ["push"] });
    expect(duplicate.status).toBe(422);
    expect(duplicate.body.errors[0].message).toBe("Hook already exists on this repository");
    expect((await gh("GET", path, undefined, LIMITED_TOKEN)).status).toBe(404);
    // The ping to a port where nothing listens is recorded as a failed delivery.
    await expect.poll(() => github.deliveries("acme/rules", created.body.id).length, { timeout: 15_000 }).toBe(1);
    expect(github.deliveries("acme/rules", created.body.id)[0]).toMatchObject({ event: "ping", status_code: 0 });
  });

  it("creates the hook with the target's URL, the worker's secret, json and the three events; the ping reached the worker (200)", async () => {
    const run = await cli(["webhook", "add", "--repo", REPO], env({ GITHUB_TOKEN: GH_TOKEN }));
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const hooks = github.hooks(REPO);
    expect(hooks).toHaveLength(1);
    const hook = hooks[0]!;
    const secret = await workerSecret("default");
    expect(hook.config).toEqual({ url: `${worker.url}/webhook`, content_type: "json", insecure_ssl: "0", secret });
    expect([...hook.events].sort()).toEqual(["check_run", "push", "workflow_run"]);
    expect(hook.active).toBe(true);
    const ping = github.deliveries(REPO, hook.id).find((d) => d.event === "ping");
    expect(ping?.status_code).toBe(200);
    expect(JSON.parse(ping!.response.body)).toMatchObject({ pong: true });
    expect(run.stdout).toContain(`Created ${REPO}'s webhook ${hook.id}`);
    expect(run.stdout).toContain("GitHub's ping reached the worker (200)");
    for (const value of [GH_TOKEN, secret]) expect(run.stdout + run.stderr).not.toContain(value);
  }, 60_000);

  it("run again, it updates the same hook (one hook, not two); --json gives {hook, updated, ping}", async () => {
    const before = github.hooks(REPO).map((h) => h.id);
    const run = await cli(["webhook", "add", "--repo", REPO, "--json"], env({ GITHUB_TOKEN: GH_TOKEN }));
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(github.hooks(REPO).map((h) => h.id)).toEqual(before);
    expect(github.calls.some((c) => c.method === "PATCH" && c.path === `/repos/${REPO}/hooks/${before[0]}`)).toBe(true);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({ hook: { id: before[0], url: `${worker.url}/webhook` }, updated: true, ping: { status_code: 200 } });
    expect(out.created).toBeUndefined();
  }, 60_000);

  it("--target staging: /webhook/staging with staging's own secret (not default's), the token from --token", async () => {
    const run = await cli(["webhook", "add", "--repo", REPO, "--target", "staging", "--token", GH_TOKEN, "--json"], env());
    expect(run.code, run.stderr + run.stdout).toBe(0);
    const hook = github.hooks(REPO).find((h) => h.config.url === `${worker.url}/webhook/staging`);
    const staging = await workerSecret("staging");
    expect(staging).not.toBe(await workerSecret("default"));
    expect(hook?.config.secret).toBe(staging);
    expect(JSON.parse(run.stdout)).toMatchObject({ created: true, ping: { status_code: 200 } });
    expect(github.hooks(REPO)).toHaveLength(2);
    expect(run.stdout + run.stderr).not.toContain(GH_TOKEN);
  }, 60_000);

  it("a hook whose stored secret differs: the worker answers the ping 401 and the CLI reports it (exit 1)", async () => {
    github.signPingsWith("a-secret-the-worker-does-not-know-0123");
    try {
      const run = await cli(["webhook", "add", "--repo", REPO], env({ GITHUB_TOKEN: GH_TOKEN }));
      expect(run.code, run.stderr + run.stdout).toBe(1);
      expect(run.stdout).toContain("the worker answered 401");
      expect(run.stdout).toContain("secret differs");
      expect(run.stdout).not.toContain("reached the worker");
      const hook = github.hooks(REPO).find((h) => h.config.url === `${worker.url}/webhook`)!;
      expect(github.deliveries(REPO, hook.id)[0]?.status_code).toBe(401);
    } finally {
      github.signPingsWith(null);
    }
  }, 60_000);

  it("no GitHub token: says to set GITHUB_TOKEN or pass --token, and calls GitHub not at all", async () => {
    const calls = github.calls.length;
    const run = await cli(["webhook", "add", "--repo", REPO], env());
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("set GITHUB_TOKEN (a token with Repository → Webhooks: Read and write) or pass --token");
    expect(github.calls.length).toBe(calls);
  });

  it("a repository the token cannot manage (GitHub's 404): says the repo does not exist or the token cannot manage its hooks", async () => {
    const run = await cli(["webhook", "add", "--repo", REPO], env({ GITHUB_TOKEN: LIMITED_TOKEN }));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`the repository ${REPO} does not exist, or the token cannot manage its hooks`);
    expect(run.stderr).not.toContain(LIMITED_TOKEN);
  });

  it("GitHub's 422 (a payload URL it cannot reach): GitHub's own message, and that it needs a public URL", async () => {
    github.refuseLoopbackUrls(true);
    try {
      const run = await cli(["webhook", "add", "--repo", "acme/fresh"], env({ GITHUB_TOKEN: GH_TOKEN }));
      expect(run.code).toBe(1);
      expect(run.stderr).toContain("GitHub refused the hook (422): Validation Failed");
      expect(run.stderr).toContain("isn't reachable over the public Internet");
      expect(run.stderr).toContain("GitHub needs a public URL");
      expect(github.hooks("acme/fresh")).toHaveLength(0);
    } finally {
      github.refuseLoopbackUrls(false);
    }
  });

  it("--help explains the command; the main help lists it", async () => {
    const help = await cli(["webhook", "add", "--help"], env());
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("hookrelay webhook add --repo OWNER/NAME");
    const main = await cli(["--help"], env());
    expect(main.stdout).toContain("webhook add --repo OWNER/NAME");
  });
});
