/** hookrelay-agent: the command line. Usage errors exit 2, config/host problems exit 1. */
import { errorDetail, errorMessage } from "../../shared/errors.ts";
import { realpathSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { JobServer } from "../runtime/job-server.ts";
import { backoffFromEnv } from "../runtime/backoff.ts";
import { checkHost } from "./check.ts";
import { type AgentConfig, loadConfig } from "../common/config.ts";
import { execPipeline, planExec } from "./exec.ts";
import { consoleLogger, type Logger } from "../common/logger.ts";
import { SpoolError } from "../runtime/spool.ts";
import { IS_SEA } from "../common/sea.ts";
import { systemdUnit } from "./systemd.ts";
import { loadSecrets } from "../runtime/secrets.ts";
import { resolveToken, TOKEN_ENV } from "../common/token.ts";
import { carryOut, type InstallOptions, installPlan, uninstallPlan } from "./install.ts";
import { AGENT_VERSION } from "../common/version.ts";

const USAGE = `Usage: hookrelay-agent <command> --config FILE [options]

Commands:
  run      --config FILE                  connect to the worker and run deploy jobs (serve)
  check    --config FILE                  validate the config and this host; print the pipelines
  exec     --config FILE --pipeline NAME [--sha SHA] [--ref refs/heads/BRANCH]
                                          run a pipeline here, without the worker
  systemd  --config FILE [--user NAME] [--node PATH]
                                          print a systemd unit for this agent
  install  --config FILE [--user NAME] [--node PATH] [--dry-run] [--force] [--root DIR]
                                          as root: user, state dir, token file, unit, enable --now
  uninstall --config FILE [--dry-run] [--force] [--root DIR]
                                          as root: stop and remove the unit (keeps user, spool, token)

Options:
  --version   print the version
  --help      print this help

Environment:
  HOOKRELAY_AGENT_TOKEN   the agent token (wins over token_file and token)

Signals (run):
  SIGTERM, SIGINT         stop: the running step gets SIGTERM, then SIGKILL after kill_grace
  SIGHUP                  read the secrets: files again (systemctl reload), for the next job
`;

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  const log = consoleLogger();
  try {
    return await dispatch(argv, log);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`hookrelay-agent: ${errorMessage(e)}\nRun hookrelay-agent --help for usage.\n`);
      return 2;
    }
    throw e;
  }
}

async function dispatch(argv: string[], log: Logger): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      pipeline: { type: "string" },
      sha: { type: "string" },
      ref: { type: "string" },
      user: { type: "string" },
      node: { type: "string" },
      root: { type: "string" },
      "dry-run": { type: "boolean" },
      force: { type: "boolean" },
      version: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`hookrelay-agent ${AGENT_VERSION}\n`);
    return 0;
  }
  const [command, ...extra] = positionals;
  const COMMANDS = ["run", "check", "exec", "systemd", "install", "uninstall"];
  if (command === undefined) throw new UsageError(`missing command (${COMMANDS.join(", ")})`);
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)} (expected ${COMMANDS.join(", ")})`);
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  if (values.config === undefined) throw new UsageError(`${command}: --config FILE is required`);
  const only = (allowed: string[]) => {
    for (const key of ["pipeline", "sha", "ref", "user", "node", "root", "dry-run", "force"] as const) {
      if (values[key] !== undefined && !allowed.includes(key)) throw new UsageError(`${command}: --${key} is not an option of this command`);
    }
  };
  const loaded = loadConfig(values.config);
  const config = (): AgentConfig => {
    if (loaded.ok) return loaded.config;
    throw new ConfigProblems(loaded.problems);
  };
  try {
    switch (command) {
      case "run":
        only([]);
        return await run(config(), log);
      case "check": {
        only([]);
        if (!loaded.ok) {
          for (const p of loaded.problems) process.stderr.write(`${p}\n`);
          process.stderr.write(`${loaded.problems.length} problem(s) found\n`);
          return 1;
        }
        const report = checkHost(loaded.config, process.env);
        for (const w of report.warnings) log.warn(w);
        for (const line of report.summary) process.stdout.write(`${line}\n`);
        for (const p of report.problems) process.stderr.write(`${p}\n`);
        if (report.problems.length > 0) {
          process.stderr.write(`${report.problems.length} problem(s) found\n`);
          return 1;
        }
        process.stdout.write(`${loaded.config.file}: OK\n`);
        return 0;
      }
      case "exec": {
        only(["pipeline", "sha", "ref"]);
        if (values.pipeline === undefined) throw new UsageError("exec: --pipeline NAME is required");
        const c = config();
        const pipeline = c.pipelines.find((p) => p.name === values.pipeline);
        if (!pipeline) throw new UsageError(`exec: no pipeline ${JSON.stringify(values.pipeline)} in ${c.file} (have: ${c.pipelines.map((p) => p.name).join(", ")})`);
        const plan = planExec({ pipeline, sha: values.sha, ref: values.ref });
        if (!plan.ok) throw new UsageError(`exec: ${plan.problem}`);
        const quiet: Logger = { info: () => {}, warn: log.warn, error: log.error };
        const secrets = loadSecrets(c, process.env);
        for (const w of secrets.warnings) log.warn(w);
        if (!secrets.ok) throw new ConfigProblems(secrets.problems);
        const status = await execPipeline(c, pipeline, plan, secrets.secrets, quiet);
        return status === "succeeded" ? 0 : 1;
      }
      case "systemd": {
        only(["user", "node"]);
        const c = config();
        process.stdout.write(systemdUnit(c, { user: values.user ?? "hookrelay", ...agentCommand(values.node) }));
        return 0;
      }
      case "install":
      case "uninstall": {
        only(["user", "node", "root", "dry-run", "force"]);
        const c = config();
        const root = resolve(values.root ?? "/");
        const dryRun = values["dry-run"] === true;
        if (root === "/" && !dryRun && process.getuid?.() !== 0) throw new UsageError(`${command}: run it as root (sudo), or with --dry-run to see the plan`);
        const o: InstallOptions = {
          config: c,
          unit: { user: values.user ?? "hookrelay", ...agentCommand(values.node) },
          root,
          dryRun,
          force: values.force === true,
          token: process.env[TOKEN_ENV]?.trim() || undefined,
          out: (line) => process.stdout.write(`${line}\n`),
        };
        return carryOut(command === "install" ? installPlan(o) : uninstallPlan(o), o, command);
      }
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (e) {
    if (e instanceof ConfigProblems) {
      for (const p of e.problems) process.stderr.write(`${p}\n`);
      return 1;
    }
    throw e;
  }
}

/** How a unit starts this very agent: the single executable itself, or node and this script. */
function agentCommand(node: string | undefined): { exec: string[]; sea: boolean } {
  if (IS_SEA) return { exec: [process.execPath], sea: true };
  return { exec: [node ?? process.execPath, realpathSync(process.argv[1] ?? "hookrelay-agent")], sea: false };
}

class ConfigProblems extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.problems = problems;
  }
}

async function run(config: AgentConfig, log: Logger): Promise<number> {
  const token = resolveToken(config, process.env);
  for (const w of token.warnings) log.warn(w);
  if (!token.ok) {
    log.error(token.problem);
    return 1;
  }
  const secrets = loadSecrets(config, process.env);
  for (const w of secrets.warnings) log.warn(w);
  if (!secrets.ok) {
    for (const p of secrets.problems) log.error(p);
    log.error("not starting: fix the secret files above (no job runs with some of its secrets missing)");
    return 1;
  }
  if (secrets.secrets.described.length > 0) log.info(`secrets: ${secrets.secrets.described.join("; ")}`);
  let agent: JobServer;
  try {
    agent = await JobServer.start({ config, token: token.token, log, backoff: backoffFromEnv(process.env), secrets: secrets.secrets });
  } catch (e) {
    if (e instanceof SpoolError) {
      log.error(e.message);
      return 1;
    }
    throw e;
  }
  return new Promise<number>((resolve) => {
    let signals = 0;
    // Every signal goes to stop(): the first stops gracefully, a later one hurries (SIGKILL to the step's
    // processes now) — but the step's processes always end and the job's end is always written first.
    const onSignal = (signal: NodeJS.Signals) => {
      if (++signals > 1) log.warn(`received ${signal} again: not waiting out the grace`);
      else log.info(`received ${signal}: stopping`);
      agent.stop(`the agent is stopping (${signal})`).then(
        () => resolve(0),
        (e: unknown) => {
          log.error(`while stopping: ${errorMessage(e)}`);
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    // systemctl reload: the secret files read again (a rotated password); the config itself is read at start only.
    process.on("SIGHUP", () => {
      const again = loadSecrets(config, process.env);
      for (const w of again.warnings) log.warn(w);
      if (!again.ok) {
        for (const p of again.problems) log.error(p);
        log.error("reload: secrets NOT reloaded; jobs keep the values read before (fix the files and reload again)");
        return;
      }
      agent.useSecrets(again.secrets);
      log.info(`reload: secrets read again for the next job${again.secrets.described.length > 0 ? `: ${again.secrets.described.join("; ")}` : " (none configured)"}`);
    });
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`error: ${errorDetail(e)}\n`);
    process.exit(1);
  },
);
