/**
 * The agent as a server gets it (`npm run build`), through a real deploy against the real worker:
 * the bundle under a real Node 18 (what Debian 12 and Ubuntu 24.04 ship; tools/node18, installed by
 * .ci/run), and the single executable with no `node` anywhere on its PATH.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { jobLog, waitForAgent, waitForJob } from "../dev/api.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { REPO_ROOT, startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";

const NODE18 = join(REPO_ROOT, "tools/node18/node_modules/node/bin/node");
const BUNDLE = join(REPO_ROOT, "dist/hookrelay-agent.mjs");
const SEA = join(REPO_ROOT, "dist/hookrelay-agent-linux-x64");
const REPO = "acme/dist";

const node18Missing = existsSync(NODE18) ? null : `no Node 18 at ${NODE18}: run npm run setup:node18 (.ci/run does)`;
const seaUnsupported = process.platform === "linux" && process.arch === "x64" ? null : `the single executable is built on linux-x64 only (this is ${process.platform}-${process.arch})`;
if (node18Missing) console.log(`skipping the Node 18 test: ${node18Missing}`);
if (seaUnsupported) console.log(`skipping the single-executable test: ${seaUnsupported}`);

let worker: WorkerProcess;
let repo: GitRepo;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  // The README's build, both outputs.
  execFileSync("npm", ["run", "build"], { cwd: REPO_ROOT, stdio: "pipe" });
  repo = createRepo({ VERSION: "1\n" });
  worker = await startWorker();
}, 180_000);

afterAll(async () => {
  for (const a of agents) await a.stop();
  await worker?.stop();
});

/** A PATH with every program of /usr/bin and /bin but node (and nodejs): what a server without Node has. */
function pathWithoutNode(): string {
  const dir = mkdtempSync(join(tmpdir(), "hookrelay-no-node-"));
  const bin = join(dir, "bin");
  mkdirSync(bin);
  for (const from of ["/usr/local/bin", "/usr/bin", "/bin"]) {
    if (!existsSync(from)) continue;
    for (const name of readdirSync(from)) {
      if (/^node(js)?$/.test(name) || existsSync(join(bin, name))) continue;
      symlinkSync(join(from, name), join(bin, name));
    }
  }
  return bin;
}

async function deployWith(name: string, command: string[], env: Record<string, string> = {}): Promise<string> {
  const agent = await startAgent({
    server: worker.url,
    name,
    command,
    env,
    pipelines: [
      {
        name: `app-${name}`,
        repo: REPO,
        branches: [name],
        workdir: repo.live,
        steps: [
          { name: "fetch", run: 'git fetch -q origin && git reset -q --hard "$HOOKRELAY_SHA" && echo "now at $(git rev-parse HEAD)"' },
          { name: "where", run: 'echo "node here: $(command -v node || echo none)"' },
        ],
      },
    ],
  });
  agents.push(agent);
  await waitForAgent(worker.url, "default", name);
  const sha = repo.commit({ VERSION: `${name}\n` }, `deploy with ${name}`, name);
  const res = await sendWebhook(worker.url, { secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: pushPayload({ repo: REPO, ref: `refs/heads/${name}`, after: sha }) });
  expect(res.status).toBe(202);
  const job = await waitForJob(worker.url, "default", res.body.jobs[0].id);
  expect([job.status, job.agent]).toEqual(["succeeded", name]);
  expect(await jobLog(worker.url, "default", job.id, "fetch")).toBe(`now at ${sha}\n`);
  return jobLog(worker.url, "default", job.id, "where");
}

describe("the built agent on a server", () => {
  it.skipIf(node18Missing !== null)("the bundle runs under Node 18 through a real deploy", async () => {
    expect(execFileSync(NODE18, ["--version"], { encoding: "utf8" })).toMatch(/^v18\./);
    await deployWith("node18", [NODE18, BUNDLE]);
    expect(agents.at(-1)!.process.child.spawnfile).toBe(NODE18);
  }, 120_000);

  it.skipIf(seaUnsupported !== null)("the single executable runs with no node on the machine, through a real deploy", async () => {
    const size = statSync(SEA).size;
    expect(size).toBeGreaterThan(30e6); // a Node inside
    const bin = pathWithoutNode();
    expect(() => execFileSync("sh", ["-c", "command -v node"], { env: { PATH: bin }, stdio: "pipe" })).toThrow();
    const where = await deployWith("sea", [SEA], { PATH: bin });
    expect(where).toBe("node here: none\n");
  }, 120_000);
});
