/**
 * The newcomer's path, as the README tells it: `npm start` brings up the worker and two demo agents
 * (demo-1, demo-2) and a signed push deploys the demo on both; `npm run build` makes an agent that runs
 * with plain node and no node_modules.
 */
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { freePort } from "../dev/free-port.ts";
import { createRepo } from "../dev/git-repo.ts";
import { startProcess } from "../dev/process.ts";
import { REPO_ROOT } from "../dev/worker-process.ts";

describe("npm start", () => {
  it("runs the worker and two demo agents, and `--smoke` deploys a signed push to both end to end", async () => {
    const demoDir = mkdtempSync(join(tmpdir(), "hookrelay-demo-"));
    const port = await freePort();
    const start = startProcess("npm", ["start", "--", "--smoke"], {
      cwd: REPO_ROOT,
      env: { ...process.env, HOOKRELAY_DEMO_DIR: demoDir, PORT: String(port), WRANGLER_SEND_METRICS: "false" },
      label: "npm start",
    });
    const exit = await Promise.race([start.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`npm start --smoke did not finish:\n${start.output()}`)), 120_000))]);
    const out = start.output();
    expect(out).toContain(`webhook URL:   http://127.0.0.1:${port}/webhook`);
    expect(out).toContain("npm run demo:push");
    expect(out).toContain(`agents:        demo-1, demo-2`);
    expect(out).toContain(`http://127.0.0.1:${port}/api/targets/default/deployments`);
    expect(out).toMatch(/push [0-9a-f]{40}: worker answered 202 .*"deployments":\[\{"id":"[^"]+","pipeline":"hello","jobs":\["[^"]+","[^"]+"\]\}\]/);
    expect(out).toMatch(/deployment \S+ succeeded: demo-1 succeeded, then demo-2 succeeded/);
    expect(out).toMatch(/job \S+ on demo-1: succeeded\n--- fetch\n[^]*?\(pushed by [^)]*\) on demo-1\n[^]*?hello from version 2\n[^]*?--- job succeeded/);
    expect(out).toMatch(/job \S+ on demo-2: succeeded\n--- fetch\n[^]*?\(pushed by [^)]*\) on demo-2\n[^]*?hello from version 2\n[^]*?--- job succeeded/);
    expect(out).toMatch(/smoke: demo-1 and demo-2 deployed [0-9a-f]{40}/);
    expect(exit.code, out).toBe(0);
  }, 150_000);
});

describe("npm run build", () => {
  it("bundles an agent that runs with plain node, outside the repo, without node_modules", () => {
    execFileSync("npm", ["run", "build"], { cwd: REPO_ROOT, stdio: "pipe" });
    const dir = mkdtempSync(join(tmpdir(), "hookrelay-bundle-"));
    const bundle = join(dir, "hookrelay-agent.mjs");
    copyFileSync(join(REPO_ROOT, "dist/hookrelay-agent.mjs"), bundle);
    const node = process.execPath;
    const pkg = JSON.parse(execFileSync("git", ["show", "HEAD:package.json"], { cwd: REPO_ROOT, encoding: "utf8" })) as { version: string };
    expect(execFileSync(node, [bundle, "--version"], { cwd: dir, encoding: "utf8" })).toContain(pkg.version);

    const repo = createRepo({ VERSION: "7\n" });
    const config = join(dir, "agent.yml");
    writeFileSync(
      config,
      `server: ws://127.0.0.1:9\ntoken: bundle-test\nstate_dir: ${join(dir, "state")}\npipelines:\n  - name: app\n    repo: acme/app\n    branches: [main]\n    workdir: ${repo.live}\n    steps:\n      - { name: show, run: 'echo "version $(cat VERSION) on $HOOKRELAY_BRANCH"' }\n`,
    );
    expect(execFileSync(node, [bundle, "check", "--config", config], { cwd: dir, encoding: "utf8" })).toContain("app");
    const sha = repo.head();
    const out = execFileSync(node, [bundle, "exec", "--config", config, "--pipeline", "app", "--sha", sha, "--ref", "refs/heads/main"], { cwd: dir, encoding: "utf8" });
    expect(out).toContain("version 7 on main");
  }, 60_000);
});
