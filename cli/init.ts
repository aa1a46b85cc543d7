/**
 * `hookrelay init`: the worker's two secrets, made here (crypto.randomBytes) and never shown.
 * - `--local`: into `.dev.vars` (the other lines kept), for `wrangler dev`;
 * - else `wrangler login` when `wrangler whoami` says this machine is not logged in (interactive: it
 *   opens the browser), `wrangler deploy`, then `wrangler secret put NAME` for each secret the worker
 *   lacks (the value on wrangler's stdin, never in argv).
 * Then the URL and the admin token go to the CLI's config file (0600). Run again, it keeps every secret
 * that is there (`--rotate` makes new ones) and rewrites nothing that would not change.
 *
 * Tests only: env HOOKRELAY_WRANGLER names a Node script run instead of the checkout's wrangler
 * (testing/fake-wrangler.ts), so `init` runs end to end without Cloudflare.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { CliError } from "./output.ts";
import { configPath, readConfig, TOKEN_ENV, writeConfig } from "./settings.ts";

/** The worker's minimums (worker/http/admin-secret.ts, worker/webhook/signature.ts); ours are well above. */
const MIN_ADMIN_TOKEN_CHARS = 32;
const MIN_WEBHOOK_SECRET_BYTES = 16;
export const SECRET_NAMES = ["GITHUB_WEBHOOK_SECRET", "ADMIN_TOKEN"] as const;
type SecretName = (typeof SECRET_NAMES)[number];
export const LOCAL_URL = "http://127.0.0.1:8787";
/** For tests only (docs/cli.md): a Node script to run instead of the checkout's wrangler. */
export const WRANGLER_ENV = "HOOKRELAY_WRANGLER";

export interface InitOptions {
  local: boolean;
  rotate: boolean;
  url?: string;
  /** The checkout (where .dev.vars and wrangler.toml are). */
  cwd: string;
  env: NodeJS.ProcessEnv;
  out: (line: string) => void;
}

/** 32 random bytes as 64 hex digits: no quoting needed anywhere, far above both minimums. */
export function newSecret(): string {
  return randomBytes(32).toString("hex");
}

/** Why a value already there cannot stay (the example's placeholder, or shorter than the worker accepts), or null. */
function unusable(name: SecretName, value: string): string | null {
  if (/^change-me/.test(value)) return "it is the example's placeholder";
  if (name === "ADMIN_TOKEN" && value.length < MIN_ADMIN_TOKEN_CHARS) return `it is shorter than ${MIN_ADMIN_TOKEN_CHARS} characters`;
  if (name === "GITHUB_WEBHOOK_SECRET" && Buffer.byteLength(value.split(/[,\n]/)[0] ?? "") < MIN_WEBHOOK_SECRET_BYTES) return `it is shorter than ${MIN_WEBHOOK_SECRET_BYTES} bytes`;
  return null;
}

function unquote(raw: string): string {
  const v = raw.trim();
  if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) {
    return v.startsWith('"') ? v.slice(1, -1).replace(/\\n/g, "\n") : v.slice(1, -1);
  }
  return v;
}

export async function init(o: InitOptions): Promise<void> {
  if (o.url !== undefined && !/^https?:\/\/[^\s/]+/.test(o.url)) throw new CliError(`--url ${o.url}: must be http(s)://host`, 2);
  const checkout = existsSync(join(o.cwd, "wrangler.toml"));
  if (!o.local && !checkout) throw new CliError(`no wrangler.toml in ${o.cwd}: run \`npx hookrelay init\` in the hookrelay checkout (wrangler deploys the worker from there)`);
  if (o.local && !checkout) o.out(`note: no wrangler.toml in ${o.cwd}: \`npm run dev\` reads the .dev.vars next to it, so run this in the checkout`);
  const adminToken = o.local ? initLocal(o) : initCloudflare(o);
  const path = configPath(o.env);
  const saved = readConfig(path);
  const url = (o.url ?? (o.local ? LOCAL_URL : adminToken.url)).replace(/\/+$/, "");
  const next = { url, adminToken: adminToken.value ?? (saved.url === url ? saved.adminToken : undefined) };
  if (next.adminToken === undefined) {
    // Nothing to save a token from: the worker has one this machine does not know.
    delete next.adminToken;
  }
  const changed = writeConfig(path, next);
  o.out(`${changed ? "saved" : "unchanged"}: ${path} (mode 0600): url ${url}${next.adminToken ? " and the admin token" : ""}`);
  if (!next.adminToken) {
    o.out(`ADMIN_TOKEN is set on the worker but not known here: set ${TOKEN_ENV} to it, or run \`hookrelay init --rotate\` for new secrets`);
  }
  o.out("");
  if (o.local) {
    o.out("Next: start the worker with `npm run dev` (it reads .dev.vars), then register a server:");
  } else {
    o.out("Next: register a server:");
  }
  o.out("  npx hookrelay agents add web-1 --repo OWNER/NAME --workdir /srv/app");
}

function initLocal(o: InitOptions): { value: string; url: string } {
  const file = join(o.cwd, ".dev.vars");
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    // made below
  }
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  const values: Partial<Record<SecretName, string>> = {};
  for (const name of SECRET_NAMES) {
    const index = lines.findIndex((l) => new RegExp(`^\\s*(?:export\\s+)?${name}\\s*=`).test(l));
    const existing = index < 0 ? undefined : unquote(lines[index]!.slice(lines[index]!.indexOf("=") + 1));
    const why = existing === undefined ? "not set" : o.rotate ? "--rotate" : unusable(name, existing);
    if (why === null) {
      values[name] = existing!;
      o.out(`kept: ${name} in ${file}`);
      continue;
    }
    const value = newSecret();
    values[name] = value;
    if (index < 0) lines.push(`${name}=${value}`);
    else lines[index] = `${name}=${value}`;
    o.out(`${existing === undefined ? "made" : "replaced"}: ${name} in ${file} (${why})`);
  }
  const next = lines.join("\n") + "\n";
  if (next !== text) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, next, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  }
  return { value: values.ADMIN_TOKEN!, url: LOCAL_URL };
}

/**
 * The wrangler `init` runs: the checkout's, by this same Node (22: wrangler refuses an older one that may
 * come first on PATH) — or, for tests, the script HOOKRELAY_WRANGLER names (an absolute path), by this Node too.
 */
export function wranglerScript(env: NodeJS.ProcessEnv): { path: string; standIn: boolean } {
  const override = env[WRANGLER_ENV];
  if (override === undefined || override === "") return { path: join(new URL("..", import.meta.url).pathname, "node_modules/.bin/wrangler"), standIn: false };
  if (!isAbsolute(override) || !existsSync(override)) throw new CliError(`${WRANGLER_ENV}=${override}: must be the absolute path of a script that stands in for wrangler (tests only); unset it to use the checkout's wrangler`, 2);
  return { path: override, standIn: true };
}

function wrangler(o: InitOptions, args: string[]): [string, string[], { cwd: string; env: NodeJS.ProcessEnv }] {
  return [process.execPath, [wranglerScript(o.env).path, ...args], { cwd: o.cwd, env: { ...o.env, WRANGLER_SEND_METRICS: o.env.WRANGLER_SEND_METRICS ?? "false" } }];
}

/**
 * The worker's URL in `wrangler deploy`'s output: its workers.dev URL. A loopback http URL only from a
 * stand-in (HOOKRELAY_WRANGLER), which serves the worker under `wrangler dev`; never from the real one.
 */
export function deployedUrl(output: string, standIn: boolean): string | undefined {
  const workersDev = /https:\/\/[A-Za-z0-9.-]+\.workers\.dev/.exec(output)?.[0];
  if (workersDev || !standIn) return workersDev;
  return /http:\/\/127\.0\.0\.1:\d+/.exec(output)?.[0];
}

/** `wrangler whoami --json` exits 0 with {loggedIn: true, …} when logged in (or CLOUDFLARE_API_TOKEN works); else `wrangler login`, interactive. */
function ensureLoggedIn(o: InitOptions): void {
  const [cmd, args, opts] = wrangler(o, ["whoami", "--json"]);
  const r = spawnSync(cmd, args, { ...opts, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  let who: unknown = null;
  try {
    who = JSON.parse(r.stdout.slice(r.stdout.indexOf("{")));
  } catch {
    // not JSON: not logged in (or wrangler failed; login says why)
  }
  if (r.status === 0 && typeof who === "object" && who !== null && (who as Record<string, unknown>).loggedIn === true) {
    const email = (who as Record<string, unknown>).email;
    o.out(`logged in to Cloudflare${typeof email === "string" ? ` as ${email}` : ""} (wrangler whoami)`);
    return;
  }
  o.out("not logged in to Cloudflare: running `wrangler login` (it opens a browser to authorize wrangler)");
  const [lcmd, largs, lopts] = wrangler(o, ["login"]);
  const login = spawnSync(lcmd, largs, { ...lopts, stdio: "inherit" });
  if (login.status !== 0) throw new CliError("wrangler login failed (its output is above): run `npx wrangler login` yourself, then `npx hookrelay init` again");
}

/** The names of the secrets the deployed worker has (`wrangler secret list`). */
function secretNames(o: InitOptions): Set<string> {
  const [cmd, args, opts] = wrangler(o, ["secret", "list", "--format", "json"]);
  const r = spawnSync(cmd, args, { ...opts, encoding: "utf8" });
  if (r.status !== 0) throw new CliError(`wrangler secret list failed (${(r.stderr || r.stdout).trim().split("\n").pop() ?? r.status}): run \`npx wrangler login\` first`);
  try {
    return new Set((JSON.parse(r.stdout) as { name: string }[]).map((s) => s.name));
  } catch {
    throw new CliError(`wrangler secret list printed something that is not JSON: ${r.stdout.slice(0, 200)}`);
  }
}

function initCloudflare(o: InitOptions): { value: string | undefined; url: string } {
  const standIn = wranglerScript(o.env).standIn;
  ensureLoggedIn(o);
  o.out("deploying the worker: wrangler deploy");
  let output: string;
  try {
    const [cmd, args, opts] = wrangler(o, ["deploy"]);
    output = execFileSync(cmd, args, { ...opts, encoding: "utf8", stdio: ["inherit", "pipe", "inherit"] });
  } catch {
    throw new CliError(`wrangler deploy failed (its output is above): fix that (\`npx wrangler login\`?) and run \`hookrelay init\` again`);
  }
  o.out(output.trimEnd());
  const url = o.url ?? deployedUrl(output, standIn);
  if (!url) throw new CliError("wrangler deploy did not print a workers.dev URL: run `hookrelay init --url https://<your worker's host>`");
  const have = secretNames(o);
  let adminToken: string | undefined;
  for (const name of SECRET_NAMES) {
    if (have.has(name) && !o.rotate) {
      o.out(`kept: ${name} (already set on the worker)`);
      continue;
    }
    const value = newSecret();
    const [cmd, args, opts] = wrangler(o, ["secret", "put", name]);
    const r = spawnSync(cmd, args, { ...opts, input: value, encoding: "utf8" });
    if (r.status !== 0) throw new CliError(`wrangler secret put ${name} failed: ${(r.stderr || r.stdout).trim().split("\n").pop() ?? r.status}`);
    o.out(`${have.has(name) ? "replaced" : "set"}: ${name} on the worker`);
    if (name === "ADMIN_TOKEN") adminToken = value;
  }
  if (adminToken === undefined) adminToken = o.env[TOKEN_ENV]?.trim() || undefined;
  return { value: adminToken, url };
}
