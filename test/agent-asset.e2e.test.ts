/**
 * The agent bundle the worker serves (worker/agent-bundle.ts): a server with distro Node downloads it
 * from the real worker under `wrangler dev` — whose wrangler.toml [build] made it — checks it with
 * `sha256sum -c` and runs it. The worker's own routes still win: the agents' WebSocket on /agent, the
 * API, the webhook, the dashboard.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { waitForAgent } from "../dev/api.ts";
import { REPO_ROOT, startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";
import { installCommands } from "../shared/install-commands.ts";

const NODE18 = join(REPO_ROOT, "tools/node18/node_modules/node/bin/node");
const BUNDLE = "/agent/hookrelay-agent.mjs";

let worker: WorkerProcess;
let agent: AgentProcess | undefined;

beforeAll(async () => {
  worker = await startWorker();
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await worker?.stop();
});

async function download(path: string, init?: RequestInit): Promise<{ res: Response; bytes: Buffer }> {
  const res = await fetch(`${worker.url}${path}`, init);
  return { res, bytes: Buffer.from(await res.arrayBuffer()) };
}

describe("GET /agent/hookrelay-agent.mjs", () => {
  it("is the bundle the worker was built with, checked by sha256sum -c, and runs under Node", async () => {
    const { res, bytes } = await download(BUNDLE);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    // The [build] that ran before `wrangler dev` wrote dist/hookrelay-agent.mjs too: the same bytes.
    expect(bytes.equals(readFileSync(join(REPO_ROOT, "dist/hookrelay-agent.mjs")))).toBe(true);
    expect(bytes.length).toBeGreaterThan(200_000);
    // No secret of the worker and no config in it.
    for (const secret of Object.values(TEST_SECRETS)) expect(bytes.includes(secret)).toBe(false);

    const sum = await download(`${BUNDLE}.sha256`);
    expect(sum.res.status).toBe(200);
    expect(sum.res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(sum.bytes.toString("utf8")).toBe(`${createHash("sha256").update(bytes).digest("hex")}  hookrelay-agent.mjs\n`);

    // As a server does it: the two files side by side, `sha256sum -c`, then run it.
    const dir = mkdtempSync(join(tmpdir(), "hookrelay-download-"));
    writeFileSync(join(dir, "hookrelay-agent.mjs"), bytes, { mode: 0o755 });
    writeFileSync(join(dir, "hookrelay-agent.mjs.sha256"), sum.bytes);
    expect(execFileSync("sha256sum", ["-c", "hookrelay-agent.mjs.sha256"], { cwd: dir, encoding: "utf8" })).toBe("hookrelay-agent.mjs: OK\n");
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
    // This Node, the distro's (/usr/bin/node) and Node 18 (Debian 12's, Ubuntu 24.04's) where they are here.
    const nodes = [...new Set([process.execPath, ...[NODE18, "/usr/bin/node"].filter((n) => existsSync(n))])];
    if (!existsSync(NODE18)) console.log(`the downloaded bundle runs under ${process.version} only: no Node 18 at ${NODE18} (npm run setup:node18)`);
    for (const node of nodes) {
      expect(execFileSync(node, ["hookrelay-agent.mjs", "--version"], { cwd: dir, encoding: "utf8" })).toBe(`hookrelay-agent ${pkg.version}\n`);
    }
    // A changed byte fails the check.
    bytes[100] = bytes[100]! ^ 1;
    writeFileSync(join(dir, "hookrelay-agent.mjs"), bytes);
    expect(() => execFileSync("sha256sum", ["-c", "hookrelay-agent.mjs.sha256"], { cwd: dir, stdio: "pipe" })).toThrow();
  });

  it("installs as `hookrelay agents add` prints it and docs/operations.md says, word for word", async () => {
    const printed = installCommands({ url: worker.url, target: "default", name: "web-1", token: "hra_unused" });
    const cliLine = printed.split("\n").find((l) => l.includes("curl -fsSLO"));
    expect(cliLine).toBeDefined();
    const ops = readFileSync(join(REPO_ROOT, "docs/operations.md"), "utf8");
    const opsBlock = /```sh\n(curl -fsSLO [^]*?)```/.exec(ops)?.[1];
    expect(opsBlock).toBeDefined();
    for (const [where, text] of Object.entries({ "agents add": cliLine!, "docs/operations.md": opsBlock!.replace("https://hookrelay.<your-subdomain>.workers.dev", worker.url) })) {
      expect(text, where).toContain(`curl -fsSLO "${worker.url}/agent/hookrelay-agent.mjs{,.sha256}"`);
      const dir = mkdtempSync(join(tmpdir(), "hookrelay-install-"));
      const bin = join(dir, "hookrelay-agent");
      const script = text.replaceAll("/usr/local/bin/hookrelay-agent", bin).replace("cd /tmp ", `cd '${dir}' `);
      const out = execFileSync("sh", ["-ec", script], { cwd: dir, encoding: "utf8" });
      expect(out, where).toContain("hookrelay-agent.mjs: OK");
      expect(statSync(bin).mode & 0o777, where).toBe(0o755);
      expect(execFileSync(process.execPath, [bin, "--version"], { encoding: "utf8" }), where).toMatch(/^hookrelay-agent \d+\.\d+\.\d+\n$/);
    }
  });

  it("answers HEAD without a body and a matching If-None-Match with 304", async () => {
    const get = await download(BUNDLE);
    const etag = get.res.headers.get("etag");
    expect(etag).toBeTruthy();
    expect(get.res.headers.get("cache-control")).toBe("no-cache");
    const head = await download(BUNDLE, { method: "HEAD" });
    expect([head.res.status, head.bytes.length, head.res.headers.get("etag")]).toEqual([200, 0, etag]);
    const again = await download(BUNDLE, { headers: { "if-none-match": etag! } });
    expect([again.res.status, again.bytes.length]).toEqual([304, 0]);
  });

  it("serves nothing else under /agent/, and the worker's own routes still win", async () => {
    for (const path of ["/agent/hookrelay-agent", "/agent/agent.mjs", "/agent/../wrangler.toml", "/agent/hookrelay-agent.mjs/x", "/assets/agent/hookrelay-agent.mjs", "/hookrelay-agent.mjs"]) {
      const r = await download(path);
      expect([path, r.res.status]).toEqual([path, 404]);
      expect(r.bytes.includes("createRequire")).toBe(false);
    }
    // POST is no download.
    expect((await download(BUNDLE, { method: "POST" })).res.status).toBe(404);
    // /agent without an upgrade is still the socket's answer; the API, the webhook and the dashboard still answer.
    expect((await download("/agent?target=default&agent=web-1")).res.status).toBe(426);
    expect((await download("/api/targets/default/jobs")).res.status).toBe(401);
    expect((await download("/webhook", { method: "POST", body: "{}" })).res.status).toBe(401);
    expect((await download("/assets/app.js")).res.status).toBe(200);
    expect((await download("/healthz")).res.status).toBe(200);
  });

  it("leaves the agents' WebSocket upgrade on /agent?… working", async () => {
    agent = await startAgent({ server: worker.url, name: "asset-web-1", pipelines: [{ name: "app", repo: "acme/asset", branches: ["main"], workdir: tmpdir(), steps: [{ name: "noop", run: "true" }] }] });
    const seen = await waitForAgent(worker.url, "default", "asset-web-1");
    expect(seen).toBeTruthy();
  }, 60_000);
});
