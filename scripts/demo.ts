/**
 * The local demo's files: a git origin + live checkout of a tiny app (dev/git-repo.ts), secrets for `wrangler dev`,
 * and an agent config that deploys the checkout. Shared by `npm start` and `npm run demo:push`.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRepo } from "../dev/git-repo.ts";

export const DEMO_AGENT = "demo-agent";
export const REPO_ROOT = new URL("../", import.meta.url).pathname;
export const DEMO_DIR = process.env.HOOKRELAY_DEMO_DIR ?? join(REPO_ROOT, ".hookrelay-demo");
export const DEMO_REPO = "demo/hello-app";

export interface Demo {
  dir: string;
  origin: string;
  work: string;
  live: string;
  port: number;
  /** The worker's secrets. The demo agent's own token is registered by `npm start` (DEMO_AGENT). */
  secrets: { GITHUB_WEBHOOK_SECRET: string; ADMIN_TOKEN: string };
  envFile: string;
  agentConfig: string;
  workerState: string;
}

export function demoFile(): string {
  return join(DEMO_DIR, "demo.json");
}

export function loadDemo(): Demo {
  if (!existsSync(demoFile())) throw new Error(`no demo in ${DEMO_DIR}: run \`npm start\` first`);
  return JSON.parse(readFileSync(demoFile(), "utf8")) as Demo;
}

/** Create the demo (once) and return it; secrets are generated per checkout and kept in .hookrelay-demo/. */
export function prepareDemo(port: number): Demo {
  mkdirSync(DEMO_DIR, { recursive: true });
  const previous = existsSync(demoFile()) ? (JSON.parse(readFileSync(demoFile(), "utf8")) as Demo) : undefined;
  const dir = DEMO_DIR;
  const origin = join(dir, "origin.git");
  const work = join(dir, "work");
  const live = join(dir, "live");
  if (!existsSync(origin)) {
    createRepo({ VERSION: "1\n", "app.sh": { content: '#!/bin/sh\necho "hello from version $(cat VERSION)"\n', executable: true } }, { dir, message: "version 1" });
  }
  // Only these two: a demo from before per-agent tokens also kept an AGENT_TOKEN, which the worker ignores.
  const secrets = {
    GITHUB_WEBHOOK_SECRET: previous?.secrets.GITHUB_WEBHOOK_SECRET ?? randomBytes(20).toString("hex"),
    ADMIN_TOKEN: previous?.secrets.ADMIN_TOKEN ?? randomBytes(20).toString("hex"),
  };
  const envFile = join(dir, "secrets.env");
  writeFileSync(envFile, Object.entries(secrets).map(([k, v]) => `${k}=${v}`).join("\n") + "\n", { mode: 0o600 });
  const agentConfig = join(dir, "agent.yml");
  writeFileSync(
    agentConfig,
    `# The demo agent's config (written by npm start). See agent/examples/flask.yml for a real one.
server: ws://127.0.0.1:${port}
target: default
name: ${DEMO_AGENT}
state_dir: ${join(dir, "agent-state")}
heartbeat: 30s
pipelines:
  - name: hello
    repo: ${DEMO_REPO}
    branches: [main]
    workdir: ${live}
    timeout: 2m
    steps:
      - { name: fetch, run: 'git fetch -q origin && git reset --hard "$HOOKRELAY_SHA"' }
      - { name: build, run: 'echo "building $HOOKRELAY_REPO $HOOKRELAY_BRANCH at $HOOKRELAY_SHA (pushed by $HOOKRELAY_PUSHER)"' }
      - { name: health, run: './app.sh | grep -q "hello from version" && ./app.sh' }
    on_failure:
      - { name: rollback, run: 'git reset --hard "$HOOKRELAY_BEFORE"' }
`,
  );
  const demo: Demo = { dir, origin, work, live, port, secrets, envFile, agentConfig, workerState: join(dir, "worker-state") };
  writeFileSync(demoFile(), JSON.stringify(demo, null, 2));
  return demo;
}
