/**
 * The operator CLI (`cli/hookrelay.ts`, docs/cli.md) run as a child process, as a person runs it, with
 * HOME and XDG_CONFIG_HOME in a scratch dir, against the real worker under `wrangler dev` and a real
 * agent process:
 *
 * - `init --local` in a scratch checkout writes both secrets into .dev.vars (other lines kept, long
 *   enough for the worker), the config 0600; the worker is then started with exactly those secrets and
 *   the CLI reaches it with the saved config alone; a second run changes nothing, `--rotate` changes both;
 * - `agents add web-1 --repo --workdir` prints a token and the install commands (server, target, name
 *   and the pipeline filled in; the token for `check` and `install` in their environment); the
 *   check-and-install line, run by bash as printed in a scratch root (`--root`), writes the token file,
 *   and an agent on the printed config and that file comes online;
 * - `deploy` + `logs -f` follows a live deploy (the step waits on a file the test writes only after the
 *   CLI has printed the step's first line) to its end, ANSI stripped on a pipe; `status --json`;
 * - `approve` on a deployment waiting for approval makes it run; `reject` blocks another;
 * - `agents rotate web-1` closes the old connection: the agent logs its token refused, the API shows it offline;
 * - errors: no token, a wrong token (the 401 names where it came from), an unreachable URL, the API's own error text.
 */
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../agent/common/config.ts";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { startAgentWithConfig, type AgentProcess } from "../dev/agent-process.ts";
import { eventually } from "../dev/eventually.ts";
import { freePort } from "../dev/free-port.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { startProcess } from "../dev/process.ts";
import { BIN, REPO_ROOT, startWorker, type WorkerProcess } from "../dev/worker-process.ts";

const CLI = join(REPO_ROOT, "cli/hookrelay.ts");
const NODE = join(BIN, "node");

const scratch = mkdtempSync(join(tmpdir(), "hookrelay-cli-e2e-"));
const checkout = join(scratch, "checkout");
const home = join(scratch, "home");
const xdg = join(scratch, "xdg");
const configFile = join(xdg, "hookrelay", "config.json");

/** The environment a person has: no HOOKRELAY_* unless the test sets it, HOME and XDG in the scratch dir. */
function cliEnv(extra: Record<string, string> = {}, dirs = { home, xdg }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: dirs.home, XDG_CONFIG_HOME: dirs.xdg, ...extra };
  for (const k of ["HOOKRELAY_URL", "HOOKRELAY_ADMIN_TOKEN", "HOOKRELAY_AGENT_TOKEN"]) if (!(k in extra)) delete env[k];
  return env;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [CLI, ...args], { cwd: o.cwd ?? checkout, env: o.env ?? cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function devVars(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(dir, ".dev.vars"), "utf8").split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const OTHER_LINES = "# mine, kept\nPUBLIC_URL=http://127.0.0.1:1\n";

describe("hookrelay CLI against the real worker", () => {
  let worker: WorkerProcess;
  let agent: AgentProcess | undefined;
  let repo: GitRepo;
  let port: number;
  let secrets: Record<string, string>;
  let firstInit: Run;
  let agentToken = "";
  const gate = join(scratch, "gate");
  const ranGated = join(scratch, "ran-gated.txt");

  beforeAll(async () => {
    mkdirSync(checkout, { recursive: true });
    mkdirSync(home, { recursive: true });
    writeFileSync(join(checkout, ".dev.vars"), OTHER_LINES);
    port = await freePort();
    firstInit = await cli(["init", "--local", "--url", `http://127.0.0.1:${port}`]);
    expect(firstInit.code, firstInit.stderr).toBe(0);
    secrets = devVars(checkout);
    // The worker runs with the secrets init made; the CLI finds it through the config init saved.
    worker = await startWorker({ port, secrets: { GITHUB_WEBHOOK_SECRET: secrets.GITHUB_WEBHOOK_SECRET!, ADMIN_TOKEN: secrets.ADMIN_TOKEN! } });
    repo = createRepo();
  }, 90_000);

  afterAll(async () => {
    writeFileSync(gate, "");
    await agent?.stop();
    await worker?.stop();
  });

  it("init --local writes both secrets to .dev.vars (other lines kept) and the config 0600, printing neither", async () => {
    expect(readFileSync(join(checkout, ".dev.vars"), "utf8").startsWith(OTHER_LINES)).toBe(true);
    expect(secrets.ADMIN_TOKEN!.length).toBeGreaterThanOrEqual(32);
    expect(Buffer.byteLength(secrets.GITHUB_WEBHOOK_SECRET!)).toBeGreaterThanOrEqual(16);
    expect(secrets.ADMIN_TOKEN).not.toBe(secrets.GITHUB_WEBHOOK_SECRET);
    expect(statSync(configFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(configFile, "utf8"))).toEqual({ url: `http://127.0.0.1:${port}`, adminToken: secrets.ADMIN_TOKEN });
    for (const value of Object.values(secrets)) expect(firstInit.stdout + firstInit.stderr).not.toContain(value);
    expect(firstInit.stdout).toContain(configFile);
    expect(firstInit.stdout).toContain("npx hookrelay agents add web-1");

    // Again: nothing changes.
    const before = { vars: readFileSync(join(checkout, ".dev.vars"), "utf8"), config: readFileSync(configFile, "utf8"), mtime: statSync(join(checkout, ".dev.vars")).mtimeMs };
    const again = await cli(["init", "--local", "--url", `http://127.0.0.1:${port}`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/kept: GITHUB_WEBHOOK_SECRET[\s\S]*kept: ADMIN_TOKEN[\s\S]*unchanged: /);
    expect(readFileSync(join(checkout, ".dev.vars"), "utf8")).toBe(before.vars);
    expect(statSync(join(checkout, ".dev.vars")).mtimeMs).toBe(before.mtime);
    expect(readFileSync(configFile, "utf8")).toBe(before.config);
  });

  it("init --local --rotate replaces both secrets (in a copy, so the running worker keeps its own)", async () => {
    const copy = join(scratch, "copy");
    const dirs = { home: join(scratch, "home2"), xdg: join(scratch, "xdg2") };
    cpSync(checkout, copy, { recursive: true });
    const first = await cli(["init", "--local"], { cwd: copy, env: cliEnv({}, dirs) });
    expect(first.code, first.stderr).toBe(0);
    expect(devVars(copy)).toEqual(secrets); // kept: they were there
    const rotated = await cli(["init", "--local", "--rotate"], { cwd: copy, env: cliEnv({}, dirs) });
    expect(rotated.code, rotated.stderr).toBe(0);
    const after = devVars(copy);
    expect(after.ADMIN_TOKEN).not.toBe(secrets.ADMIN_TOKEN);
    expect(after.GITHUB_WEBHOOK_SECRET).not.toBe(secrets.GITHUB_WEBHOOK_SECRET);
    expect(after.ADMIN_TOKEN).toMatch(/^[0-9a-f]{64}$/);
    expect(after.PUBLIC_URL).toBe("http://127.0.0.1:1");
    const saved = JSON.parse(readFileSync(join(dirs.xdg, "hookrelay", "config.json"), "utf8"));
    expect(saved).toEqual({ url: "http://127.0.0.1:8787", adminToken: after.ADMIN_TOKEN });
    expect(rotated.stdout).not.toContain(after.ADMIN_TOKEN);
  });

  it("--help on every command", async () => {
    const all = [["--help"], ["init", "--help"], ["agents", "--help"], ["agents", "add", "--help"], ["agents", "ls", "--help"], ["agents", "rotate", "--help"], ["agents", "revoke", "--help"], ["deploy", "--help"], ["status", "--help"], ["logs", "--help"], ["approve", "--help"], ["reject", "--help"]];
    const runs = await Promise.all(all.map((args) => cli(args, { env: cliEnv({ HOOKRELAY_URL: "http://127.0.0.1:9" }) })));
    runs.forEach((r, i) => {
      expect(r.code, `${all[i]!.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.stdout, all[i]!.join(" ")).toMatch(/Usage: hookrelay/);
    });
  });

  it("agents add prints the token once and the install commands; that token brings a real agent online", async () => {
    const r = await cli(["agents", "add", "web-1", "--repo", "acme/site", "--workdir", repo.live]);
    expect(r.code, r.stderr).toBe(0);
    agentToken = /^ {2}(hra_\S+)$/m.exec(r.stdout)?.[1] ?? "";
    expect(agentToken).not.toBe("");
    // The config the server gets, as printed between the heredoc's lines, is valid for the agent.
    const yaml = /<<'EOF'\n([\s\S]*?)\nEOF\n/.exec(r.stdout)?.[1] ?? "";
    const parsed = parseConfig(yaml, "/etc/hookrelay/agent.yml");
    expect(parsed.ok, JSON.stringify(parsed)).toBe(true);
    if (parsed.ok) expect(parsed.config).toMatchObject({ server: `ws://127.0.0.1:${port}`, target: "default", name: "web-1", tokenFile: "/etc/hookrelay/token", pipelines: [{ repo: "acme/site", workdir: repo.live }] });
    // The token reaches check and install through their environment, never argv; install runs only if check passed.
    expect(r.stdout).toContain(` HOOKRELAY_AGENT_TOKEN='${agentToken}' sh -c 'hookrelay-agent check --config /etc/hookrelay/agent.yml && hookrelay-agent install --config /etc/hookrelay/agent.yml'`);
    expect(r.stdout).not.toContain(secrets.ADMIN_TOKEN);

    const twice = await cli(["agents", "add", "web-1"]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain("hookrelay agents rotate web-1");

    // The printed check-and-install line, run by bash as printed but for the config's path (under a
    // scratch root) and install's --root: `hookrelay-agent` on PATH is the agent's CLI from source, so
    // the token file lands under the root (mode 0600, from the environment).
    const root = join(scratch, "server-root");
    mkdirSync(join(root, "etc/hookrelay"), { recursive: true });
    writeFileSync(join(root, "etc/hookrelay/agent.yml"), yaml + "\n");
    const bin = join(scratch, "server-bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "hookrelay-agent"), `#!/bin/sh\nexec '${NODE}' '${join(REPO_ROOT, "agent/commands/cli.ts")}' "$@"\n`, { mode: 0o755 });
    const installLine = r.stdout.split("\n").find((l) => l.includes("hookrelay-agent install"))!
      .replaceAll(" /etc/hookrelay/agent.yml", ` ${root}/etc/hookrelay/agent.yml`)
      .replace(/(hookrelay-agent install --config \S+?)'$/, `$1 --root ${root}'`);
    const installed = spawnSync("bash", ["-c", installLine], { cwd: scratch, env: cliEnv({ PATH: `${bin}:${process.env.PATH}` }), encoding: "utf8" });
    expect(installed.status, installed.stdout + installed.stderr).toBe(0);
    const tokenFile = join(root, "etc/hookrelay/token");
    expect(readFileSync(tokenFile, "utf8").trim()).toBe(agentToken);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(existsSync(join(root, "etc/systemd/system/hookrelay-agent.service"))).toBe(true);

    // The agent runs on the printed config (server, target, name as printed) and the token file install wrote.
    const configPath = join(root, "etc/hookrelay/agent-test.yml");
    const stateDir = join(root, "var/lib/hookrelay");
    const pipelines = [
      {
        name: "site",
        repo: "acme/site",
        branches: ["main"],
        workdir: repo.live,
        steps: [{ name: "build", run: `echo "line 1"; printf '\\033[32mgreen\\033[0m\\n'; while [ ! -e '${gate}' ]; do sleep 0.1; done; echo "line 2"` }],
      },
      {
        name: "gated",
        repo: "acme/gated",
        branches: ["main"],
        workdir: repo.live,
        wait_for: { approval: true },
        steps: [{ name: "ship", run: `echo "$HOOKRELAY_SHA" >> '${ranGated}'` }],
      },
    ];
    writeFileSync(configPath, stringifyYaml({ ...parseYaml(yaml), token_file: tokenFile, state_dir: stateDir, pipelines }));
    agent = startAgentWithConfig(configPath, stateDir, { label: "agent web-1 (as installed)" });
    const online = await eventually("web-1 connected in agents ls --json", async () => {
      const ls = await cli(["agents", "ls", "--json"]);
      expect(ls.code, ls.stderr).toBe(0);
      return JSON.parse(ls.stdout).agents.find((a: any) => a.name === "web-1" && a.connected);
    }, 20_000, 300);
    expect(online.pipelines.map((p: any) => p.name).sort()).toEqual(["gated", "site"]);
    const table = await cli(["agents", "ls"]);
    expect(table.stdout).toMatch(/^web-1\s+connected\s/m);
  });

  let deploymentId = "";

  it("deploy, then logs -f follows the live deploy to its end (ANSI stripped on a pipe); status --json", async () => {
    const sha = repo.head(repo.work);
    const d = await cli(["deploy", "--pipeline", "site", "--sha", sha, "--ref", "main", "--json"]);
    expect(d.code, d.stderr).toBe(0);
    deploymentId = JSON.parse(d.stdout).deployments[0].id;
    const jobId: string = JSON.parse(d.stdout).jobs[0].id;
    const follow = startProcess(NODE, [CLI, "logs", deploymentId, "-f"], { cwd: checkout, env: cliEnv(), label: "hookrelay logs -f" });
    try {
      // The step is still running (it waits for the gate file): what the CLI printed came live.
      await follow.waitForOutput(/green/, 20_000);
      expect(follow.output()).toContain("line 1");
      expect(follow.output()).not.toContain("line 2");
      expect(follow.output()).not.toContain("\x1b[");
    } finally {
      writeFileSync(gate, ""); // else the agent stays busy and every later test fails too
    }
    const exit = await Promise.race([follow.exited, new Promise<string>((r) => setTimeout(() => r("still running"), 20_000))]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(follow.output()).toMatch(/line 2[\s\S]*deployment \S+: succeeded/);

    const s = await cli(["status", "--json"]);
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout).deployments[0]).toMatchObject({ id: deploymentId, status: "succeeded", pipeline: "site", sha });
    const t = await cli(["status", "default"]);
    expect(t.stdout).toMatch(new RegExp(`^${deploymentId}\\s+succeeded\\s+site\\s+main\\s+${sha.slice(0, 7)}`, "m"));
    const whole = await cli(["logs", deploymentId]);
    expect(whole.code).toBe(0);
    expect(whole.stdout).toMatch(/line 1[\s\S]*green[\s\S]*line 2/);
    expect(whole.stdout).not.toContain("\x1b[");
    const job = await cli(["logs", jobId]); // a job's id works too
    expect(job.code, job.stderr).toBe(0);
    expect(job.stdout).toMatch(/line 1[\s\S]*line 2/);
    // On a terminal (util-linux `script` gives it one) the colours stay.
    if (existsSync("/usr/bin/script")) {
      const tty = await new Promise<string>((resolve) => {
        const child = spawn("/usr/bin/script", ["-qec", `'${NODE}' '${CLI}' logs ${deploymentId}`, "/dev/null"], { cwd: checkout, env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
        child.on("close", () => resolve(out));
      });
      expect(tty).toContain("\x1b[32mgreen\x1b[0m");
    }
  });

  it("approve lets a deployment waiting for approval run; reject blocks one", async () => {
    const push = async (sha: string) => {
      const res = await sendWebhook(worker.url, { secret: secrets.GITHUB_WEBHOOK_SECRET!, payload: pushPayload({ repo: "acme/gated", ref: "refs/heads/main", after: sha }) });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return res.body.deployments[0].id as string;
    };
    const sha = "a".repeat(40);
    const id = await push(sha);
    const listed = JSON.parse((await cli(["status", "--json"])).stdout).deployments.find((d: any) => d.id === id);
    expect(listed.status).toBe("waiting");
    expect(existsSync(ranGated)).toBe(false);
    const a = await cli(["approve", id, "--note", "looks good"]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toContain(`deployment ${id}: approved`);
    await eventually("the approved step ran", async () => (existsSync(ranGated) && readFileSync(ranGated, "utf8").includes(sha)) || undefined, 20_000);

    const other = await push("b".repeat(40));
    const rj = await cli(["reject", other, "--json"]);
    expect(rj.code, rj.stderr).toBe(0);
    expect(JSON.parse(rj.stdout)).toMatchObject({ id: other, status: "blocked" });
    // Deciding again: the API's own words, exit 1.
    const again = await cli(["approve", other]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("does not wait for approval (409)");
  });

  it("agents rotate closes the old connection: the agent's token is refused, the API shows it offline", async () => {
    const r = await cli(["agents", "rotate", "web-1"]);
    expect(r.code, r.stderr).toBe(0);
    const fresh = /^ {2}(hra_\S+)$/m.exec(r.stdout)?.[1];
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(agentToken);
    await agent!.process.waitForOutput(/token rejected by the worker \(HTTP 401\)/, 20_000);
    const ls = JSON.parse((await cli(["agents", "ls", "--json"])).stdout);
    expect(ls.agents.find((a: any) => a.name === "web-1")).toMatchObject({ connected: false });
  });

  it("errors say what to do next, with a non-zero exit", async () => {
    const empty = { home: join(scratch, "nobody"), xdg: join(scratch, "nobody-xdg") };
    const noToken = await cli(["status"], { env: cliEnv({ HOOKRELAY_URL: worker.url }, empty) });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain("no admin token: run `hookrelay init` or set HOOKRELAY_ADMIN_TOKEN");

    const wrongEnv = await cli(["agents", "ls"], { env: cliEnv({ HOOKRELAY_ADMIN_TOKEN: "wrong-token-0123456789abcdef0123456789" }) });
    expect(wrongEnv.code).toBe(1);
    expect(wrongEnv.stderr).toContain("refused the admin token from environment variable HOOKRELAY_ADMIN_TOKEN (401)");
    expect(wrongEnv.stderr).not.toContain("wrong-token");

    const badDirs = { home: join(scratch, "bad"), xdg: join(scratch, "bad-xdg") };
    mkdirSync(join(badDirs.xdg, "hookrelay"), { recursive: true });
    const badConfig = join(badDirs.xdg, "hookrelay", "config.json");
    writeFileSync(badConfig, JSON.stringify({ url: worker.url, adminToken: "stale-token-0123456789abcdef0123456789" }), { mode: 0o600 });
    const wrongFile = await cli(["status"], { env: cliEnv({}, badDirs) });
    expect(wrongFile.code).toBe(1);
    expect(wrongFile.stderr).toContain(`refused the admin token from the config file ${badConfig} (401)`);

    const closed = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await cli(["status"], { env: cliEnv({ HOOKRELAY_URL: closed }) });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`cannot reach the worker at ${closed}`);

    const apiError = await cli(["deploy", "--pipeline", "nope", "--sha", "c".repeat(40), "--ref", "main"]);
    expect(apiError.code).toBe(1);
    expect(apiError.stderr).toMatch(/^hookrelay: .*nope.*\(\d{3}\)$/m);

    const unknown = await cli(["logs", "no-such-id"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("hookrelay status");

    for (const run of [noToken, wrongEnv, wrongFile, unreachable, apiError, unknown]) expect(run.stdout + run.stderr).not.toContain(secrets.ADMIN_TOKEN);
  });
});
