/**
 * The local demo's files: a git origin of a tiny app (dev/git-repo.ts), secrets for `wrangler dev`, and two
 * agents (demo-1, demo-2), each with its own config, state_dir and live checkout, declaring the same pipeline.
 * Shared by `npm start` and `npm run demo:push`.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRepo, git } from "../dev/git-repo.ts";

/** Two agents declaring the same pipeline: a push is one deployment, rolled out to demo-1, then demo-2. */
export const DEMO_AGENTS = ["demo-1", "demo-2"] as const;
/** The one agent of the demo before rollouts; `npm start` revokes it from an older demo's worker state. */
export const LEGACY_DEMO_AGENT = "demo-agent";
export const REPO_ROOT = new URL("../", import.meta.url).pathname;
export const DEMO_DIR = process.env.HOOKRELAY_DEMO_DIR ?? join(REPO_ROOT, ".hookrelay-demo");
export const DEMO_REPO = "demo/hello-app";
export const DEMO_PIPELINE = "hello";

/** One demo agent: as if on its own server, with its own config, state_dir and live checkout. */
export interface DemoAgent {
  name: string;
  config: string;
  stateDir: string;
  live: string;
}

export interface Demo {
  dir: string;
  origin: string;
  work: string;
  port: number;
  /** The worker's secrets. Each demo agent's own token is registered by `npm start`. */
  secrets: { GITHUB_WEBHOOK_SECRET: string; ADMIN_TOKEN: string };
  envFile: string;
  agents: DemoAgent[];
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
  const previous = existsSync(demoFile()) ? (JSON.parse(readFileSync(demoFile(), "utf8")) as Partial<Demo>) : undefined;
  const dir = DEMO_DIR;
  const origin = join(dir, "origin.git");
  const work = join(dir, "work");
  if (!existsSync(origin)) {
    createRepo({ VERSION: "1\n", "app.sh": { content: '#!/bin/sh\necho "hello from version $(cat VERSION)"\n', executable: true } }, { dir, message: "version 1" });
  }
  // The one-agent demo's config, state and checkout (createRepo also makes a live/ that no agent uses now).
  for (const old of ["agent.yml", "agent-state", "live"]) rmSync(join(dir, old), { recursive: true, force: true });
  // Only these two: a demo from before per-agent tokens also kept an AGENT_TOKEN, which the worker ignores.
  const secrets = {
    GITHUB_WEBHOOK_SECRET: previous?.secrets?.GITHUB_WEBHOOK_SECRET ?? randomBytes(20).toString("hex"),
    // The worker refuses an admin token under 32 characters: one kept from an older demo is replaced then.
    ADMIN_TOKEN: (previous?.secrets?.ADMIN_TOKEN?.length ?? 0) >= 32 ? previous!.secrets!.ADMIN_TOKEN : randomBytes(32).toString("hex"),
  };
  const envFile = join(dir, "secrets.env");
  writeFileSync(envFile, Object.entries(secrets).map(([k, v]) => `${k}=${v}`).join("\n") + "\n", { mode: 0o600 });
  const agents = DEMO_AGENTS.map((name) => prepareAgent(dir, origin, name, port));
  const demo: Demo = { dir, origin, work, port, secrets, envFile, agents, workerState: join(dir, "worker-state") };
  writeFileSync(demoFile(), JSON.stringify(demo, null, 2));
  return demo;
}

/** `<dir>/<name>/`: the agent's config, its state_dir and its own clone of origin (what it deploys). */
function prepareAgent(dir: string, origin: string, name: string, port: number): DemoAgent {
  const home = join(dir, name);
  const live = join(home, "live");
  mkdirSync(home, { recursive: true });
  if (!existsSync(join(live, ".git"))) git(home, "clone", "-q", origin, live);
  const config = join(home, "agent.yml");
  writeFileSync(
    config,
    `# Demo agent ${name}'s config (written by npm start). See agent/examples/flask.yml for a real one.
# Every demo agent declares the same pipeline: a push is one deployment, rolled out one host at a time
# in agent-name order (rollout's defaults: batch 1, halt_on_failure true).
server: ws://127.0.0.1:${port}
target: default
name: ${name}
state_dir: ${join(home, "state")}
heartbeat: 30s
pipelines:
  - name: ${DEMO_PIPELINE}
    repo: ${DEMO_REPO}
    branches: [main]
    workdir: ${live}
    env: { DEMO_HOST: ${name} }
    timeout: 2m
    rollout: { batch: 1, halt_on_failure: true }
    steps:
      - { name: fetch, run: 'git fetch -q origin && git reset --hard "$HOOKRELAY_SHA"' }
      - { name: build, run: 'echo "building $HOOKRELAY_REPO $HOOKRELAY_BRANCH at $HOOKRELAY_SHA (pushed by $HOOKRELAY_PUSHER) on $DEMO_HOST"' }
      - { name: health, run: './app.sh | grep -q "hello from version" && ./app.sh' }
    on_failure:
      - { name: rollback, run: 'git reset --hard "$HOOKRELAY_BEFORE"' }
`,
  );
  return { name, config, stateDir: join(home, "state"), live };
}
