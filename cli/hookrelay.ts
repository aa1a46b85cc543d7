#!/usr/bin/env node
/**
 * `hookrelay`: the operator's CLI (docs/cli.md). `npx hookrelay …` in the checkout (npm links it from
 * the `cli` workspace into node_modules/.bin, where the project's Node 22 runs this .ts directly).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { Client } from "./client.ts";
import { agentsAdd, agentsList, checkPipelineFlags, agentsRevoke, agentsRotate, decide, deploy, type Io, logs, status } from "./commands.ts";
import { init } from "./init.ts";
import { webhookAdd } from "./webhook.ts";
import { CliError } from "./output.ts";
import { connection } from "./settings.ts";

const MAIN_HELP = `hookrelay: set up and drive a hookrelay worker from the command line.

Usage: hookrelay <command> [options]      (in the checkout: npx hookrelay …)

Setup:
  init [--local] [--rotate] [--url URL]   make the worker's secrets, deploy it, save URL + admin token
  agents add NAME [--repo OWNER/NAME --workdir DIR [--branch B]] [--target T]
                                          register a server's agent: its token and the block to
                                          paste on the server (config filled in from the flags)
  agents ls | rotate NAME | revoke NAME   list, new token, remove
  webhook add --repo OWNER/NAME [--token TOKEN]
                                          create (or update) the repository's GitHub webhook for the
                                          target, then report whether GitHub's ping reached the worker

Deploys:
  deploy --pipeline P [--sha S | --ref R] run a pipeline again (default: its last sha and ref)
  status [TARGET]                         recent deployments and their status
  logs ID [-f]                            a deployment's (or a job's) log; -f follows it live to its end
  approve ID [--note TEXT]                let a deployment waiting for approval run
  reject ID [--note TEXT]                 block it

The worker and token: env HOOKRELAY_URL and HOOKRELAY_ADMIN_TOKEN, else the config that init saves
(\${XDG_CONFIG_HOME:-~/.config}/hookrelay/config.json). Every command takes --target T (default:
default) and --help; read commands take --json. Full reference: docs/cli.md.
`;

interface Spec {
  usage: string;
  about: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  /** Positional arguments: [min, max]. */
  positionals: [number, number];
}

const TARGET = { type: "string", default: "default" } as const;
const JSON_OPT = { type: "boolean", default: false } as const;
const HELP = { type: "boolean", short: "h", default: false } as const;

const SPECS: Record<string, Spec> = {
  init: {
    usage: "hookrelay init [--local] [--rotate] [--url URL]",
    about: `Makes GITHUB_WEBHOOK_SECRET and ADMIN_TOKEN (32 random bytes each, never printed) and saves the
worker's URL and the admin token to the config file (mode 0600).
  --local    write them into ./.dev.vars (other lines kept) for \`npm run dev\`; the URL is
             ${"http://127.0.0.1:8787"} unless --url says otherwise
  (default)  run \`wrangler login\` if \`wrangler whoami\` says this machine is not logged in (it opens
             a browser), \`wrangler deploy\`, then \`wrangler secret put\` for each secret the worker
             lacks (the value on wrangler's stdin); the URL is the one wrangler prints, or --url
  --rotate   replace secrets that are already there (agents keep their own tokens; GitHub's hook
             needs the new webhook secret)
  --url URL  the worker's URL (a custom domain, another port)
Run again, it keeps what is there and rewrites nothing that would not change.`,
    options: { local: { type: "boolean", default: false }, rotate: { type: "boolean", default: false }, url: { type: "string" }, help: HELP },
    positionals: [0, 0],
  },
  "agents add": {
    usage: "hookrelay agents add NAME [--repo OWNER/NAME] [--workdir DIR] [--branch B] [--target T] [--json]",
    about: `Registers agent NAME in the target and prints its token (once) and the block to paste, as root, on
the server: fetch the worker's agent bundle (checked with sha256sum -c), write /etc/hookrelay/agent.yml,
check it, install the systemd service (the token reaches it through its environment, never argv).
  --repo OWNER/NAME  the GitHub repository the config's pipeline deploys
  --workdir DIR      the absolute path of its git clone on the server (the pipeline's steps run there)
  --branch B         the branch (or glob) to deploy (default: main)
Without --repo and --workdir the config has placeholders to edit before pasting.`,
    options: { repo: { type: "string" }, workdir: { type: "string" }, branch: { type: "string" }, target: TARGET, json: JSON_OPT, help: HELP },
    positionals: [1, 1],
  },
  "agents ls": {
    usage: "hookrelay agents ls [--target T] [--json]",
    about: "Lists the target's agents: connected or not, version, pipelines, the job each runs now.",
    options: { target: TARGET, json: JSON_OPT, help: HELP },
    positionals: [0, 0],
  },
  "agents rotate": {
    usage: "hookrelay agents rotate NAME [--target T] [--json]",
    about: "Gives agent NAME a new token (printed once): the old one stops working and its connection is closed.",
    options: { target: TARGET, json: JSON_OPT, help: HELP },
    positionals: [1, 1],
  },
  "agents revoke": {
    usage: "hookrelay agents revoke NAME [--target T] [--json]",
    about: "Removes agent NAME: its connection is closed, its queued jobs end canceled, a running one interrupted.",
    options: { target: TARGET, json: JSON_OPT, help: HELP },
    positionals: [1, 1],
  },
  "webhook add": {
    usage: "hookrelay webhook add --repo OWNER/NAME [--target T] [--token TOKEN] [--json]",
    about: `Creates the repository's GitHub webhook for target T (an existing one with the same payload URL is
updated, not duplicated): payload URL <worker>/webhook (target default) or <worker>/webhook/<T>, the
target's own secret (from the worker), content type json, SSL verification on, events push,
workflow_run and check_run. Then waits up to 30 s for GitHub's ping and prints what the worker answered
(200: it reached the worker; 401: the secret differs). Exits 0 only when the ping got 200.
  --repo OWNER/NAME  the GitHub repository
  --token TOKEN      a GitHub token with Repository → Webhooks: Read and write (default: env GITHUB_TOKEN)
GITHUB_API_URL sets the API (default https://api.github.com). Neither the token nor the secret is printed.`,
    options: { repo: { type: "string" }, token: { type: "string" }, target: TARGET, json: JSON_OPT, help: HELP },
    positionals: [0, 0],
  },
  deploy: {
    usage: "hookrelay deploy --pipeline P [--sha S | --ref R] [--agent A] [--target T] [--json]",
    about: `Deploys pipeline P again on every agent declaring it (or --agent A alone): the sha and ref of its
last job, or --sha (40 hex digits) and/or --ref (a branch, or refs/heads/<branch>).`,
    options: { pipeline: { type: "string" }, sha: { type: "string" }, ref: { type: "string" }, agent: { type: "string" }, target: TARGET, json: JSON_OPT, help: HELP },
    positionals: [0, 0],
  },
  status: {
    usage: "hookrelay status [TARGET] [--limit N] [--json]",
    about: "Lists the target's recent deployments (newest first) with their status.",
    options: { target: TARGET, limit: { type: "string", default: "10" }, json: JSON_OPT, help: HELP },
    positionals: [0, 1],
  },
  logs: {
    usage: "hookrelay logs DEPLOYMENT_OR_JOB [-f] [--target T]",
    about: `Prints a deployment's jobs' logs (each host in rollout order), or one job's. -f follows them live
until they end, then exits 0 if it succeeded, 1 if not. Colours are kept on a terminal, stripped
when stdout is a file or a pipe.`,
    options: { follow: { type: "boolean", short: "f", default: false }, target: TARGET, help: HELP },
    positionals: [1, 1],
  },
  approve: {
    usage: "hookrelay approve DEPLOYMENT [--note TEXT] [--target T] [--json]",
    about: "Approves a deployment waiting for approval (wait_for: {approval: true}): it runs once its other gates pass.",
    options: { note: { type: "string" }, target: TARGET, json: JSON_OPT, help: HELP },
    positionals: [1, 1],
  },
  reject: {
    usage: "hookrelay reject DEPLOYMENT [--note TEXT] [--target T] [--json]",
    about: "Rejects a deployment waiting for approval: it ends blocked and nothing runs.",
    options: { note: { type: "string" }, target: TARGET, json: JSON_OPT, help: HELP },
    positionals: [1, 1],
  },
};

const AGENTS_HELP = `Usage: hookrelay agents <add NAME | ls | rotate NAME | revoke NAME> [--target T] [--json]

${["add", "ls", "rotate", "revoke"].map((s) => `  ${SPECS[`agents ${s}`]!.usage}\n      ${SPECS[`agents ${s}`]!.about}`).join("\n")}
`;

export async function main(argv: string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    io.out(MAIN_HELP);
    return first === undefined ? 2 : 0;
  }
  if (first === "--version") {
    io.out("hookrelay 0.1.0\n");
    return 0;
  }
  let name = first;
  let args = rest;
  if (first === "webhook") {
    const sub = rest[0];
    if (sub === undefined || sub === "--help" || sub === "-h") {
      const w = SPECS["webhook add"]!;
      io.out(`Usage: ${w.usage}\n\n${w.about}\n`);
      return sub === undefined ? 2 : 0;
    }
    name = `webhook ${sub}`;
    args = rest.slice(1);
  }
  if (first === "agents") {
    const sub = rest[0];
    if (sub === undefined || sub === "--help" || sub === "-h") {
      io.out(AGENTS_HELP);
      return sub === undefined ? 2 : 0;
    }
    name = `agents ${sub === "list" ? "ls" : sub}`;
    args = rest.slice(1);
  }
  const spec = SPECS[name];
  if (!spec) throw new CliError(`unknown command ${JSON.stringify(name)}: \`hookrelay --help\` lists them`, 2);
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options: spec.options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (e) {
    throw new CliError(`${(e as Error).message.split("\n")[0]}\nusage: ${spec.usage}`, 2);
  }
  const v = parsed.values;
  const pos = parsed.positionals;
  if (v.help) {
    io.out(`Usage: ${spec.usage}\n\n${spec.about}\n`);
    return 0;
  }
  if (pos.length < spec.positionals[0] || pos.length > spec.positionals[1]) {
    throw new CliError(`${pos.length < spec.positionals[0] ? "missing an argument" : `unexpected argument ${JSON.stringify(pos[spec.positionals[1]])}`}\nusage: ${spec.usage}`, 2);
  }
  const target = name === "status" && pos[0] !== undefined ? pos[0] : (v.target as string);
  const json = v.json === true;

  if (name === "init") {
    await init({ local: v.local === true, rotate: v.rotate === true, url: v.url as string | undefined, cwd: process.cwd(), env, out: (line) => io.out(line + "\n") });
    return 0;
  }
  if (name === "webhook add" && typeof v.repo !== "string") throw new CliError(`--repo OWNER/NAME is required\nusage: ${spec.usage}`, 2);
  // Usage errors before anything else: a bad flag never registers an agent or needs the worker.
  if (name === "agents add") checkPipelineFlags({ repo: v.repo as string | undefined, workdir: v.workdir as string | undefined, branch: v.branch as string | undefined });
  const client = new Client(connection(env));
  switch (name) {
    case "agents add":
      await agentsAdd(client, io, target, pos[0]!, json, { repo: v.repo as string | undefined, workdir: v.workdir as string | undefined, branch: v.branch as string | undefined });
      return 0;
    case "agents ls":
      await agentsList(client, io, target, json);
      return 0;
    case "agents rotate":
      await agentsRotate(client, io, target, pos[0]!, json);
      return 0;
    case "agents revoke":
      await agentsRevoke(client, io, target, pos[0]!, json);
      return 0;
    case "webhook add":
      return webhookAdd(client, io, { repo: v.repo as string, target, token: v.token as string | undefined, json }, env);
    case "deploy": {
      if (typeof v.pipeline !== "string") throw new CliError(`--pipeline is required\nusage: ${spec.usage}`, 2);
      await deploy(client, io, { target, pipeline: v.pipeline, sha: v.sha as string | undefined, ref: v.ref as string | undefined, agent: v.agent as string | undefined, json });
      return 0;
    }
    case "status": {
      const limit = Number(v.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new CliError("--limit must be an integer from 1 to 200", 2);
      await status(client, io, target, limit, json);
      return 0;
    }
    case "logs":
      return logs(client, io, target, pos[0]!, v.follow === true);
    case "approve":
    case "reject":
      await decide(client, io, target, pos[0]!, name, v.note as string | undefined, json);
      return 0;
    default:
      throw new CliError(`unknown command ${name}`, 2);
  }
}

if (import.meta.main) {
  const io: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), tty: process.stdout.isTTY === true };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      if (e instanceof CliError) {
        process.stderr.write(`hookrelay: ${e.message}\n`);
        process.exitCode = e.code;
      } else {
        process.stderr.write(`hookrelay: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
