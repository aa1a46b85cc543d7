/**
 * Where the agent's bearer token comes from, first match wins:
 * env HOOKRELAY_AGENT_TOKEN, then the systemd credential `$CREDENTIALS_DIRECTORY/agent-token`
 * (`LoadCredential=agent-token:/etc/hookrelay/token`), then `token_file`, then `token`.
 * The token never goes in argv, and steps never see it.
 */
import { errorCode, errorMessage } from "../../shared/errors.ts";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { AgentConfig } from "./config.ts";

export const TOKEN_ENV = "HOOKRELAY_AGENT_TOKEN";
export const CREDENTIAL_NAME = "agent-token";

export type TokenResult =
  | { ok: true; token: string; source: string; warnings: string[] }
  | { ok: false; problem: string; warnings: string[] };

export function resolveToken(config: AgentConfig, env: NodeJS.ProcessEnv): TokenResult {
  const warnings: string[] = [];
  const fromEnv = env[TOKEN_ENV]?.trim();
  if (fromEnv) return { ok: true, token: fromEnv, source: `environment variable ${TOKEN_ENV}`, warnings };
  if (env.CREDENTIALS_DIRECTORY) {
    const path = join(env.CREDENTIALS_DIRECTORY, CREDENTIAL_NAME);
    const read = readToken(path);
    if (read.ok) return { ok: true, token: read.token, source: `systemd credential ${path}`, warnings };
  }
  if (config.tokenFile !== null) {
    const read = readToken(config.tokenFile);
    if (!read.ok) return { ok: false, problem: `token_file ${config.tokenFile}: ${read.problem}`, warnings };
    try {
      const mode = statSync(config.tokenFile).mode & 0o777;
      if (mode & 0o077) warnings.push(`token_file ${config.tokenFile} is readable by group or others (mode ${mode.toString(8).padStart(4, "0")}); run chmod 600 on it`);
    } catch {
      // read above worked; a failing stat changes nothing
    }
    return { ok: true, token: read.token, source: `token_file ${config.tokenFile}`, warnings };
  }
  if (config.token !== null && config.token !== "") {
    try {
      if (statSync(config.file).mode & 0o077) warnings.push(`${config.file} holds the token and is readable by group or others; prefer token_file with mode 0600`);
    } catch {
      // not fatal
    }
    return { ok: true, token: config.token, source: "token in the config file", warnings };
  }
  return { ok: false, problem: `no agent token: set token_file (or token) in ${config.file}, or ${TOKEN_ENV}`, warnings };
}

function readToken(path: string): { ok: true; token: string } | { ok: false; problem: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return { ok: false, problem: `cannot read: ${errorCode(e) ?? errorMessage(e)}` };
  }
  const token = text.trim();
  if (!token) return { ok: false, problem: "is empty" };
  if (/\s/.test(token)) return { ok: false, problem: "must hold the token alone on one line" };
  return { ok: true, token };
}
