import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { apiJson, helloAgent, pipeline, push, type TestAgent, uniqueName } from "../../../testing/workerd/worker-support.ts";

const HOSTS = 40;
/** What a push runs whatever its hosts: the delivery, the deployment, the rollout's first release, the alarm. */
const REST = 30;

/** A target of HOSTS agents declaring one pipeline, and a way to count the SQL statements its object runs. */
async function fleet(): Promise<{ target: string; agents: TestAgent[]; counted: <T>(f: () => Promise<T>) => Promise<{ value: T; statements: number }> }> {
  const target = uniqueName();
  const decl = pipeline({ rollout: { batch: "10%", haltOnFailure: true }, onFailure: [] }); // 3 steps
  const agents: TestAgent[] = [];
  for (let i = 1; i <= HOSTS; i++) agents.push(await helloAgent(target, `web-${i}`, [decl]));
  const stub = env.TARGET.getByName(target);
  const spy = await runInDurableObject(stub, (_, state) => {
    const s = vi.spyOn(state.storage.sql, "exec");
    return { count: () => s.mock.calls.length };
  });
  const counted = async <T,>(f: () => Promise<T>) => {
    const before = await runInDurableObject(stub, () => spy.count());
    const value = await f();
    return { value, statements: (await runInDurableObject(stub, () => spy.count())) - before };
  };
  return { target, agents, counted };
}

describe("a push to a fleet: its statements grow by a fixed few per host", () => {
  it(`makes a ${HOSTS}-host deployment with 2 statements per host (its job, its steps) and a bounded rest`, async () => {
    const { target, agents, counted } = await fleet();
    const { value: res, statements } = await counted(() => push(target));
    expect(res.status).toBe(202);
    expect(res.body.deployments?.[0]?.jobs).toHaveLength(HOSTS);
    expect(statements).toBeLessThanOrEqual(2 * HOSTS + REST);
    for (const a of agents) a.close();
  }, 60_000);

  it(`supersedes the ${HOSTS} jobs not sent yet of the push before with 3 statements each, settling their deployment once`, async () => {
    const { target, agents, counted } = await fleet();
    const first = await push(target);
    const { value: second, statements } = await counted(() => push(target, { after: "c".repeat(40) }));
    expect(second.status).toBe(202);
    // Each job of the first push not sent yet ended superseded (its row, its running and pending steps),
    // and the new deployment made (2 per host): 5 per host, not a read of the old deployment per job.
    expect(statements).toBeLessThanOrEqual(5 * HOSTS + REST);
    const old = (await apiJson(`/api/targets/${target}/deployments/${first.body.deployments![0]!.id}`)) as { status: string; jobs: { status: string }[] };
    const superseded = old.jobs.filter((j) => j.status === "superseded").length;
    expect(superseded).toBeGreaterThan(0);
    expect(old.jobs.every((j) => ["superseded", "queued", "running"].includes(j.status))).toBe(true);
    if (superseded === HOSTS) expect(old.status).toBe("superseded");
    for (const a of agents) a.close();
  }, 60_000);
});
