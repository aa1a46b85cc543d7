/**
 * A rollout's batch boundary (docs/performance.md, "Fleet"): a batch's jobs end at about the same
 * time, and only the last of those ends has anything to release. The others must not each do the
 * release's work — read every job of the deployment, look for every agent's unsent job, derive the
 * alarm from every agent and job — since the last end waits behind them in the object's one queue.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { apiJson, event, helloAgent, pipeline, push, type TestAgent, uniqueName } from "../../../testing/workerd/worker-support.ts";
import { derivedAlarm } from "../alarm.ts";
import { alarmSettings } from "../deadline-settings.ts";
import type { DeploymentView } from "../types.ts";

const HOSTS = 40;
const PER_BATCH = 4; // 10% of HOSTS
/**
 * What a job's start or end that moves nothing else may read: its own rows, its agent's, one batch's
 * (PER_BATCH). Before: 460+ rows at 40 hosts for an end, 310 for an `accepted` (and its step-start).
 */
const END_ROWS = 30;

interface Cost {
  statements: number;
  rowsRead: number;
  /** Reads of one job's whole row. */
  jobReads: number;
}

/** A target of HOSTS agents in batches of 10%, and a way to count what its object's SQL did: statements, and rows read. */
async function fleet() {
  const target = uniqueName();
  const decl = pipeline({ rollout: { batch: "10%", haltOnFailure: true }, onFailure: [] });
  const agents = new Map<string, TestAgent>();
  for (let i = 1; i <= HOSTS; i++) agents.set(`web-${i}`, await helloAgent(target, `web-${i}`, [decl]));
  const stub = env.TARGET.getByName(target);
  const spy = await runInDurableObject(stub, (_, state) => {
    const s = vi.spyOn(state.storage.sql, "exec");
    const cost = (from: number): Cost => {
      let rowsRead = 0;
      for (const r of s.mock.results.slice(from)) if (r.type === "return") rowsRead += (r.value as SqlStorageCursor<Record<string, SqlStorageValue>>).rowsRead;
      const jobReads = s.mock.calls.slice(from).filter((c) => c[0] === "SELECT * FROM jobs WHERE id = ?").length;
      return { statements: s.mock.results.length - from, rowsRead, jobReads };
    };
    return { mark: () => s.mock.results.length, cost };
  });
  const counted = async (f: () => Promise<void>): Promise<Cost> => {
    const from = await runInDurableObject(stub, () => spy.mark());
    await f();
    return runInDurableObject(stub, () => spy.cost(from));
  };
  const inTarget = <T,>(f: (state: DurableObjectState) => T | Promise<T>) => runInDurableObject(stub, (_, state) => f(state));
  return { target, agents, counted, inTarget };
}

describe("a rollout's batch boundary: only the batch's last job end does the release's work", () => {
  it(`${HOSTS} hosts in batches of ${PER_BATCH}: a batch's starts (but the deployment's first) and its first ${PER_BATCH - 1} ends read ≤ ${END_ROWS} rows each and release nothing; the last end releases the next batch`, async () => {
    const { target, agents, counted, inTarget } = await fleet();
    const res = await push(target);
    expect(res.status).toBe(202);
    const dep = (await apiJson(`/api/targets/${target}/deployments/${res.body.deployments![0]!.id}`)) as DeploymentView;
    const batch = (n: number) => dep.jobs.filter((j) => j.batch === n).map((j) => ({ agent: agents.get(j.agent)!, id: j.id }));
    expect(batch(1)).toHaveLength(PER_BATCH);
    const settings = alarmSettings(env);
    /** The alarm as it is against the alarm derived in full now: a kept alarm may be early, never late. */
    const alarmNoLater = async () => {
      const { kept, derived } = await inTarget(async (state) => ({ kept: await state.storage.getAlarm(), derived: derivedAlarm(state.storage.sql, settings) }));
      expect(derived).not.toBeNull();
      expect(kept).not.toBeNull();
      expect(kept!).toBeLessThanOrEqual(derived!);
    };
    for (const [i, { agent, id }] of batch(1).entries()) {
      expect((await agent.next("job")).jobId).toBe(id);
      const started = await counted(async () => {
        agent.send({ type: "accepted", jobId: id });
        agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
        await agent.next("ack");
      });
      // Each frame reads the job's row once: the event, of a job running since `accepted`, has nothing to read again.
      expect(started.jobReads).toBe(2);
      // The deployment's first start reports it running (and derives the alarm); the others start their own job only.
      if (i === 0) continue;
      expect(started.rowsRead).toBeLessThanOrEqual(END_ROWS);
      await alarmNoLater();
    }
    // Deriving the alarm while the batch runs (each `accepted` does, and the batch's last end): the
    // agents' deadlines are read from the running jobs, "several hosts" is one more job of the deployment,
    // not a count of all. What is left grows with the fleet: the unseen agents' retention (tokens ∪
    // agents, 4 rows an agent) and the queued jobs (2 rows each). Before: 369 rows at 40 hosts.
    const derivation = await counted(async () => void (await inTarget((state) => derivedAlarm(state.storage.sql, alarmSettings(env)))));
    expect(derivation.rowsRead).toBeLessThanOrEqual(7 * HOSTS);
    const released = (n: number) => inTarget((state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM jobs WHERE deployment_id = ? AND batch = ? AND released_at IS NOT NULL", dep.id, n - 1).one().n);
    for (const [i, { agent, id }] of batch(1).entries()) {
      const cost = await counted(async () => {
        agent.send(event(id, 2, { kind: "job-end", status: "succeeded" }));
        await agent.next("ack");
      });
      if (i === PER_BATCH - 1) break;
      // Not the batch's last end: the next batch waits, and this end read its own few rows only (not the
      // deployment's HOSTS jobs, nor every agent and queued job for the alarm).
      expect(await released(2)).toBe(0);
      expect(cost.rowsRead).toBeLessThanOrEqual(END_ROWS);
      await alarmNoLater();
    }
    // The last end of batch 1 released batch 2, and its jobs went out to their hosts.
    expect(await released(2)).toBe(PER_BATCH);
    for (const { agent, id } of batch(2)) expect((await agent.next("job")).jobId).toBe(id);
    for (const a of agents.values()) a.close();
  }, 60_000);

  it("a job-end that is a job's first event (its `accepted` lost) starts the deployment too: the alarm is derived in full", async () => {
    const target = uniqueName();
    const decl = pipeline({ rollout: { batch: 2, haltOnFailure: true }, onFailure: [] });
    const a = await helloAgent(target, "web-1", [decl]);
    const b = await helloAgent(target, "web-2", [decl]);
    const res = await push(target);
    expect(res.status).toBe(202);
    const job = await a.next("job");
    await b.next("job");
    // web-2's job still runs its batch, so this end moves nothing else; starting the job moved the deployment.
    a.send(event(job.jobId, 1, { kind: "job-end", status: "succeeded" }));
    await a.next("ack");
    const { alarm, derived, status } = await runInDurableObject(env.TARGET.getByName(target), async (_, state) => ({
      alarm: await state.storage.getAlarm(),
      derived: derivedAlarm(state.storage.sql, alarmSettings(env)),
      status: state.storage.sql.exec<{ status: string }>("SELECT status FROM deployments WHERE id = ?", res.body.deployments![0]!.id).one().status,
    }));
    expect(status).toBe("running");
    // Kept, it would still be the push's (its unsent jobs' net, seconds after it), not the one derived now.
    expect(alarm).toBe(derived);
    a.close();
    b.close();
  }, 30_000);
});
