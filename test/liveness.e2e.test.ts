/**
 * Cancel, timeouts, heartbeats, duplicate agent names and huge output, with the real worker,
 * the real agent process and real process groups.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, jobLog, waitForAgent, waitForJob } from "../dev/api.ts";
import { isAlive, rssMb } from "../testing/liveness.ts";
import { push } from "../testing/push.ts";
import { createRepo } from "../dev/git-repo.ts";
import { eventually } from "../dev/eventually.ts";
import { startTcpProxy } from "../testing/tcp-proxy.ts";
import { startWorker, type WorkerProcess } from "../dev/worker-process.ts";

const REPO = "acme/live";
let worker: WorkerProcess;
const agents: AgentProcess[] = [];
beforeAll(async () => {
  worker = await startWorker();
}, 90_000);
afterAll(async () => worker?.stop());
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop("SIGKILL")));
});

const pidIn = (file: string) => eventually(`a pid in ${file}`, () => (existsSync(file) && readFileSync(file, "utf8").trim() ? Number(readFileSync(file, "utf8")) : undefined));

describe("cancel and timeouts", () => {
  it("cancels a running step that ignores SIGTERM: killed at the grace, whole group gone, on_failure not run", async () => {
    const repo = createRepo();
    const agent = await startAgent({
      server: worker.url,
      target: "cancel",
      extra: { kill_grace: "1s" },
      pipelines: [
        {
          name: "app",
          repo: REPO,
          branches: ["main"],
          workdir: repo.live,
          steps: [{ name: "stubborn", run: `trap '' TERM; sleep 300 & echo $! > ${repo.dir}/child; echo $$ > ${repo.dir}/shell; echo waiting; wait` }],
          on_failure: [{ name: "cleanup", run: `touch ${repo.dir}/on-failure-ran` }],
        },
      ],
    });
    agents.push(agent);
    await waitForAgent(worker.url, "cancel", "web-1");
    const res = await push(worker.url, "cancel", REPO, repo.head(repo.work));
    const id = res.body.jobs[0].id;
    const child = await pidIn(join(repo.dir, "child"));
    const shell = await pidIn(join(repo.dir, "shell"));
    await waitForJob(worker.url, "cancel", id, ["running"]);

    const cancel = await api(worker.url, `/api/targets/cancel/jobs/${id}/cancel`, { method: "POST" });
    expect(cancel.status).toBe(202);
    const job = await waitForJob(worker.url, "cancel", id);
    expect(job.status).toBe("canceled");
    expect(job.steps.find((s: any) => s.name === "stubborn").status).toBe("canceled");
    expect(isAlive(child)).toBe(false);
    expect(isAlive(shell)).toBe(false);
    expect(existsSync(join(repo.dir, "on-failure-ran"))).toBe(false);
  });

  it("cancels a queued job at once, without the agent", async () => {
    const repo = createRepo();
    const agent = await startAgent({
      server: worker.url,
      target: "cancelq",
      pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, steps: [{ name: "ok", run: "echo ran >> ran.txt" }] }],
    });
    agents.push(agent);
    await waitForAgent(worker.url, "cancelq", "web-1");
    await agent.stop();
    const res = await push(worker.url, "cancelq", REPO, repo.head(repo.work));
    const id = res.body.jobs[0].id;
    const cancel = await api(worker.url, `/api/targets/cancelq/jobs/${id}/cancel`, { method: "POST" });
    expect(cancel.status).toBe(202);
    expect((await api(worker.url, `/api/targets/cancelq/jobs/${id}`)).body.status).toBe("canceled");
    expect((await api(worker.url, `/api/targets/cancelq/jobs/${id}/cancel`, { method: "POST" })).status).toBe(409);
    await agent.restart();
    await waitForAgent(worker.url, "cancelq", "web-1");
    const other = await push(worker.url, "cancelq", REPO, repo.head(repo.work));
    expect((await waitForJob(worker.url, "cancelq", other.body.jobs[0].id)).status).toBe("succeeded");
    expect(readFileSync(join(repo.live, "ran.txt"), "utf8")).toBe("ran\n"); // only the second job ran
  });

  it("ends a step past its timeout as timed_out, leaves no orphans and runs on_failure", async () => {
    const repo = createRepo();
    const agent = await startAgent({
      server: worker.url,
      target: "timeout",
      extra: { kill_grace: "1s" },
      pipelines: [
        {
          name: "app",
          repo: REPO,
          branches: ["main"],
          workdir: repo.live,
          steps: [
            { name: "hang", run: `(sleep 300; echo orphan) & echo $! > ${repo.dir}/child; sleep 300`, timeout: "1s" },
            { name: "after", run: "echo should not run" },
          ],
          on_failure: [{ name: "rollback", run: "echo rolling back" }],
        },
      ],
    });
    agents.push(agent);
    await waitForAgent(worker.url, "timeout", "web-1");
    const res = await push(worker.url, "timeout", REPO, repo.head(repo.work));
    const child = await pidIn(join(repo.dir, "child"));
    const job = await waitForJob(worker.url, "timeout", res.body.jobs[0].id);
    expect(job.status).toBe("timed_out");
    expect(job.steps.map((s: any) => [s.name, s.status])).toEqual([
      ["hang", "timed_out"],
      ["after", "skipped"],
      ["rollback", "succeeded"],
    ]);
    expect(isAlive(child)).toBe(false);
    expect(await jobLog(worker.url, "timeout", job.id, "rollback")).toBe("rolling back\n");
  });
});

describe("connections", () => {
  it("detects a silently dropped connection and replaces it", async () => {
    const proxy = await startTcpProxy(worker.port);
    try {
      const repo = createRepo();
      const agent = await startAgent({
        server: proxy.url,
        target: "halfopen",
        extra: { heartbeat: "1s" },
        pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, steps: [{ name: "ok", run: "echo still deploying" }] }],
      });
      agents.push(agent);
      await waitForAgent(worker.url, "halfopen", "web-1");
      const before = proxy.connections();
      proxy.blackholeOpenConnections();
      await eventually("the agent to open a new connection", () => (proxy.connections() > before ? true : undefined), 15_000);
      await waitForAgent(worker.url, "halfopen", "web-1");
      const res = await push(worker.url, "halfopen", REPO, repo.head(repo.work));
      expect((await waitForJob(worker.url, "halfopen", res.body.jobs[0].id)).status).toBe("succeeded");
    } finally {
      await proxy.close();
    }
  });

  it("lets the newer of two agents with the same name own the name", async () => {
    const repo = createRepo();
    const pipeline = (mark: string) => ({ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, env: { MARK: mark }, steps: [{ name: "who", run: 'echo "$MARK"' }] });
    const older = await startAgent({ server: worker.url, target: "twins", name: "twin", pipelines: [pipeline("older")] });
    agents.push(older);
    await waitForAgent(worker.url, "twins", "twin");
    const newer = await startAgent({ server: worker.url, target: "twins", name: "twin", pipelines: [pipeline("newer")] });
    agents.push(newer);
    await newer.process.waitForOutput(/connected/i);
    await older.process.waitForOutput(/replaced/i);

    for (let i = 0; i < 2; i++) {
      const res = await push(worker.url, "twins", REPO, repo.head(repo.work));
      expect(res.body.jobs).toHaveLength(1);
      const job = await waitForJob(worker.url, "twins", res.body.jobs[0].id);
      expect(await jobLog(worker.url, "twins", job.id, "who")).toBe("newer\n");
    }
  });
});

describe("huge output", () => {
  it("keeps head and tail of a 50 MB step past the log cap, with the agent's memory bounded", async () => {
    const repo = createRepo();
    const agent = await startAgent({
      server: worker.url,
      target: "big",
      extra: { log_cap: "4MiB" },
      pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, timeout: "5m", steps: [{ name: "flood", run: 'seq 1 2600000 | sed "s/^/output line /"; echo "THE END"' }] }],
    });
    agents.push(agent);
    await waitForAgent(worker.url, "big", "web-1");
    const res = await push(worker.url, "big", REPO, repo.head(repo.work));
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(agent.process.pid, (p) => readFileSync(p, "utf8")))), 50);
    const job = await waitForJob(worker.url, "big", res.body.jobs[0].id, undefined, 240_000).finally(() => clearInterval(sampler));
    expect(job.status).toBe("succeeded");
    const log = await jobLog(worker.url, "big", job.id, "flood");
    expect(log.startsWith("output line 1\noutput line 2\n")).toBe(true);
    expect(log.endsWith("output line 2600000\nTHE END\n")).toBe(true);
    expect(log).toMatch(/\d+ bytes of output omitted/);
    expect(Buffer.byteLength(log)).toBeLessThan(5 * 1024 * 1024);
    // ~50 MB went through the agent; it must not have held it (RSS includes Node's own ~50 MB).
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(150);
  });
});
