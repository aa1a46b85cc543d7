/**
 * Where the CLI finds the worker and its admin token: env HOOKRELAY_URL / HOOKRELAY_ADMIN_TOKEN first,
 * then `$XDG_CONFIG_HOME/hookrelay/config.json` (default `~/.config/hookrelay/config.json`), which
 * `hookrelay init` writes with mode 0600. Each value remembers where it came from, so an error can say
 * which one was refused.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { CliError } from "./output.ts";

export const URL_ENV = "HOOKRELAY_URL";
export const TOKEN_ENV = "HOOKRELAY_ADMIN_TOKEN";

export interface SavedConfig {
  url?: string;
  adminToken?: string;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith("/") ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), ".config");
  return join(base, "hookrelay", "config.json");
}

export function readConfig(path: string): SavedConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return {};
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`${path} is not JSON: fix or remove it, then run \`hookrelay init\``);
  }
  if (typeof value !== "object" || value === null) throw new CliError(`${path} must hold a JSON object {url, adminToken}`);
  const v = value as Record<string, unknown>;
  return {
    ...(typeof v.url === "string" ? { url: v.url } : {}),
    ...(typeof v.adminToken === "string" ? { adminToken: v.adminToken } : {}),
  };
}

/** Writes the config (0600, in a 0700 directory, replaced in one rename); false when it already held exactly this. */
export function writeConfig(path: string, config: SavedConfig): boolean {
  const text = JSON.stringify(config, null, 2) + "\n";
  let existing: string | undefined;
  try {
    existing = readFileSync(path, "utf8");
  } catch {
    // not there yet
  }
  if (existing === text) {
    chmodSync(path, 0o600);
    return false;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return true;
}

export interface Connection {
  url: string;
  urlSource: string;
  token: string;
  tokenSource: string;
}

/** The worker's URL (no trailing slash) and the admin token, or an error saying how to set them. */
export function connection(env: NodeJS.ProcessEnv = process.env): Connection {
  const path = configPath(env);
  const saved = readConfig(path);
  const envUrl = env[URL_ENV]?.trim();
  const envToken = env[TOKEN_ENV]?.trim();
  const url = envUrl || saved.url;
  const token = envToken || saved.adminToken;
  if (!url) throw new CliError(`no worker URL: run \`hookrelay init\` or set ${URL_ENV} (e.g. https://hookrelay.<you>.workers.dev)`);
  if (!token) throw new CliError(`no admin token: run \`hookrelay init\` or set ${TOKEN_ENV}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`${envUrl ? URL_ENV : path} has url ${JSON.stringify(url)}, which is not a URL: it must be http(s)://host`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new CliError(`the worker URL ${url} must start with https:// (or http:// for wrangler dev)`);
  return {
    url: url.replace(/\/+$/, ""),
    urlSource: envUrl ? `environment variable ${URL_ENV}` : path,
    token,
    tokenSource: envToken ? `environment variable ${TOKEN_ENV}` : `the config file ${path}`,
  };
}
