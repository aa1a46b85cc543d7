/**
 * The generated unit as systemd judges it, offline (no running systemd needed): `systemd-analyze verify`
 * finds nothing, and `systemd-analyze security --offline=true` rates it ≤ 3.0 — for a workdir under
 * /srv, one under /home (where the seed's app lived: homes read-only, the workdir writable), secrets,
 * and the single executable's form. Skips, saying so, where systemd-analyze is missing.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseValidConfig } from "../../testing/agent-config.ts";
import { testDir } from "../../testing/test-agent.ts";
import { systemdUnit, UNIT_NAME } from "./systemd.ts";

const analyze = spawnSync("systemd-analyze", ["--version"], { stdio: "ignore" }).status === 0;
if (!analyze) console.log("skipping the systemd-analyze checks: systemd-analyze is not installed (apt-get install systemd; .ci/run does)");

function config(workdir: string, extra = "") {
  return parseValidConfig(`server: wss://relay.example.workers.dev
token_file: /etc/hookrelay/token
state_dir: /var/lib/hookrelay
${extra}pipelines:
  - name: app
    repo: owner/app
    branches: [main]
    workdir: ${workdir}
    steps: [{ name: fetch, run: git fetch }]
`);
}

/** Writes the unit as hookrelay-agent.service (verify wants the real name) and returns its path. */
function unitFile(text: string): string {
  const path = join(testDir("hookrelay-unit-"), UNIT_NAME);
  writeFileSync(path, text);
  return path;
}

function exposure(path: string): number {
  const out = execFileSync("systemd-analyze", ["security", "--offline=true", "--no-pager", path], { encoding: "utf8" });
  const m = /Overall exposure level for \S+: ([0-9.]+)/.exec(out);
  if (!m) throw new Error(`no exposure level in:\n${out}`);
  return Number(m[1]);
}

const nodeForm = { user: "hookrelay", exec: [process.execPath, join(import.meta.dirname, "cli.ts")] };
const cases = [
  { label: "a workdir under /srv", unit: () => systemdUnit(config("/srv/app"), nodeForm), home: "yes" },
  { label: "a workdir under /home", unit: () => systemdUnit(config("/home/app/OldManInfo_Flask"), nodeForm), home: "read-only" },
  { label: "secrets", unit: () => systemdUnit(config("/srv/app", "secrets: { DATABASE_URL: /etc/hookrelay/secrets/db }\n"), nodeForm), home: "yes" },
  { label: "the single executable", unit: () => systemdUnit(config("/srv/app"), { user: "hookrelay", exec: [process.execPath], sea: true }), home: "yes" },
];

describe("the generated systemd unit", () => {
  for (const c of cases) {
    it.skipIf(!analyze)(`with ${c.label}: verify finds nothing, security rates it ≤ 3.0`, () => {
      const text = c.unit();
      expect(text).toContain(`\nProtectHome=${c.home}\n`);
      const path = unitFile(text);
      const verify = spawnSync("systemd-analyze", ["verify", path], { encoding: "utf8" });
      // Units of the machine itself may be reported about; nothing may be about ours.
      expect((verify.stdout + verify.stderr).split("\n").filter((l) => l.includes(UNIT_NAME))).toEqual([]);
      const level = exposure(path);
      expect(level).toBeLessThanOrEqual(3.0);
    });
  }

  it("keeps what a Flask deploy needs and says why for each directive left out", () => {
    const text = systemdUnit(config("/home/app/site"), nodeForm);
    // The allocator settings (sea.ts), for the node form too; stepEnv keeps them from the steps.
    expect(text).toContain("\nEnvironment=MALLOC_ARENA_MAX=2\nEnvironment=MALLOC_TRIM_THRESHOLD_=131072\n");
    for (const line of ["RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "ReadWritePaths=/home/app/site", "ProtectProc=invisible", "ExecReload=/bin/kill -HUP $MAINPID"]) {
      expect(text).toContain(`\n${line}\n`);
    }
    for (const left of ["MemoryDenyWriteExecute", "PrivateNetwork", "PrivateUsers", "ProcSubset=pid"]) {
      expect(text).toMatch(new RegExp(`\\n# - ${left}[^\\n]*: [^\\n]+\\n`));
      expect(text).not.toMatch(new RegExp(`\\n${left.split("=")[0]}=`));
    }
  });

  it("runs the single executable itself, with V8's flag in NODE_OPTIONS (steps do not inherit it)", () => {
    const text = systemdUnit(config("/srv/app"), { user: "hookrelay", exec: ["/usr/local/bin/hookrelay-agent"], sea: true });
    expect(text).toContain("\nEnvironment=NODE_OPTIONS=--max-semi-space-size=1\n");
    expect(text).toContain("\nEnvironment=MALLOC_ARENA_MAX=2\nEnvironment=MALLOC_TRIM_THRESHOLD_=131072\n");
    expect(text).toMatch(/\nExecStart=\/usr\/local\/bin\/hookrelay-agent run --config \S+\n/);
  });
});
