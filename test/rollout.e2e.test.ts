/**
 * End to end, issue 10: one push rolls out across three real agent processes (web-1, web-2, web-3, one
 * target, each its own state dir and checkout) under the real worker (wrangler dev). The steps write
 * down when they ran (testing/rollout.ts), so order and overlap are proven from what ran on the hosts,
 * and the deployments API (GET /api/targets/:t/deployments/:id) must tell the same story.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, jobLog, waitForAgent, waitForDeployment } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { startWorker, type WorkerProcess } from "../dev/worker-process.ts";
import { push } from "../testing/push.ts";
import { HOSTS, hostCheckout, intervals, overlap, readStamps, stampCommand, stampCounts, type Host } from "../testing/rollout.ts";

const TARGET = "fleet";
const REPO = "acme/fleet";
const FETCH = 'git fetch -q origin && git reset -q --hard "$HOOKRELAY_SHA"';

let worker: WorkerProcess;
let repo: GitRepo;
let scratch: string;
const checkouts = {} as Record<Host, string>;
const agents: AgentProcess[] = [];

/** Where a pipeline's steps write their stamps: one file per pipeline, outside every workdir. */
const stamps = (pipeline: string) => join(scratch, `${pipeline}.stamps`);
/** The file web-1's step in the "restart" pipeline waits for (the test creates it while the worker is down). */
const gate = () => join(scratch, "restart.gate");

/** The pipelines `host` declares: the same four on every host, except that web-2 refuses to deploy "halting". */
function pipelinesOf(host: Host): unknown[] {
  const base = (name: string) => ({ name, repo: REPO, branches: [name], workdir: checkouts[host], env: { ROLLOUT_HOST: host }, timeout: "1m" });
  const begin = (name: string) => ({ name: "begin", run: stampCommand(stamps(name), "start") });
  const finish = (name: string) => ({ name: "finish", run: stampCommand(stamps(name), "end") });
  return [
    { ...base("serial"), steps: [begin("serial"), { name: "deploy", run: `${FETCH} && sleep 0.5` }, finish("serial")] },
    {
      ...base("halting"),
      env: { ROLLOUT_HOST: host, ...(host === "web-2" ? { REFUSE: "1" } : {}) },
      steps: [begin("halting"), { name: "deploy", run: `if [ -n "\${REFUSE:-}" ]; then echo "refusing to deploy on $ROLLOUT_HOST" >&2; exit 3; fi; ${FETCH}` }, finish("halting")],
      on_failure: [{ name: "undo", run: stampCommand(stamps("halting"), "on_failure") }],
    },
    { ...base("pair"), rollout: { batch: 2 }, steps: [begin("pair"), { name: "deploy", run: `${FETCH} && sleep 1.5` }, finish("pair")] },
    { ...base("restart"), steps: [begin("restart"), { name: "deploy", run: `${FETCH} && until [ -e '${gate()}' ]; do sleep 0.05; done` }, finish("restart")] },
  ];
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "hookrelay-rollout-"));
  repo = createRepo({ VERSION: "1\n" });
  for (const host of HOSTS) checkouts[host] = hostCheckout(repo, host);
  worker = await startWorker();
  for (const host of HOSTS) {
    agents.push(await startAgent({ server: worker.url, target: TARGET, name: host, extra: { heartbeat: "1s" }, pipelines: pipelinesOf(host) }));
  }
  // An agent that exits (a config it refuses) fails here with its own words, not a 30 s wait.
  await Promise.all(
    agents.map((agent, i) =>
      Promise.race([
        waitForAgent(worker.url, TARGET, HOSTS[i]!),
        agent.process.exited.then(({ code }) => {
          throw new Error(`agent ${HOSTS[i]} exited (${code}):\n${agent.process.output().slice(-2000)}`);
        }),
      ]),
    ),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await worker?.stop();
});

/** Commit to `branch` (the pipeline of the same name), push it signed, and check the 202's deployment. */
async function pushPipeline(pipeline: string): Promise<{ sha: string; before: string; delivery: string; deploymentId: string; jobIds: string[] }> {
  const before = repo.head(repo.work);
  const sha = repo.commit({ VERSION: `${pipeline}\n` }, `deploy ${pipeline}`, pipeline);
  const res = await push(worker.url, TARGET, REPO, sha, { branch: pipeline, before });
  expect(res.status).toBe(202);
  // One job per host, listed in rollout order, and one deployment holding them.
  expect(res.body.jobs.map((j: any) => [j.agent, j.pipeline])).toEqual(HOSTS.map((h) => [h, pipeline]));
  const jobIds = res.body.jobs.map((j: any) => j.id as string);
  expect(res.body.deployments).toEqual([{ id: expect.any(String), pipeline, jobs: jobIds }]);
  return { sha, before, delivery: res.delivery, deploymentId: res.body.deployments[0].id, jobIds };
}

const stepsOf = (job: any) => job.steps.map((s: any) => [s.name, s.status]);

describe("a push to a pipeline three hosts declare", () => {
  it("rolls out one host at a time by default, in name order, and the deployment succeeds", async () => {
    const { sha, before, delivery, deploymentId, jobIds } = await pushPipeline("serial");
    const dep = await waitForDeployment(worker.url, TARGET, deploymentId);
    expect(dep).toMatchObject({ id: deploymentId, target: TARGET, pipeline: "serial", repo: REPO, ref: "refs/heads/serial", sha, before, delivery, pusher: "octocat", status: "succeeded" });
    expect(dep.message).toMatch(/^test commit \d+$/); // the head commit's first line, as pushPayload writes it
    expect(dep.rollout).toMatchObject({ batch: 1, hosts: 3, batchHosts: 1, batches: 3, haltOnFailure: true });
    expect(dep.jobs.map((j: any) => [j.id, j.agent, j.batch, j.status])).toEqual([
      [jobIds[0], "web-1", 1, "succeeded"],
      [jobIds[1], "web-2", 2, "succeeded"],
      [jobIds[2], "web-3", 3, "succeeded"],
    ]);
    for (const job of dep.jobs) expect(stepsOf(job)).toEqual([["begin", "succeeded"], ["deploy", "succeeded"], ["finish", "succeeded"]]);

    // What ran on the hosts: each host once, in name order, no two at the same time.
    const ran = intervals(readStamps(stamps("serial")));
    expect(ran.map((i) => i.host)).toEqual([...HOSTS]);
    expect(ran[0]!.end).toBeLessThan(ran[1]!.start);
    expect(ran[1]!.end).toBeLessThan(ran[2]!.start);
    for (const host of HOSTS) expect(repo.head(checkouts[host])).toBe(sha);

    // The list, newest first, has it too.
    const list = await api(worker.url, `/api/targets/${TARGET}/deployments?limit=5`);
    expect(list.status).toBe(200);
    expect(list.body.deployments[0]).toMatchObject({ id: deploymentId, pipeline: "serial", status: "succeeded" });
  });

  it("halts when the second host fails: the first stays deployed, the second ran its on_failure, the third ran nothing", async () => {
    const { sha, deploymentId } = await pushPipeline("halting");
    const dep = await waitForDeployment(worker.url, TARGET, deploymentId);
    expect(dep.status).toBe("failed");
    expect(dep.jobs.map((j: any) => [j.agent, j.batch, j.status])).toEqual([
      ["web-1", 1, "succeeded"],
      ["web-2", 2, "failed"],
      ["web-3", 3, "skipped"],
    ]);
    const [first, second, third] = dep.jobs;
    expect(stepsOf(first)).toEqual([["begin", "succeeded"], ["deploy", "succeeded"], ["finish", "succeeded"], ["undo", "skipped"]]);
    expect(stepsOf(second)).toEqual([["begin", "succeeded"], ["deploy", "failed"], ["finish", "skipped"], ["undo", "succeeded"]]);
    expect(second.steps[1].exitCode).toBe(3);
    expect(await jobLog(worker.url, TARGET, second.id, "deploy")).toContain("refusing to deploy on web-2");
    expect(stepsOf(third)).toEqual([["begin", "skipped"], ["deploy", "skipped"], ["finish", "skipped"], ["undo", "skipped"]]);
    expect(third.startedAt).toBeNull();

    // From the hosts: web-1 deployed; web-2 started, failed, ran its own on_failure; nothing at all on web-3.
    const written = readStamps(stamps("halting"));
    expect(stampCounts(written)).toEqual({ "web-1 start": 1, "web-1 end": 1, "web-2 start": 1, "web-2 on_failure": 1 });
    expect(written.map((s) => `${s.host} ${s.what}`)).toEqual(["web-1 start", "web-1 end", "web-2 start", "web-2 on_failure"]);
    expect(repo.head(checkouts["web-1"])).toBe(sha);
    expect(repo.head(checkouts["web-2"])).not.toBe(sha);
    expect(repo.head(checkouts["web-3"])).not.toBe(sha);
  });

  it("with rollout batch 2, deploys the first two hosts together and the third after both ended", async () => {
    const { sha, deploymentId } = await pushPipeline("pair");
    const dep = await waitForDeployment(worker.url, TARGET, deploymentId);
    expect(dep.status).toBe("succeeded");
    expect(dep.rollout).toMatchObject({ batch: 2, hosts: 3, batchHosts: 2, batches: 2, haltOnFailure: true });
    expect(dep.jobs.map((j: any) => [j.agent, j.batch, j.status])).toEqual([
      ["web-1", 1, "succeeded"],
      ["web-2", 1, "succeeded"],
      ["web-3", 2, "succeeded"],
    ]);

    // Each deploy step sleeps 1.5 s: started together, web-1's and web-2's intervals must share a moment.
    const byHost = Object.fromEntries(intervals(readStamps(stamps("pair"))).map((i) => [i.host, i]));
    expect(Object.keys(byHost).sort()).toEqual([...HOSTS]);
    expect(overlap(byHost["web-1"]!, byHost["web-2"]!)).toBe(true);
    expect(byHost["web-3"]!.start).toBeGreaterThan(byHost["web-1"]!.end);
    expect(byHost["web-3"]!.start).toBeGreaterThan(byHost["web-2"]!.end);
    for (const host of HOSTS) expect(repo.head(checkouts[host])).toBe(sha);
  });

  it("continues the rollout after the worker is SIGKILLed between batches and restarted, running nothing twice", async () => {
    const { sha, deploymentId } = await pushPipeline("restart");
    const file = stamps("restart");
    // web-1's deploy step waits for the gate: the worker dies while it runs.
    await eventually("web-1 to start deploying", () => readStamps(file).some((s) => s.host === "web-1" && s.what === "start"), 30_000);
    await worker.process.stop("SIGKILL");
    writeFileSync(gate(), "");
    // web-1 finishes while the worker is gone; its job end waits in the agent's spool.
    await eventually("web-1 to finish with the worker down", () => readStamps(file).some((s) => s.host === "web-1" && s.what === "end"), 30_000);
    expect(readStamps(file).filter((s) => s.host !== "web-1")).toEqual([]);
    await worker.restart(); // same port, same --persist-to storage

    const dep = await waitForDeployment(worker.url, TARGET, deploymentId);
    expect(dep.status).toBe("succeeded");
    expect(dep.jobs.map((j: any) => [j.agent, j.batch, j.status])).toEqual([
      ["web-1", 1, "succeeded"],
      ["web-2", 2, "succeeded"],
      ["web-3", 3, "succeeded"],
    ]);
    for (const job of dep.jobs) expect(stepsOf(job)).toEqual([["begin", "succeeded"], ["deploy", "succeeded"], ["finish", "succeeded"]]);

    // Every host's steps ran exactly once, one host after the other.
    const written = readStamps(file);
    expect(stampCounts(written)).toEqual(Object.fromEntries(HOSTS.flatMap((h) => [[`${h} start`, 1], [`${h} end`, 1]])));
    const ran = intervals(written);
    expect(ran.map((i) => i.host)).toEqual([...HOSTS]);
    expect(ran[0]!.end).toBeLessThan(ran[1]!.start);
    expect(ran[1]!.end).toBeLessThan(ran[2]!.start);
    for (const host of HOSTS) expect(repo.head(checkouts[host])).toBe(sha);
  });
});
