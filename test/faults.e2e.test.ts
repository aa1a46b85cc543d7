/**
 * Nothing lost, nothing run twice — proven by killing real processes: the worker (wrangler dev on
 * persistent storage), the agent, and the connection between them.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, jobLog, waitForAgent, waitForJob } from "../dev/api.ts";
import { push } from "../testing/push.ts";
import { createRepo } from "../dev/git-repo.ts";
import { eventually } from "../dev/eventually.ts";
import { startTcpProxy } from "../testing/tcp-proxy.ts";
import { startWorker, type WorkerProcess } from "../dev/worker-process.ts";

const REPO = "acme/faults";
const agents: AgentProcess[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop("SIGKILL")));
});

function counterLines(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

describe("a worker restart mid-job", () => {
  let worker: WorkerProcess;
  beforeAll(async () => {
    worker = await startWorker();
  }, 90_000);
  afterAll(async () => worker?.stop());

  it("finishes the job with every log line exactly once, in order", async () => {
    const repo = createRepo();
    const agent = await startAgent({
      server: worker.url,
      target: "restart",
      name: "a1",
      extra: { heartbeat: "500ms" },
      pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, steps: [{ name: "count", run: 'for i in $(seq 1 150); do echo "line $i"; sleep 0.02; done' }] }],
    });
    agents.push(agent);
    await waitForAgent(worker.url, "restart", "a1");
    const res = await push(worker.url, "restart", REPO, repo.head(repo.work));
    expect(res.status).toBe(202);
    const id = res.body.jobs[0].id;
    await eventually("the first lines to be stored", async () => ((await jobLog(worker.url, "restart", id, "count")).includes("line 10\n") ? true : undefined));

    await worker.process.stop("SIGKILL"); // the step keeps printing while the worker is gone
    await worker.restart(); // same port, same --persist-to storage

    const job = await waitForJob(worker.url, "restart", id);
    expect(job.status).toBe("succeeded");
    const expected = Array.from({ length: 150 }, (_, i) => `line ${i + 1}\n`).join("");
    expect(await jobLog(worker.url, "restart", id, "count")).toBe(expected);
  });
});

describe("jobs for an offline or dead agent", () => {
  // Each agent here heartbeats every 500 ms: the worker closes a socket silent past AGENT_STALE_SECONDS.
  let worker: WorkerProcess;
  beforeAll(async () => {
    worker = await startWorker({ vars: { AGENT_STALE_SECONDS: "2" } });
  }, 90_000);
  afterAll(async () => worker?.stop());

  it("runs only the newest of three pushes made while the agent was offline", async () => {
    const repo = createRepo();
    const runs = join(repo.dir, "runs");
    const config = {
      server: worker.url,
      target: "offline",
      name: "a1",
      extra: { heartbeat: "500ms" }, // well inside AGENT_STALE_SECONDS (2): a silent socket past it is closed
      pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, steps: [{ name: "fetch", run: `git fetch -q origin && git reset -q --hard "$HOOKRELAY_SHA" && echo "$HOOKRELAY_SHA" >> ${runs}` }] }],
    };
    const agent = await startAgent(config);
    agents.push(agent);
    await waitForAgent(worker.url, "offline", "a1"); // it has declared its pipelines
    await agent.stop();
    await eventually("the agent to be seen offline", async () => {
      const r = await api(worker.url, "/api/targets/offline/agents");
      return r.body.agents.find((a: any) => a.name === "a1" && !a.connected) ? true : undefined;
    });

    const ids: string[] = [];
    const shas: string[] = [];
    for (const n of [2, 3, 4]) {
      shas.push(repo.commit({ VERSION: `${n}\n` }, `v${n}`));
      const res = await push(worker.url, "offline", REPO, shas.at(-1)!);
      expect(res.status).toBe(202);
      ids.push(res.body.jobs[0].id);
    }
    const [first, second, newest] = await Promise.all(ids.map((id) => api(worker.url, `/api/targets/offline/jobs/${id}`)));
    expect([first!.body.status, second!.body.status, newest!.body.status]).toEqual(["superseded", "superseded", "queued"]);

    await agent.restart();
    const done = await waitForJob(worker.url, "offline", ids[2]!);
    expect(done.status).toBe("succeeded");
    expect(repo.head()).toBe(shas[2]);
    expect(counterLines(runs)).toEqual([shas[2]]);
  });

  it("reports a job interrupted when the agent is SIGKILLed mid-step, keeps the partial log and never re-runs it", async () => {
    const repo = createRepo();
    const runs = join(repo.dir, "runs");
    const agent = await startAgent({
      server: worker.url,
      target: "killed",
      name: "a1",
      extra: { heartbeat: "500ms" }, // well inside AGENT_STALE_SECONDS (2): a silent socket past it is closed
      pipelines: [
        { name: "app", repo: REPO, branches: ["main"], workdir: repo.live, steps: [{ name: "slow", run: `echo run >> ${runs}; echo $$ > ${repo.dir}/pgid; echo "before the crash"; sleep 30; echo "never printed"` }] },
        { name: "other", repo: REPO, branches: ["other"], workdir: repo.live, steps: [{ name: "ok", run: "echo fine" }] },
      ],
    });
    agents.push(agent);
    await waitForAgent(worker.url, "killed", "a1");
    const res = await push(worker.url, "killed", REPO, repo.head(repo.work));
    const id = res.body.jobs[0].id;
    await eventually("the step's first line", async () => ((await jobLog(worker.url, "killed", id, "slow")).includes("before the crash") ? true : undefined));

    // Power loss: the agent and the step's process group die together.
    const pgid = Number(readFileSync(join(repo.dir, "pgid"), "utf8"));
    process.kill(-pgid, "SIGKILL");
    await agent.process.stop("SIGKILL");
    await agent.restart();

    const job = await waitForJob(worker.url, "killed", id);
    expect(job.status).toBe("interrupted");
    const log = await jobLog(worker.url, "killed", id);
    expect(log).toContain("before the crash");
    expect(log).not.toContain("never printed");

    // The restarted agent works (a later job succeeds) and the interrupted one did not run again.
    const later = await push(worker.url, "killed", REPO, repo.head(repo.work), { branch: "other" });
    expect((await waitForJob(worker.url, "killed", later.body.jobs[0].id)).status).toBe("succeeded");
    expect(counterLines(runs)).toEqual(["run"]);
  });

  it("shows what a job cut off past the stale period really ran once its agent is back, and keeps it interrupted", async () => {
    // A NAT that silently drops the agent's connection mid-job: the worker ends the job interrupted,
    // the agent (not stopped, only cut off) finishes it, and its spooled events come in after the heal.
    const proxy = await startTcpProxy(worker.port);
    try {
      const repo = createRepo();
      const runs = join(repo.dir, "runs");
      const go = join(repo.dir, "go");
      const agent = await startAgent({
        server: proxy.url,
        target: "cutoff",
        name: "a1",
        extra: { heartbeat: "500ms" }, // well inside AGENT_STALE_SECONDS (2): a silent socket past it is closed
        pipelines: [
          {
            name: "app",
            repo: REPO,
            branches: ["main"],
            workdir: repo.live,
            steps: [
              { name: "wait", run: `echo waiting; while [ ! -e ${go} ]; do sleep 0.1; done; echo went on` },
              { name: "mark", run: `echo "$HOOKRELAY_JOB_ID" >> ${runs}; echo marked` },
            ],
          },
        ],
      });
      agents.push(agent);
      await waitForAgent(worker.url, "cutoff", "a1");
      const res = await push(worker.url, "cutoff", REPO, repo.head(repo.work));
      const id = res.body.jobs[0].id;
      await eventually("the step's first line", async () => ((await jobLog(worker.url, "cutoff", id, "wait")).includes("waiting") ? true : undefined));

      proxy.partition();
      const ended = await waitForJob(worker.url, "cutoff", id, ["interrupted"], 30_000);
      expect(ended.steps.map((s: any) => s.status)).toEqual(["canceled", "skipped"]);
      writeFileSync(go, "");
      await eventually("the job to finish on the cut-off agent", () => (counterLines(runs).length > 0 ? true : undefined));
      proxy.heal();

      const shown = await eventually("its steps as they ran", async () => {
        const job = (await api(worker.url, `/api/targets/cutoff/jobs/${id}`)).body;
        return job.steps.every((s: any) => s.status === "succeeded") ? job : undefined;
      }, 30_000);
      expect({ status: shown.status, finishedAt: shown.finishedAt }).toEqual({ status: "interrupted", finishedAt: ended.finishedAt });
      expect(await jobLog(worker.url, "cutoff", id, "wait")).toBe("waiting\nwent on\n");
      expect(await jobLog(worker.url, "cutoff", id, "mark")).toBe("marked\n");
      expect(await jobLog(worker.url, "cutoff", id)).toContain("agent a1 ended this job succeeded after the worker had ended it interrupted");
      expect(counterLines(runs)).toEqual([id]); // ran once, and not again after the reconnect
    } finally {
      await proxy.close();
    }
  });

  it("marks the running job interrupted when its agent never comes back", async () => {
    const repo = createRepo();
    const agent = await startAgent({
      server: worker.url,
      target: "vanished",
      name: "a1",
      extra: { heartbeat: "500ms" }, // well inside AGENT_STALE_SECONDS (2): a silent socket past it is closed
      pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: repo.live, steps: [{ name: "slow", run: `echo $$ > ${repo.dir}/pgid; echo working; sleep 30` }] }],
    });
    agents.push(agent);
    await waitForAgent(worker.url, "vanished", "a1");
    const res = await push(worker.url, "vanished", REPO, repo.head(repo.work));
    const id = res.body.jobs[0].id;
    await eventually("the step to run", async () => ((await jobLog(worker.url, "vanished", id, "slow")).includes("working") ? true : undefined));
    process.kill(-Number(readFileSync(join(repo.dir, "pgid"), "utf8")), "SIGKILL");
    await agent.process.stop("SIGKILL");

    const job = await waitForJob(worker.url, "vanished", id, ["interrupted"], 30_000);
    expect(job.status).toBe("interrupted");
    expect(await jobLog(worker.url, "vanished", id, "slow")).toContain("working");
  });
});
