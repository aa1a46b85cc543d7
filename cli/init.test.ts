/**
 * `hookrelay init` (no --local) as a person runs it, a child process with HOME and XDG_CONFIG_HOME in a
 * scratch dir, against the stand-in wrangler (testing/fake-wrangler.ts, through HOOKRELAY_WRANGLER):
 * login only when `whoami` says so, deploy, both secrets put on stdin, the URL and admin token saved;
 * again, nothing changes; --rotate replaces both. And the pieces that keep production as it was: the
 * checkout's own wrangler by default, a workers.dev URL only from the real one.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readFakeWranglerState, setUpFakeWrangler } from "../testing/fake-wrangler.ts";
import { deployedUrl, wranglerScript } from "./init.ts";

const CLI = new URL("./hookrelay.ts", import.meta.url).pathname;
const CHECKOUT_WRANGLER = new URL("../node_modules/.bin/wrangler", import.meta.url).pathname;
const WORKER_URL = "http://127.0.0.1:9"; // never contacted: init only saves it

function scratch() {
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-init-"));
  const checkout = join(dir, "checkout");
  mkdirSync(checkout);
  writeFileSync(join(checkout, "wrangler.toml"), 'name = "hookrelay"\n');
  const state = join(dir, "wrangler-state.json");
  const env = (fake: Record<string, string>): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env, HOME: join(dir, "home"), XDG_CONFIG_HOME: join(dir, "xdg"), ...fake };
    delete e.HOOKRELAY_URL;
    delete e.HOOKRELAY_ADMIN_TOKEN;
    return e;
  };
  return { dir, checkout, state, env, config: join(dir, "xdg", "hookrelay", "config.json") };
}

function init(args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const r = spawnSync(process.execPath, [CLI, "init", ...args], { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("hookrelay init against the stand-in wrangler", () => {
  it("logs in only when whoami says so, deploys, puts both secrets on stdin, saves the URL and admin token", () => {
    const s = scratch();
    const fake = setUpFakeWrangler(s.state, WORKER_URL);
    const first = init([], s.checkout, s.env(fake));
    expect(first.code, first.err).toBe(0);
    const state = readFakeWranglerState(s.state);
    expect(state.logins).toBe(1);
    expect(state.deploys).toBe(1);
    expect(Object.keys(state.secrets).sort()).toEqual(["ADMIN_TOKEN", "GITHUB_WEBHOOK_SECRET"]);
    for (const v of Object.values(state.secrets)) expect(v).toMatch(/^[0-9a-f]{64}$/);
    expect(state.calls.map((c) => c.argv.join(" "))).toEqual(["whoami --json", "login", "deploy", "secret list --format json", "secret put GITHUB_WEBHOOK_SECRET", "secret put ADMIN_TOKEN"]);
    expect(state.calls.every((c) => c.cwd === s.checkout)).toBe(true);
    expect(JSON.parse(readFileSync(s.config, "utf8"))).toEqual({ url: WORKER_URL, adminToken: state.secrets.ADMIN_TOKEN });
    expect(statSync(s.config).mode & 0o777).toBe(0o600);
    expect(first.out).toContain("not logged in to Cloudflare: running `wrangler login`");
    expect(first.out).toContain(`  ${WORKER_URL}`);
    for (const v of Object.values(state.secrets)) expect(first.out + first.err).not.toContain(v);

    // Again: logged in, both secrets there; nothing is put and the config is unchanged.
    const again = init([], s.checkout, s.env(fake));
    expect(again.code, again.err).toBe(0);
    const after = readFakeWranglerState(s.state);
    expect(after.logins).toBe(1);
    expect(after.secrets).toEqual(state.secrets);
    expect(again.out).toContain("logged in to Cloudflare as operator@example.test");
    expect(again.out).toMatch(/kept: GITHUB_WEBHOOK_SECRET[\s\S]*kept: ADMIN_TOKEN[\s\S]*unchanged: /);

    // --rotate: both new, the new admin token saved.
    const rotated = init(["--rotate"], s.checkout, s.env(fake));
    expect(rotated.code, rotated.err).toBe(0);
    const r = readFakeWranglerState(s.state);
    expect(r.secrets.ADMIN_TOKEN).not.toBe(state.secrets.ADMIN_TOKEN);
    expect(r.secrets.GITHUB_WEBHOOK_SECRET).not.toBe(state.secrets.GITHUB_WEBHOOK_SECRET);
    expect(JSON.parse(readFileSync(s.config, "utf8")).adminToken).toBe(r.secrets.ADMIN_TOKEN);
  });

  it("outside the checkout (no wrangler.toml): refused before wrangler is run", () => {
    const s = scratch();
    const fake = setUpFakeWrangler(s.state, WORKER_URL, true);
    const r = init([], s.dir, s.env(fake));
    expect(r.code).toBe(1);
    expect(r.err).toContain("no wrangler.toml in");
    expect(readFakeWranglerState(s.state).calls).toEqual([]);
  });

  it("HOOKRELAY_WRANGLER must be an absolute path to a script; unset, init runs the checkout's wrangler", () => {
    const s = scratch();
    const r = init([], s.checkout, s.env({ HOOKRELAY_WRANGLER: "fake-wrangler.ts" }));
    expect(r.code).toBe(2);
    expect(r.err).toContain("HOOKRELAY_WRANGLER=fake-wrangler.ts: must be the absolute path");
    expect(wranglerScript({})).toEqual({ path: CHECKOUT_WRANGLER, standIn: false });
    expect(wranglerScript({ HOOKRELAY_WRANGLER: "" })).toEqual({ path: CHECKOUT_WRANGLER, standIn: false });
  });

  it("the URL: wrangler's workers.dev one; a loopback one only from the stand-in", () => {
    const real = "Uploaded hookrelay (3.1 sec)\nDeployed hookrelay triggers (1.2 sec)\n  https://hookrelay.me.workers.dev\nCurrent Version ID: x\n";
    expect(deployedUrl(real, false)).toBe("https://hookrelay.me.workers.dev");
    expect(deployedUrl(real, true)).toBe("https://hookrelay.me.workers.dev");
    const local = "Deployed hookrelay triggers (0.5 sec)\n  http://127.0.0.1:8787\n";
    expect(deployedUrl(local, false)).toBeUndefined();
    expect(deployedUrl(local, true)).toBe("http://127.0.0.1:8787");
  });
});
