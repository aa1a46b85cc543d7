/**
 * For tests: a stand-in for wrangler that `hookrelay init` runs when HOOKRELAY_WRANGLER names this file
 * (cli/init.ts; docs/cli.md). It implements the five calls init makes, with what Cloudflare checks, and
 * keeps its "account" in a JSON state file (FAKE_WRANGLER_STATE, mode 0600: it holds the secrets):
 *
 * - `whoami --json`: {loggedIn: true, …} and exit 0 once logged in; exit 1 before, as wrangler does;
 * - `login`: logs in (the real one opens a browser), counted;
 * - `deploy`: refused unless logged in and run where wrangler.toml is; prints wrangler's report with the
 *   state's `url` — the loopback URL where the test serves the worker under `wrangler dev` with the
 *   secrets put here (nothing reaches Cloudflare);
 * - `secret list --format json`: the names only, refused before the first deploy ("does not exist");
 * - `secret put NAME`: the value from stdin only (a value in argv is refused), kept in the state.
 * Every call's argv is recorded, so a test can check that no secret ever was an argument.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const FAKE_WRANGLER = new URL("./fake-wrangler.ts", import.meta.url).pathname;
export const FAKE_WRANGLER_STATE_ENV = "FAKE_WRANGLER_STATE";

export interface FakeWranglerState {
  /** Where `deploy` says the worker is (the test serves it there). */
  url: string;
  loggedIn: boolean;
  logins: number;
  deploys: number;
  secrets: Record<string, string>;
  /** Every call's argv (after the script's path) and the directory it ran in. */
  calls: { argv: string[]; cwd: string }[];
}

/** A fresh account, logged out, no worker yet; returns the env that points init at this fake. */
export function setUpFakeWrangler(stateFile: string, url: string, loggedIn = false): Record<string, string> {
  writeState(stateFile, { url, loggedIn, logins: 0, deploys: 0, secrets: {}, calls: [] });
  return { HOOKRELAY_WRANGLER: FAKE_WRANGLER, [FAKE_WRANGLER_STATE_ENV]: stateFile };
}

export function readFakeWranglerState(stateFile: string): FakeWranglerState {
  return JSON.parse(readFileSync(stateFile, "utf8")) as FakeWranglerState;
}

function writeState(file: string, state: FakeWranglerState): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  renameSync(tmp, file);
}

/** One call: returns the exit code; output through `out` / `err`. */
export function fakeWrangler(argv: string[], o: { stateFile: string; cwd: string; stdin: () => string; out: (t: string) => void; err: (t: string) => void }): number {
  const state = readFakeWranglerState(o.stateFile);
  state.calls.push({ argv, cwd: o.cwd });
  const save = () => writeState(o.stateFile, state);
  const [cmd, ...rest] = argv;
  const notLoggedIn = () => {
    o.err("✘ [ERROR] You are not authenticated. Please run `wrangler login`.\n");
    return 1;
  };
  try {
    if (cmd === "whoami" && rest.join(" ") === "--json") {
      if (!state.loggedIn) return notLoggedIn();
      o.out(JSON.stringify({ loggedIn: true, authType: "OAuth Token", email: "operator@example.test", accounts: [{ id: "0".repeat(32), name: "operator" }] }, null, 2) + "\n");
      return 0;
    }
    if (cmd === "login" && rest.length === 0) {
      state.loggedIn = true;
      state.logins += 1;
      o.out("Successfully logged in.\n");
      return 0;
    }
    if (cmd === "deploy" && rest.length === 0) {
      if (!state.loggedIn) return notLoggedIn();
      if (!existsSync(join(o.cwd, "wrangler.toml"))) {
        o.err(`✘ [ERROR] Missing entry-point to Worker script or to assets directory (no wrangler.toml in ${o.cwd})\n`);
        return 1;
      }
      state.deploys += 1;
      o.out(`Total Upload: 412.00 KiB / gzip: 88.00 KiB\nUploaded hookrelay (1.00 sec)\nDeployed hookrelay triggers (0.50 sec)\n  ${state.url}\nCurrent Version ID: 00000000-0000-0000-0000-${String(state.deploys).padStart(12, "0")}\n`);
      return 0;
    }
    if (cmd === "secret" && rest[0] === "list" && rest.slice(1).join(" ") === "--format json") {
      if (!state.loggedIn) return notLoggedIn();
      if (state.deploys === 0) {
        o.err("✘ [ERROR] This Worker does not exist on your account. [code: 10007]\n");
        return 1;
      }
      o.out(JSON.stringify(Object.keys(state.secrets).map((name) => ({ name, type: "secret_text" }))) + "\n");
      return 0;
    }
    if (cmd === "secret" && rest[0] === "put") {
      if (!state.loggedIn) return notLoggedIn();
      if (rest.length !== 2 || !/^[A-Z_][A-Z0-9_]*$/.test(rest[1]!)) {
        o.err(`✘ [ERROR] fake wrangler: secret put takes exactly one NAME (the value on stdin), got ${JSON.stringify(rest.slice(1))}\n`);
        return 1;
      }
      const value = o.stdin().replace(/\r?\n$/, "");
      if (value === "") {
        o.err("✘ [ERROR] fake wrangler: no secret value on stdin\n");
        return 1;
      }
      state.secrets[rest[1]!] = value;
      o.out(`✨ Success! Uploaded secret ${rest[1]}\n`);
      return 0;
    }
    o.err(`✘ [ERROR] fake wrangler: not a call hookrelay init makes: wrangler ${argv.join(" ")}\n`);
    return 1;
  } finally {
    save();
  }
}

if (import.meta.main) {
  const stateFile = process.env[FAKE_WRANGLER_STATE_ENV];
  if (!stateFile) {
    process.stderr.write(`fake wrangler: set ${FAKE_WRANGLER_STATE_ENV} to its state file (setUpFakeWrangler makes one)\n`);
    process.exit(2);
  }
  process.exitCode = fakeWrangler(process.argv.slice(2), {
    stateFile,
    cwd: process.cwd(),
    stdin: () => readFileSync(0, "utf8"),
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  });
}
