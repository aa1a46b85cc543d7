/**
 * The README's "Deploying for real", word for word: the numbered commands of its first `sh` block are
 * read from README.md and run, in order, as a newcomer runs them, with only the placeholders substituted
 * — and there must be at most 6 of them, the number the README states. Nothing reaches Cloudflare or
 * GitHub:
 *
 * - the clone: `git clone` of this checkout's HEAD into a scratch dir, then the working tree's files
 *   that git tracks or would add (`git ls-files --cached --others --exclude-standard`) copied over it,
 *   so an edit is tested before it is committed — and nothing git ignores (.dev.vars, dist/, node_modules,
 *   ~/.config is elsewhere anyway) comes along. `npm ci` there would take minutes (it unpacks Node 22 and
 *   workerd), so step 1 runs as `npm ci --dry-run --offline --ignore-scripts` (which still fails when the
 *   lockfile and package.json disagree) and `node_modules` is then a symlink to the checkout's. The
 *   README and the CLI (`npx hookrelay`, the root package's bin) are the clone's;
 * - Cloudflare: `init` runs the stand-in wrangler (HOOKRELAY_WRANGLER, testing/fake-wrangler.ts), logged
 *   out at first, so `init` must log in; once the stand-in has "deployed", the test serves the worker
 *   under `wrangler dev` with exactly the secrets `init` put, on the loopback URL the stand-in printed;
 * - the server: the block `agents add` printed is run by bash (`-e`: a failing line fails the test) with
 *   the machine's paths (/etc, /usr/local/bin, /tmp) moved under a scratch root, and install's own
 *   `--root` for it (no user, no systemctl). The agent it installs is the bundle the worker serves,
 *   fetched with curl and checked by sha256sum -c, run by the distro's node on PATH, as systemd would;
 * - GitHub: the fake (testing/fake-github.ts) at GITHUB_API_URL, which pings the hook `webhook add`
 *   makes; after `git push` (a real push to a bare origin) the test plays GitHub's push delivery, signed
 *   with the secret the hook was given, to the hook's payload URL;
 * - the end: that push's deployment succeeds (`npx hookrelay logs <id> -f` exits 0) and the pushed
 *   commit is checked out in the app's workdir on the "server".
 * Placeholders: OWNER/APP (the fake's repository), /srv/app (a real git clone), the scratch root above.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { startAgentWithConfig, type AgentProcess } from "../dev/agent-process.ts";
import { eventually } from "../dev/eventually.ts";
import { freePort } from "../dev/free-port.ts";
import { createRepo, git, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload } from "../dev/github.ts";
import { REPO_ROOT, startWorker, type WorkerProcess } from "../dev/worker-process.ts";
import { type FakeGitHub, startFakeGitHub } from "../testing/fake-github.ts";
import { readFakeWranglerState, setUpFakeWrangler } from "../testing/fake-wrangler.ts";

const MAX_COMMANDS = 6;
const REPO = "acme/app";
const GH_TOKEN = "github_pat_fake_readme_path_0123456789";

interface ReadmeStep {
  n: number;
  /** The command as the README writes it; "" for a step that is not a command line (the paste). */
  command: string;
  note: string;
}

/** The numbered steps of "## Deploying for real"'s first sh block: each line `<command>  # N. note`, or `# N. note`. */
function readmeSteps(markdown: string): { steps: ReadmeStep[]; section: string } {
  const start = markdown.indexOf("\n## Deploying for real\n");
  if (start < 0) throw new Error('README.md has no "## Deploying for real" section');
  const end = markdown.indexOf("\n## ", start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  const block = /\n```sh\n([\s\S]*?)\n```/.exec(section)?.[1];
  if (block === undefined) throw new Error('README.md "Deploying for real" has no ```sh block');
  const steps = block.split("\n").filter((l) => l.trim() !== "").map((line, i): ReadmeStep => {
    const m = /^(.*?)\s*# (\d+)\. (.+)$/.exec(line);
    if (!m) throw new Error(`README.md "Deploying for real", line ${i + 1} of the sh block is not "<command>  # N. what": ${JSON.stringify(line)}`);
    return { n: Number(m[2]), command: m[1]!.trim(), note: m[3]! };
  });
  steps.forEach((s, i) => {
    if (s.n !== i + 1) throw new Error(`README.md "Deploying for real": step ${i + 1} is numbered ${s.n}`);
  });
  return { steps, section };
}

/** PATH as a person's shell has it: without the checkout's node_modules/.bin that vitest put first. */
function personPath(): string {
  return (process.env.PATH ?? "").split(delimiter).filter((p) => p !== "" && !p.includes("node_modules")).join(delimiter);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** bash reading `script` on stdin, as a pasted or typed line is read; async, so the fake GitHub in this process can answer. */
function bash(script: string, cwd: string, env: NodeJS.ProcessEnv, flags: string[] = []): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [...flags, "-s"], { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(script);
  });
}

/** The block `agents add` printed for the server: from "# On the server" to the install line. */
function serverBlock(stdout: string): string {
  const lines = stdout.split("\n");
  const from = lines.findIndex((l) => l.startsWith("# On the server"));
  const to = lines.findIndex((l) => /hookrelay-agent install /.test(l));
  if (from < 0 || to < from) throw new Error(`agents add printed no server block ("# On the server" … "hookrelay-agent install"):\n${stdout}`);
  return lines.slice(from, to + 1).join("\n") + "\n";
}

/** The block with the machine's paths under `root` (not inside the heredoc: the config names the server's paths, and install --root maps those). */
function underRoot(block: string, root: string): string {
  let inHeredoc = false;
  return block
    .split("\n")
    .map((line) => {
      if (inHeredoc) {
        if (line === "EOF") inHeredoc = false;
        return line;
      }
      if (/<<'EOF'$/.test(line)) inHeredoc = true;
      let out = line.startsWith("#") ? line : line.replace(/(^|[\s(>'"])\/(etc|usr\/local\/bin|tmp)(?=[/\s)]|$)/g, `$1${root}/$2`);
      out = out.replace(/(hookrelay-agent install --config [^\s']+)/, `$1 --root ${root}`);
      return out;
    })
    .join("\n");
}

/** What a newcomer's machine and server have that this test does not bring: npm/npx, curl, sha256sum, a distro Node ≥ 18 for the agent. */
function missingTools(): string | null {
  const find = (cmd: string) => spawnSync("bash", ["-c", `command -v ${cmd}`], { env: { ...process.env, PATH: personPath() }, encoding: "utf8" }).stdout.trim();
  for (const cmd of ["npx", "curl", "sha256sum"]) if (find(cmd) === "") return `no ${cmd} on PATH (outside node_modules)`;
  const node = find("node");
  if (node === "") return "no node on PATH (outside node_modules): the installed agent runs on the distro's Node 18+";
  const major = Number(/^v(\d+)/.exec(spawnSync(node, ["--version"], { encoding: "utf8" }).stdout)?.[1] ?? 0);
  return major >= 18 ? null : `${node} is Node ${major}: the installed agent needs 18 or later`;
}

const missing = missingTools();
if (missing) console.warn(`[readme-path.e2e] skipped: ${missing}`);

// The checkout's README: the clone's too, once beforeAll has copied the working tree over it.
const { steps, section } = readmeSteps(readFileSync(join(REPO_ROOT, "README.md"), "utf8"));

describe("the README's real path", () => {
  it(`is at most ${MAX_COMMANDS} commands, and the README says how many`, () => {
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.length, steps.map((s) => `${s.n}. ${s.command || s.note}`).join("\n")).toBeLessThanOrEqual(MAX_COMMANDS);
    expect(section).toContain(`**${steps.length} commands from a clone of this repository to a deployed push.**`);
  });
});

describe.skipIf(missing !== null)("the README's real path, word for word, from a fresh clone", () => {
  const scratch = mkdtempSync(join(tmpdir(), "hookrelay-readme-path-"));
  const clone = join(scratch, "hookrelay");
  const root = join(scratch, "server");
  const wranglerState = join(scratch, "cloudflare.json");
  let port = 0;
  let worker: WorkerProcess | undefined;
  let github: FakeGitHub;
  let agent: AgentProcess | undefined;
  let app: GitRepo;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    port = await freePort();
    github = await startFakeGitHub({ tokens: [GH_TOKEN] });
    app = createRepo({ "README.md": "app v1\n" });
    mkdirSync(join(scratch, "home"));
    for (const dir of ["tmp", "usr/local/bin", "etc"]) mkdirSync(join(root, dir), { recursive: true });
    git(scratch, "clone", "-q", REPO_ROOT, clone);
    for (const file of git(REPO_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")) {
      if (file === "" || !existsSync(join(REPO_ROOT, file))) continue; // deleted in the working tree
      mkdirSync(dirname(join(clone, file)), { recursive: true });
      copyFileSync(join(REPO_ROOT, file), join(clone, file));
    }
    env = { ...process.env, PATH: personPath(), HOME: join(scratch, "home"), XDG_CONFIG_HOME: join(scratch, "home/.config"), GITHUB_TOKEN: GH_TOKEN, GITHUB_API_URL: github.url, WRANGLER_SEND_METRICS: "false", ...setUpFakeWrangler(wranglerState, `http://127.0.0.1:${port}`) };
    for (const k of ["HOOKRELAY_URL", "HOOKRELAY_ADMIN_TOKEN", "HOOKRELAY_AGENT_TOKEN", "GIT_DIR", "GIT_WORK_TREE"]) delete env[k];
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await worker?.stop();
    await github?.close();
  });

  it("run in order, they deploy a real push with a real agent", async () => {
    let printedBlock: string | null = null;
    let pushedSha: string | null = null;
    /** Everything the steps printed but `agents add`'s own output (which shows the agent's token, once). */
    let printed = "";
    for (const step of steps) {
      const label = `README step ${step.n} (${step.command || step.note})`;
      if (step.command === "npm ci") {
        const r = await bash(`${step.command} --dry-run --offline --ignore-scripts --no-audit --no-fund`, clone, env);
        expect(r.code, `${label}: ${r.stdout}${r.stderr}`).toBe(0);
        symlinkSync(join(REPO_ROOT, "node_modules"), join(clone, "node_modules"));
        continue;
      }
      if (step.command === "") {
        // The one step that is not a command line: the block the CLI printed, pasted on the server.
        expect(step.note, label).toMatch(/paste the block/);
        expect(printedBlock, `${label}: no earlier step printed a block to paste`).not.toBeNull();
        const block = underRoot(printedBlock!, root);
        const r = await bash(block, root, { ...env, PATH: `${join(root, "usr/local/bin")}${delimiter}${personPath()}` }, ["-e", "-o", "pipefail"]);
        expect(r.code, `${label}:\n${block}\n${r.stdout}${r.stderr}`).toBe(0);
        expect(r.stdout + r.stderr).toContain("hookrelay-agent.mjs: OK");
        printed += r.stdout + r.stderr;
        continue;
      }
      const command = step.command.replaceAll("OWNER/APP", REPO).replaceAll("/srv/app", app.live);
      const inApp = /^git /.test(command);
      if (inApp) {
        // Something to deploy: a commit in the app's clone, pushed by the README's command.
        git(app.work, "checkout", "-q", "main");
        writeFileSync(join(app.work, "deployed.txt"), `pushed by ${label}\n`);
        git(app.work, "add", "deployed.txt");
        git(app.work, "commit", "-q", "-m", "what the README's push deploys");
      }
      const r = await bash(command, inApp ? app.work : clone, env);
      expect(r.code, `${label}: ${r.stdout}${r.stderr}`).toBe(0);
      if (/hookrelay agents add /.test(command)) printedBlock = serverBlock(r.stdout);
      else printed += r.stdout + r.stderr;
      if (inApp) pushedSha = git(app.origin, "rev-parse", "refs/heads/main");
      // Once the stand-in wrangler has deployed, the worker is up at the URL it printed, with the secrets init put.
      const cloudflare = readFakeWranglerState(wranglerState);
      if (cloudflare.deploys > 0 && worker === undefined) {
        expect(cloudflare.logins, "init logged in (the stand-in started logged out)").toBe(1);
        expect(Object.keys(cloudflare.secrets).sort()).toEqual(["ADMIN_TOKEN", "GITHUB_WEBHOOK_SECRET"]);
        worker = await startWorker({ port, secrets: { GITHUB_WEBHOOK_SECRET: cloudflare.secrets.GITHUB_WEBHOOK_SECRET!, ADMIN_TOKEN: cloudflare.secrets.ADMIN_TOKEN! } });
      }
      // Once installed on the "server", the agent runs as its unit would: the installed file, the distro's node.
      if (printedBlock !== null && agent === undefined && existsSync(join(root, "etc/hookrelay/token"))) {
        agent = startInstalledAgent();
        // As `systemctl enable --now` returns with the agent started: on to the next step once it is online.
        const adminToken = readFakeWranglerState(wranglerState).secrets.ADMIN_TOKEN;
        await eventually("the installed agent web-1 online with its pipeline", async () => {
          const res = await fetch(`http://127.0.0.1:${port}/api/targets/default/agents`, { headers: { authorization: `Bearer ${adminToken}` } });
          const body = (await res.json()) as { agents: { name: string; connected: boolean; pipelines: { name: string }[] }[] };
          return body.agents.find((a) => a.name === "web-1" && a.connected && a.pipelines.some((p) => p.name === "app"));
        }, 30_000, 250);
      }
    }

    // What the steps left: the worker, the installed agent, GitHub's hook (its ping answered 200), a push.
    expect(worker, "no step deployed the worker (the stand-in wrangler's deploy never ran)").toBeDefined();
    expect(agent, "no step installed the agent (no token file under the server's /etc/hookrelay)").toBeDefined();
    const hooks = github.hooks(REPO);
    expect(hooks.map((h) => h.config.url)).toEqual([`http://127.0.0.1:${port}/webhook`]);
    expect(github.deliveries(REPO, hooks[0]!.id).find((d) => d.event === "ping")?.status_code).toBe(200);
    expect(pushedSha, "no step pushed to the app's repository").toMatch(/^[0-9a-f]{40}$/);

    // GitHub's part of `git push`: the push event to the hook, signed with the secret the hook was given.
    const text = JSON.stringify(pushPayload({ repo: REPO, ref: "refs/heads/main", after: pushedSha! }));
    const res = await fetch(hooks[0]!.config.url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "GitHub-Hookshot/fake", "x-github-event": "push", "x-github-delivery": randomUUID(), "x-github-hook-id": String(hooks[0]!.id), "x-hub-signature-256": `sha256=${createHmac("sha256", hooks[0]!.config.secret!).update(text).digest("hex")}` },
      body: text,
    });
    const answer = (await res.json()) as { deployments?: { id: string }[] };
    expect(res.status, JSON.stringify(answer)).toBe(202);
    const deployment = answer.deployments?.[0]?.id;
    expect(deployment).toBeDefined();

    // The newcomer's way to watch it: `npx hookrelay logs <id> -f` exits 0 once it succeeded.
    const logs = await bash(`npx hookrelay logs ${deployment} -f`, clone, env);
    expect(logs.code, logs.stdout + logs.stderr).toBe(0);
    expect(logs.stderr).toContain(`deployment ${deployment}: succeeded`);
    expect(logs.stdout).toContain("fetch");
    // And on disk: the pushed commit is what the server's workdir has checked out.
    expect(git(app.live, "rev-parse", "HEAD")).toBe(pushedSha);
    expect(readFileSync(join(app.live, "deployed.txt"), "utf8")).toMatch(/^pushed by README step \d+/);

    // No secret was printed by any other step, nor given to wrangler as an argument.
    const cloudflare = readFakeWranglerState(wranglerState);
    const agentToken = /HOOKRELAY_AGENT_TOKEN='([^']+)'/.exec(printedBlock ?? "")?.[1];
    expect(agentToken).toMatch(/^hra_/);
    for (const secret of [...Object.values(cloudflare.secrets), agentToken!, GH_TOKEN, hooks[0]!.config.secret!]) {
      expect(printed + logs.stdout + logs.stderr).not.toContain(secret);
      expect(cloudflare.calls.some((c) => c.argv.some((a) => a.includes(secret)))).toBe(false);
    }
  }, 300_000);

  /** The installed agent, on the installed config with its paths under the scratch root (as install --root wrote them). */
  function startInstalledAgent(): AgentProcess {
    const installed = join(root, "usr/local/bin/hookrelay-agent");
    expect(statSync(installed).mode & 0o777).toBe(0o755);
    const served = readFileSync(join(root, "tmp/hookrelay-agent.mjs"));
    expect(readFileSync(installed).equals(served)).toBe(true);
    const unit = readFileSync(join(root, "etc/systemd/system/hookrelay-agent.service"), "utf8");
    expect(unit).toContain(`${installed} run --config ${join(root, "etc/hookrelay/agent.yml")}`);
    const config = parseYaml(readFileSync(join(root, "etc/hookrelay/agent.yml"), "utf8")) as Record<string, unknown>;
    expect(config).toMatchObject({ server: `ws://127.0.0.1:${port}`, name: "web-1", token_file: "/etc/hookrelay/token", pipelines: [{ repo: REPO, workdir: app.live, branches: ["main"] }] });
    const rooted = join(root, "etc/hookrelay/agent-rooted.yml");
    const stateDir = join(root, "var/lib/hookrelay");
    writeFileSync(rooted, stringifyYaml({ ...config, token_file: join(root, "etc/hookrelay/token"), state_dir: stateDir }));
    return startAgentWithConfig(rooted, stateDir, { label: "installed agent web-1", command: [installed], env: { PATH: personPath() } });
  }
});
