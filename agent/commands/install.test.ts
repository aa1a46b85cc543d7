/**
 * `install` and `uninstall` in a scratch root (`--root DIR`): the files are really written and
 * asserted on; the commands that would touch this machine (useradd, chown, systemctl) are printed,
 * never run. The real CLI as a child process.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseValidConfig } from "../../testing/agent-config.ts";
import { runCli } from "../../testing/agent-cli.ts";
import { testDir } from "../../testing/test-agent.ts";
import { chownDirNoFollow, parsePasswdIds } from "./install.ts";
import { systemdUnit } from "./systemd.ts";

function setup(extra = "") {
  const dir = testDir("hookrelay-install-");
  const root = join(dir, "root");
  const config = join(dir, "agent.yml");
  const text = `server: wss://relay.example.workers.dev
name: web-1
token_file: /etc/hookrelay/token
state_dir: /var/lib/hookrelay
${extra}pipelines:
  - name: app
    repo: owner/app
    branches: [main]
    workdir: /home/app/site
    steps: [{ name: fetch, run: git fetch }]
`;
  writeFileSync(config, text);
  const install = (...args: string[]) => runCli(["install", "--config", config, "--root", root, ...args], { HOOKRELAY_AGENT_TOKEN: "the-agents-token-0123456789" });
  const uninstall = (...args: string[]) => runCli(["uninstall", "--config", config, "--root", root, ...args]);
  const unitFile = join(root, "etc/systemd/system/hookrelay-agent.service");
  return { dir, root, config, install, uninstall, unitFile, parsed: parseValidConfig(text) };
}

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe("hookrelay-agent install --root", () => {
  it("writes the token (0600), the state dir (0700) and the unit, and prints the commands it would run", async () => {
    const s = setup("secrets: { DATABASE_URL: /etc/hookrelay/secrets/db }\n");
    const r = await s.install();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readFileSync(join(s.root, "etc/hookrelay/token"), "utf8")).toBe("the-agents-token-0123456789");
    expect(mode(join(s.root, "etc/hookrelay/token"))).toBe("600");
    expect(mode(join(s.root, "var/lib/hookrelay"))).toBe("700");
    expect(mode(join(s.root, "var/lib"))).toBe("755");
    const unit = readFileSync(s.unitFile, "utf8");
    expect(unit).toContain("\nUser=hookrelay\n");
    expect(unit).toContain("\nLoadCredential=agent-token:/etc/hookrelay/token\n");
    expect(unit).toContain("\nLoadCredential=DATABASE_URL:/etc/hookrelay/secrets/db\n");
    expect(unit).toContain("\nProtectHome=read-only\n");
    expect(unit).toContain("\nReadWritePaths=/home/app/site\n");
    expect(r.stdout.split("\n").filter((l) => l.startsWith("not run"))).toEqual([
      `not run (--root ${s.root}): useradd --system --home-dir /var/lib/hookrelay --shell /usr/sbin/nologin hookrelay  # the agent's own user, hookrelay`,
      `not run (--root ${s.root}): chown hookrelay:hookrelay /var/lib/hookrelay (checked and changed through one descriptor, no symlink followed)  # the state dir belongs to hookrelay`,
      `not run (--root ${s.root}): systemctl daemon-reload  # systemd reads the unit`,
      `not run (--root ${s.root}): systemctl enable --now hookrelay-agent.service  # start it now and at every boot`,
    ]);
    expect(r.stdout).toContain(`write: ${s.unitFile} (mode 0644)  # the unit`);
    expect(r.stdout).toMatch(/install: done\n$/);
    // The token never appears in what install prints.
    expect(r.stdout).not.toContain("the-agents-token");

    // Again: the same unit is left alone, the token kept.
    const again = await s.install();
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("note: /etc/systemd/system/hookrelay-agent.service is already this unit");
    expect(again.stdout).not.toContain("write: ");
    expect(again.stdout).toContain("note: /etc/hookrelay/token exists (mode 0600)");
  });

  // install runs as root: a symlink where it chmods, chowns or writes would hand the link's target —
  // any file or directory on the machine — to the agent's user (or overwrite it).
  it.each([
    ["state_dir", "var/lib/hookrelay"],
    ["token_file", "etc/hookrelay/token"],
    ["the unit", "etc/systemd/system/hookrelay-agent.service"],
  ])("refuses a symlink at %s, and changes nothing through it", async (what, rel) => {
    const s = setup();
    const victim = join(s.dir, "victim");
    mkdirSync(victim, { mode: 0o755 });
    chmodSync(victim, 0o755);
    const victimFile = join(victim, "file");
    writeFileSync(victimFile, "root's own\n", { mode: 0o644 });
    const link = join(s.root, rel);
    mkdirSync(join(link, ".."), { recursive: true });
    symlinkSync(what === "state_dir" ? victim : victimFile, link);
    const r = await s.install();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${link} is a symlink (to ${what === "state_dir" ? victim : victimFile})`);
    expect(r.stdout).toContain("install: nothing was changed");
    expect(r.stdout).not.toContain("chown hookrelay");
    expect(mode(victim)).toBe("755");
    expect(mode(victimFile)).toBe("644");
    expect(readFileSync(victimFile, "utf8")).toBe("root's own\n");
    expect(existsSync(s.unitFile) && what !== "the unit").toBe(false);
  });

  it("refuses a symlink at the token file's directory when it would write the token there, and writes nothing through it", async () => {
    const s = setup();
    const victim = join(s.dir, "victim");
    mkdirSync(victim, { mode: 0o700 });
    chmodSync(victim, 0o700);
    const link = join(s.root, "etc/hookrelay");
    mkdirSync(join(s.root, "etc"), { recursive: true });
    symlinkSync(victim, link);
    const r = await s.install();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`install: token_file's directory: ${link} is a symlink (to ${victim})`);
    expect(r.stdout).toContain("install: nothing was changed");
    expect(mode(victim)).toBe("700");
    expect(existsSync(join(victim, "token"))).toBe(false);
    expect(existsSync(join(s.root, "var/lib/hookrelay"))).toBe(false);
  });

  it("leaves the mode of a token directory that is already there alone", async () => {
    const s = setup();
    mkdirSync(join(s.root, "etc/hookrelay"), { recursive: true });
    chmodSync(join(s.root, "etc/hookrelay"), 0o700);
    const r = await s.install();
    expect(r.code).toBe(0);
    expect(mode(join(s.root, "etc/hookrelay"))).toBe("700");
    expect(mode(join(s.root, "etc/hookrelay/token"))).toBe("600");
  });

  it.skipIf(process.getuid?.() !== 0)("refuses a state dir that belongs to someone other than root or the agent's user (as root)", async () => {
    const s = setup();
    const dir = join(s.root, "var/lib/hookrelay");
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    chownSync(dir, 4242, 4242);
    const r = await s.install();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`install: state_dir: ${dir} belongs to uid 4242, not to root or hookrelay: refusing to hand someone else's directory to hookrelay`);
    expect(r.stdout).toContain("install: nothing was changed");
    expect(mode(dir)).toBe("755");
    expect(statSync(dir).uid).toBe(4242);
  });

  it("--dry-run says how the state dir is chowned: checked and changed through one descriptor", async () => {
    const s = setup();
    const r = await s.install("--dry-run");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("would run: chown hookrelay:hookrelay /var/lib/hookrelay (checked and changed through one descriptor, no symlink followed)  # the state dir belongs to hookrelay");
  });

  it("refuses to overwrite a unit changed by hand without --force, and says what differs", async () => {
    const s = setup();
    expect((await s.install()).code).toBe(0);
    const edited = readFileSync(s.unitFile, "utf8").replace("RestartSec=5s", "RestartSec=30s");
    writeFileSync(s.unitFile, edited);
    const r = await s.install();
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`install: ${s.unitFile} exists and differs from the unit this config makes (its "RestartSec=30s" would go; "RestartSec=5s" would come): run with --force to replace it`);
    expect(r.stdout).toContain("install: nothing was changed");
    expect(readFileSync(s.unitFile, "utf8")).toBe(edited);
    const forced = await s.install("--force");
    expect(forced.code).toBe(0);
    expect(readFileSync(s.unitFile, "utf8")).not.toBe(edited);
    expect(forced.stdout).toContain("systemctl try-restart hookrelay-agent.service");
  });

  it("--dry-run prints the plan and writes nothing", async () => {
    const s = setup();
    const r = await s.install("--dry-run");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`would write: ${s.unitFile} (mode 0644)  # the unit`);
    expect(r.stdout).toContain("would run: systemctl enable --now hookrelay-agent.service");
    expect(r.stdout).toMatch(/install: dry run, nothing was changed\n$/);
    expect(existsSync(s.root)).toBe(false);
  });

  it("refuses without a token to put in the token file, and with the token inline in the config", async () => {
    const s = setup();
    const r = await runCli(["install", "--config", s.config, "--root", s.root]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("install: /etc/hookrelay/token: no token there yet: write this agent's token to it");
    expect(existsSync(s.root)).toBe(false);

    const inline = join(s.dir, "inline.yml");
    writeFileSync(inline, readFileSync(s.config, "utf8").replace("token_file: /etc/hookrelay/token", "token: abc"));
    const r2 = await runCli(["install", "--config", inline, "--root", s.root], { HOOKRELAY_AGENT_TOKEN: "x" });
    expect(r2.code).toBe(1);
    expect(r2.stdout).toContain("install needs token_file (a file only root reads, loaded as a systemd credential); the config has token: inline");
  });

  it("notes a token file others can read, and a workdir that is not there yet", async () => {
    const s = setup();
    expect((await s.install()).code).toBe(0);
    chmodSync(join(s.root, "etc/hookrelay/token"), 0o644);
    const r = await s.install();
    expect(r.stdout).toContain("note: /etc/hookrelay/token is mode 0644: run chmod 600 /etc/hookrelay/token");
    expect(r.stdout).toContain("note: pipeline app: workdir /home/app/site does not exist yet: clone the app there, owned by hookrelay");
  });
});

describe("hookrelay-agent uninstall --root", () => {
  it("removes the unit and keeps the user, the spool and the token, saying how to remove them", async () => {
    const s = setup();
    expect((await s.install()).code).toBe(0);
    const r = await s.uninstall();
    expect(r.code).toBe(0);
    expect(existsSync(s.unitFile)).toBe(false);
    expect(existsSync(join(s.root, "etc/hookrelay/token"))).toBe(true);
    expect(existsSync(join(s.root, "var/lib/hookrelay"))).toBe(true);
    expect(r.stdout).toContain(`not run (--root ${s.root}): systemctl disable --now hookrelay-agent.service`);
    expect(r.stdout).toContain("note: kept: the user hookrelay, /var/lib/hookrelay (its spool may hold log lines the worker has not stored yet)");
    expect(r.stdout).toContain("userdel hookrelay && rm -r /var/lib/hookrelay /etc/hookrelay/token");
  });

  it("refuses to remove a unit changed by hand without --force", async () => {
    const s = setup();
    expect((await s.install()).code).toBe(0);
    writeFileSync(s.unitFile, `${readFileSync(s.unitFile, "utf8")}# local change\n`);
    const r = await s.uninstall();
    expect(r.code).toBe(1);
    expect(existsSync(s.unitFile)).toBe(true);
    expect((await s.uninstall("--force")).code).toBe(0);
    expect(existsSync(s.unitFile)).toBe(false);
  });
});

describe("the unit install writes", () => {
  it("is the unit `systemd` prints for the same config", async () => {
    const s = setup();
    expect((await s.install()).code).toBe(0);
    const printed = await runCli(["systemd", "--config", s.config]);
    expect(readFileSync(s.unitFile, "utf8")).toBe(printed.stdout);
    // And what systemdUnit makes for it (the CLI's node and script).
    expect(printed.stdout).toBe(systemdUnit({ ...s.parsed, file: s.config }, { user: "hookrelay", exec: [process.execPath, join(import.meta.dirname, "cli.ts")] }));
  });
});

describe("chownDirNoFollow (what install runs on the machine for the state dir)", () => {
  const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

  it("refuses a symlink put where the state dir was checked, and leaves its target as it was", () => {
    const dir = testDir("hookrelay-chown-");
    const victim = join(dir, "victim");
    mkdirSync(victim, { mode: 0o755 });
    chmodSync(victim, 0o755);
    const before = statSync(victim);
    const link = join(dir, "state");
    symlinkSync(victim, link);
    expect(() => chownDirNoFollow(link, "hookrelay", me, [me.uid])).toThrow(`${link} is a symlink (to ${victim}): refusing to chown/chmod through it`);
    const after = statSync(victim);
    expect([after.uid, after.gid, after.mode]).toEqual([before.uid, before.gid, before.mode]);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it("refuses a directory owned by someone it does not expect, and a file", () => {
    const dir = testDir("hookrelay-chown-");
    const state = join(dir, "state");
    mkdirSync(state);
    expect(() => chownDirNoFollow(state, "hookrelay", me, [me.uid + 1])).toThrow(`${state} belongs to uid ${me.uid}, not to root or hookrelay`);
    writeFileSync(join(dir, "file"), "x");
    expect(() => chownDirNoFollow(join(dir, "file"), "hookrelay", me, [me.uid])).toThrow(`${join(dir, "file")} is not a directory`);
  });

  it("chowns a directory it expects", () => {
    const state = join(testDir("hookrelay-chown-"), "state");
    mkdirSync(state);
    chownDirNoFollow(state, "hookrelay", me, [me.uid]);
    expect(statSync(state).uid).toBe(me.uid);
  });

  it("reads uid and gid from a passwd line", () => {
    expect(parsePasswdIds("hookrelay:x:998:997::/var/lib/hookrelay:/usr/sbin/nologin\n")).toEqual({ uid: 998, gid: 997 });
    expect(parsePasswdIds("")).toBeNull();
  });
});
