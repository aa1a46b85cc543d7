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
 * the state dir, the token file (or the directory install makes for it) or the unit would hand its
 * target (any file or directory on the machine) to the agent's user, or overwrite it. Such a path is
 * refused before anything is done, and so is a state dir that belongs to someone other than root or
 * the agent's user. The directories install makes are made one at a time and checked after; the
 * changes go through descriptors opened with `O_NOFOLLOW` (the state dir's owner is checked and
 * changed on the same descriptor), so a link put there after the check is not followed either.
 * Directories that already exist above those paths are the machine's layout and are used as they are.
 */
import { execFileSync } from "node:child_process";
import { closeSync, constants, existsSync, fchmodSync, fchownSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, type Stats, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { errorCode, errorMessage } from "../../shared/errors.ts";
import type { AgentConfig } from "../common/config.ts";
import { systemdUnit, UNIT_NAME, type UnitOptions } from "./systemd.ts";
import { TOKEN_ENV } from "../common/token.ts";

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
  /** The user's uid and gid, or null when it does not exist (getent passwd). */
  userIds?: (user: string) => UserIds | null;
  out: (line: string) => void;
}

export interface UserIds {
  uid: number;
  gid: number;
}

export type Action =
  | { kind: "command"; argv: string[]; why: string }
  | { kind: "chown"; path: string; shown: string; user: string; why: string }
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

function defaultUserIds(user: string): UserIds | null {
  try {
    return parsePasswdIds(execFileSync("getent", ["passwd", user], { encoding: "utf8" }));
  } catch {
    return null;
  }
}

/** uid and gid from a passwd line (name:x:uid:gid:…), or null when it is not one. */
export function parsePasswdIds(line: string): UserIds | null {
  const [, , uid, gid] = line.trim().split(":");
  return uid !== undefined && gid !== undefined && /^\d+$/.test(uid) && /^\d+$/.test(gid) ? { uid: Number(uid), gid: Number(gid) } : null;
}

/** Who may own the state dir before install hands it to the agent's user: whoever runs install (root), or that user. */
function expectedOwners(ids: UserIds | null): number[] {
  const me = process.getuid?.() ?? 0;
  return ids === null || ids.uid === me ? [me] : [me, ids.uid];
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
  const tokenExists = tokenPath !== null && existsSync(tokenPath);
  // The token's directory only when install would write into it.
  const tokenDir = tokenPath !== null && !tokenExists ? dirname(tokenPath) : null;
  const stateDir = at(c.stateDir);
  for (const [key, path] of [["state_dir", stateDir], ["token_file", tokenPath], ["token_file's directory", tokenDir], ["the unit", target]] as const) {
    const link = path === null ? null : symlinkTarget(path);
    if (link !== null) problems.push(`${key}: ${path} is a symlink (to ${link}): install runs as root and refuses to chown, chmod or write through one; remove the link or name the real path`);
  }
  const ids = (o.userIds ?? defaultUserIds)(user);
  const stateProblem = symlinkTarget(stateDir) === null ? stateDirProblem(stateDir, user, expectedOwners(ids)) : null;
  if (stateProblem !== null) problems.push(`state_dir: ${stateProblem}`);
  if (tokenPath !== null && !tokenExists && !o.token) {
    problems.push(`${c.tokenFile}: no token there yet: write this agent's token to it (install -m 0600 /dev/null ${c.tokenFile}, then printf '%s' '<token>' > ${c.tokenFile}), or run with ${TOKEN_ENV}=… in the environment`);
  }
  if (problems.length > 0) return { ok: false, problems };

  const actions: Action[] = [];
  const notes: string[] = [];
  if (ids !== null) notes.push(`user ${user} exists`);
  else actions.push({ kind: "command", argv: ["useradd", "--system", "--home-dir", c.stateDir, "--shell", "/usr/sbin/nologin", user], why: `the agent's own user, ${user}` });
  actions.push({ kind: "mkdir", path: stateDir, mode: 0o700, why: "the state dir: the spool (accepted jobs, unacked events)" });
  actions.push({ kind: "chown", path: stateDir, shown: c.stateDir, user, why: `the state dir belongs to ${user}` });
  if (tokenPath !== null && !tokenExists) {
    // An existing directory keeps its mode: install only makes a missing one.
    if (!existsSync(dirname(tokenPath))) actions.push({ kind: "mkdir", path: dirname(tokenPath), mode: 0o755, why: "the token's directory" });
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

/** Why the state dir, when it exists, is not one install may hand to `user`; null when it may. */
function stateDirProblem(path: string, user: string, owners: number[]): string | null {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return null; // not there yet: install makes it
  }
  return ownerProblem(path, st, user, owners);
}

function ownerProblem(path: string, st: Stats, user: string, owners: number[]): string | null {
  if (st.isSymbolicLink()) return `${path} is a symlink: refusing to chown/chmod through it`;
  if (!st.isDirectory()) return `${path} exists and is not a directory`;
  if (!owners.includes(st.uid)) return `${path} belongs to uid ${st.uid}, not to root or ${user}: refusing to hand someone else's directory to ${user}; name a directory of its own`;
  return null;
}

/** Opens a directory without following a symlink at `path`; says so when it is one. */
function openDirNoFollow(path: string): number {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    // Linux answers a link with ENOTDIR when O_DIRECTORY is given, ELOOP otherwise.
    const link = errorCode(e) === "ELOOP" || errorCode(e) === "ENOTDIR" ? symlinkTarget(path) : null;
    if (link !== null) throw new Error(`${path} is a symlink (to ${link}): refusing to chown/chmod through it`);
    if (errorCode(e) === "ENOTDIR") throw new Error(`${path} is not a directory`);
    throw e;
  }
}

/**
 * Makes each missing directory of `path` one at a time (the last with `mode`, those above 0755) and
 * checks each after: a link put in its place meanwhile is refused, not followed. Existing ones are used as they are.
 */
function makeDirs(path: string, mode: number): void {
  const missing: string[] = [];
  for (let p = path; !existsOrLink(p); p = dirname(p)) missing.unshift(p);
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: p === path ? mode : 0o755 });
    } catch (e) {
      if (errorCode(e) !== "EEXIST") throw e;
    }
    const st = lstatSync(p);
    if (st.isSymbolicLink()) throw new Error(`${p} is a symlink (to ${symlinkTarget(p) ?? "?"}): it appeared while install made the directory; refusing to use it`);
    if (!st.isDirectory()) throw new Error(`${p} is not a directory`);
  }
}

function existsOrLink(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** chmod a directory through a descriptor opened without following a symlink. */
function chmodDirNoFollow(path: string, mode: number): void {
  const fd = openDirNoFollow(path);
  try {
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}

/**
 * Hands the directory at `path` to `ids`, checking on the same descriptor (no symlink followed) that it
 * is a directory owned by one of `owners` — nothing can be swapped in between the check and the chown.
 */
export function chownDirNoFollow(path: string, user: string, ids: UserIds, owners: number[]): void {
  const fd = openDirNoFollow(path);
  try {
    const problem = ownerProblem(path, fstatSync(fd), user, owners);
    if (problem !== null) throw new Error(problem);
    fchownSync(fd, ids.uid, ids.gid);
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
        case "chown": {
          const shown = `chown ${a.user}:${a.user} ${a.shown} (checked and changed through one descriptor, no symlink followed)`;
          if (o.dryRun || !onMachine) {
            o.out(`${o.dryRun ? "would run" : `not run (--root ${o.root})`}: ${shown}  # ${a.why}`);
          } else {
            const ids = (o.userIds ?? defaultUserIds)(a.user);
            if (ids === null) throw new Error(`user ${a.user} does not exist (getent passwd ${a.user})`);
            o.out(`run: ${shown}  # ${a.why}`);
            chownDirNoFollow(a.path, a.user, ids, expectedOwners(ids));
          }
          break;
        }
        case "mkdir":
          if (!o.dryRun) {
            makeDirs(a.path, a.mode);
            chmodDirNoFollow(a.path, a.mode);
          }
          o.out(`${prefix}create: ${a.path} (mode ${a.mode.toString(8).padStart(4, "0")})  # ${a.why}`);
          break;
        case "write":
          if (!o.dryRun) {
            makeDirs(dirname(a.path), 0o755);
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
