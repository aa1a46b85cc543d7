/**
 * `hookrelay-agent install --config FILE` (as root): what the README's manual lines did — the system
 * user, the state dir (owner, mode 0700), the token file (0600, from HOOKRELAY_AGENT_TOKEN when it is
 * not there yet), the unit (refusing to overwrite one that was changed, unless --force), then
 * `systemctl daemon-reload` and `enable --now`. `uninstall` undoes the unit and keeps the user, the
 * state dir (its spool may hold events the worker has not stored yet) and the token, saying how to
 * remove them. `--dry-run` prints the plan only. `--root DIR` writes the files under DIR and only
 * prints the commands that would touch the machine (user, ownership, systemd): for tests and images.
 *
 * It runs as root, so it never follows a symlink where it creates or changes something: a link at
 * the state dir, the token file or the unit would hand its target (any file or directory on the
 * machine) to the agent's user, or overwrite it. Such a path is refused before anything is done; the
 * changes themselves go through `O_NOFOLLOW` and `chown -h`, so a link put there after the check is
 * not followed either.
 */
import { execFileSync } from "node:child_process";
import { closeSync, constants, existsSync, fchmodSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { errorMessage } from "../shared/errors.ts";
import type { AgentConfig } from "./config.ts";
import { systemdUnit, UNIT_NAME, type UnitOptions } from "./systemd.ts";
import { TOKEN_ENV } from "./token.ts";

export interface InstallOptions {
  config: AgentConfig;
  unit: UnitOptions;
  /** "/" for the real machine. */
  root: string;
  dryRun: boolean;
  force: boolean;
  /** The token to write when the token file does not exist yet (HOOKRELAY_AGENT_TOKEN). */
  token?: string;
  /** Runs a command on the machine (never called under --root or --dry-run). */
  run?: (argv: string[]) => void;
  /** Whether the user exists (getent passwd). */
  userExists?: (user: string) => boolean;
  out: (line: string) => void;
}

export type Action =
  | { kind: "command"; argv: string[]; why: string }
  | { kind: "mkdir"; path: string; mode: number; why: string }
  | { kind: "write"; path: string; content: string; mode: number; why: string }
  | { kind: "remove"; path: string; why: string };

export type Plan = { ok: true; actions: Action[]; notes: string[] } | { ok: false; problems: string[] };

const UNIT_DIR = "/etc/systemd/system";

export function unitPath(root: string): string {
  return join(root, UNIT_DIR, UNIT_NAME);
}

function defaultRun(argv: string[]): void {
  execFileSync(argv[0]!, argv.slice(1), { stdio: "inherit" });
}

function defaultUserExists(user: string): boolean {
  try {
    execFileSync("getent", ["passwd", user], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export function installPlan(o: InstallOptions): Plan {
  const c = o.config;
  const problems: string[] = [];
  const at = (p: string) => join(o.root, p);
  const user = o.unit.user;
  if (c.tokenFile === null) {
    problems.push(`${c.file}: install needs token_file (a file only root reads, loaded as a systemd credential); the config has ${c.token !== null ? "token: inline, readable by anyone who can read the config" : "no token at all"}`);
  }
  const unit = systemdUnit(c, o.unit);
  const target = unitPath(o.root);
  let existing: string | undefined;
  try {
    existing = readFileSync(target, "utf8");
  } catch {
    // not installed yet
  }
  if (existing !== undefined && existing !== unit && !o.force) {
    problems.push(`${target} exists and differs from the unit this config makes (${describeDiff(existing, unit)}): run with --force to replace it (compare: hookrelay-agent systemd --config ${c.file})`);
  }
  const tokenPath = c.tokenFile === null ? null : at(c.tokenFile);
  for (const [key, path] of [["state_dir", at(c.stateDir)], ["token_file", tokenPath], ["the unit", target]] as const) {
    const link = path === null ? null : symlinkTarget(path);
    if (link !== null) problems.push(`${key}: ${path} is a symlink (to ${link}): install runs as root and refuses to chown, chmod or write through one; remove the link or name the real path`);
  }
  const tokenExists = tokenPath !== null && existsSync(tokenPath);
  if (tokenPath !== null && !tokenExists && !o.token) {
    problems.push(`${c.tokenFile}: no token there yet: write this agent's token to it (install -m 0600 /dev/null ${c.tokenFile}, then printf '%s' '<token>' > ${c.tokenFile}), or run with ${TOKEN_ENV}=… in the environment`);
  }
  if (problems.length > 0) return { ok: false, problems };

  const actions: Action[] = [];
  const notes: string[] = [];
  if ((o.userExists ?? defaultUserExists)(user)) notes.push(`user ${user} exists`);
  else actions.push({ kind: "command", argv: ["useradd", "--system", "--home-dir", c.stateDir, "--shell", "/usr/sbin/nologin", user], why: `the agent's own user, ${user}` });
  actions.push({ kind: "mkdir", path: at(c.stateDir), mode: 0o700, why: "the state dir: the spool (accepted jobs, unacked events)" });
  actions.push({ kind: "command", argv: ["chown", "-h", `${user}:${user}`, c.stateDir], why: `the state dir belongs to ${user}` });
  if (tokenPath !== null && !tokenExists) {
    actions.push({ kind: "mkdir", path: dirname(tokenPath), mode: 0o755, why: "the token's directory" });
    actions.push({ kind: "write", path: tokenPath, content: o.token!, mode: 0o600, why: `the token from ${TOKEN_ENV}, root's alone (the unit loads it as a credential)` });
  } else if (tokenPath !== null) {
    const mode = statSync(tokenPath).mode & 0o777;
    if (mode & 0o077) notes.push(`${c.tokenFile} is mode ${mode.toString(8).padStart(4, "0")}: run chmod 600 ${c.tokenFile} (the unit loads it as root either way)`);
    else notes.push(`${c.tokenFile} exists (mode ${mode.toString(8).padStart(4, "0")})`);
  }
  for (const p of c.pipelines) {
    if (!existsSync(at(p.workdir))) notes.push(`pipeline ${p.name}: workdir ${p.workdir} does not exist yet: clone the app there, owned by ${user}`);
  }
  if (existing === unit) notes.push(`${join(UNIT_DIR, UNIT_NAME)} is already this unit`);
  else actions.push({ kind: "write", path: target, content: unit, mode: 0o644, why: existing === undefined ? "the unit" : "the unit (replacing the changed one: --force)" });
  actions.push({ kind: "command", argv: ["systemctl", "daemon-reload"], why: "systemd reads the unit" });
  actions.push({ kind: "command", argv: ["systemctl", "enable", "--now", UNIT_NAME], why: "start it now and at every boot" });
  if (existing !== undefined && existing !== unit) actions.push({ kind: "command", argv: ["systemctl", "try-restart", UNIT_NAME], why: "a running agent picks up the new unit" });
  return { ok: true, actions, notes };
}

export function uninstallPlan(o: InstallOptions): Plan {
  const c = o.config;
  const target = unitPath(o.root);
  let existing: string | undefined;
  try {
    existing = readFileSync(target, "utf8");
  } catch {
    // nothing to remove
  }
  if (existing !== undefined && existing !== systemdUnit(c, o.unit) && !o.force) {
    return { ok: false, problems: [`${target} differs from the unit this config makes: it was changed by hand (or made from another config); run with --force to remove it anyway`] };
  }
  const actions: Action[] = [];
  const notes: string[] = [];
  if (existing === undefined) notes.push(`${join(UNIT_DIR, UNIT_NAME)} is not there`);
  else {
    actions.push({ kind: "command", argv: ["systemctl", "disable", "--now", UNIT_NAME], why: "stop it (a running job ends interrupted) and not at boot" });
    actions.push({ kind: "remove", path: target, why: "the unit" });
    actions.push({ kind: "command", argv: ["systemctl", "daemon-reload"], why: "systemd forgets the unit" });
  }
  notes.push(
    `kept: the user ${o.unit.user}, ${c.stateDir} (its spool may hold log lines the worker has not stored yet), ${c.tokenFile ?? "the token"} and ${c.file}`,
    `to remove them too: userdel ${o.unit.user} && rm -r ${c.stateDir}${c.tokenFile ? ` ${c.tokenFile}` : ""}; and revoke the agent in the worker (DELETE /api/targets/${c.target}/agents/${c.name})`,
  );
  return { ok: true, actions, notes };
}

/** Where the symlink at `path` points, or null when `path` is not one (or is not there). */
function symlinkTarget(path: string): string | null {
  try {
    return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : null;
  } catch {
    return null;
  }
}

/** chmod through a descriptor opened without following a symlink (ELOOP if `path` became one). */
function chmodNoFollow(path: string, mode: number, flags: number): void {
  const fd = openSync(path, flags | constants.O_NOFOLLOW);
  try {
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}

/** Writes `content` to `path` with `mode`, never through a symlink. */
function writeNoFollow(path: string, content: string, mode: number): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
}

function describeDiff(a: string, b: string): string {
  const left = a.split("\n");
  const right = b.split("\n");
  const gone = left.filter((l) => !right.includes(l));
  const added = right.filter((l) => !left.includes(l));
  const show = (ls: string[]) => ls.slice(0, 2).map((l) => JSON.stringify(l)).join(", ") + (ls.length > 2 ? `, … ${ls.length - 2} more` : "");
  return [gone.length > 0 ? `its ${show(gone)} would go` : "", added.length > 0 ? `${show(added)} would come` : ""].filter(Boolean).join("; ");
}

/** Carries out (or, dry, prints) a plan; each step printed as it is done. Returns the exit code. */
export function carryOut(plan: Plan, o: InstallOptions, verb: "install" | "uninstall"): number {
  if (!plan.ok) {
    for (const p of plan.problems) o.out(`${verb}: ${p}`);
    o.out(`${verb}: nothing was changed`);
    return 1;
  }
  const onMachine = o.root === "/";
  const run = o.run ?? defaultRun;
  const prefix = o.dryRun ? "would " : "";
  for (const a of plan.actions) {
    try {
      switch (a.kind) {
        case "command":
          if (o.dryRun || !onMachine) {
            o.out(`${o.dryRun ? "would run" : `not run (--root ${o.root})`}: ${a.argv.join(" ")}  # ${a.why}`);
          } else {
            o.out(`run: ${a.argv.join(" ")}  # ${a.why}`);
            run(a.argv);
          }
          break;
        case "mkdir":
          if (!o.dryRun) {
            // Parents as any directory is made (0755); only the directory itself gets its mode.
            mkdirSync(dirname(a.path), { recursive: true, mode: 0o755 });
            mkdirSync(a.path, { recursive: true, mode: a.mode });
            chmodNoFollow(a.path, a.mode, constants.O_RDONLY | constants.O_DIRECTORY);
          }
          o.out(`${prefix}create: ${a.path} (mode ${a.mode.toString(8).padStart(4, "0")})  # ${a.why}`);
          break;
        case "write":
          if (!o.dryRun) {
            mkdirSync(dirname(a.path), { recursive: true, mode: 0o755 });
            writeNoFollow(a.path, a.content, a.mode);
          }
          o.out(`${prefix}write: ${a.path} (mode ${a.mode.toString(8).padStart(4, "0")})  # ${a.why}`);
          break;
        case "remove":
          if (!o.dryRun) rmSync(a.path, { force: true });
          o.out(`${prefix}remove: ${a.path}  # ${a.why}`);
          break;
      }
    } catch (e) {
      o.out(`${verb}: failed at "${a.why}": ${errorMessage(e)}`);
      o.out(`${verb}: the steps printed above were done; fix the cause and run ${verb} again (each step is safe to repeat)`);
      return 1;
    }
  }
  for (const n of plan.notes) o.out(`note: ${n}`);
  o.out(o.dryRun ? `${verb}: dry run, nothing was changed` : `${verb}: done${verb === "install" && onMachine ? ` — journalctl -u ${UNIT_NAME} -f` : ""}`);
  return 0;
}
