import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { PipelineDecl } from "../../../shared/protocol.ts";
import { agentsOf, connectAgent, hello, pipeline, uniqueName } from "../../../testing/workerd/worker-support.ts";
import { createJob, getJob } from "../jobs/jobs.ts";
import type { Target } from "../target.ts";

/** Says hello with `pipelines`; returns the error frame and the close the DO answered with. */
async function refusedHello(pipelines: PipelineDecl[]) {
  const target = uniqueName();
  const agent = await connectAgent(target, "web-1");
  agent.send(hello("web-1", pipelines));
  const error = await agent.next("error");
  const closed = await agent.closed();
  expect(agent.pending().filter((m) => m.type === "welcome")).toEqual([]);
  // Nothing of the refused hello is stored: the agent is only registered.
  expect(await agentsOf(target)).toEqual([{ name: "web-1", connected: false, version: "", pipelines: [], connectedAt: null, lastSeenAt: null, disconnectedAt: null, runningJob: null }]);
  return { error, closed };
}

const names = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe("Target DO: limits on what a hello declares", () => {
  it("refuses more than 50 pipelines per agent with limit-exceeded and closes with 4008", async () => {
    const { error, closed } = await refusedHello(names(51, "p").map((name) => pipeline({ name })));
    expect(error.code).toBe("limit-exceeded");
    expect(error.message).toContain("51 pipelines");
    expect(error.message).toContain("50");
    expect(closed.code).toBe(4008);
  });

  it("refuses more than 50 branch globs in a pipeline", async () => {
    const { error, closed } = await refusedHello([pipeline({ branches: names(51, "b") })]);
    expect(error).toMatchObject({ code: "limit-exceeded", message: expect.stringContaining("pipeline app: 51 branch globs") });
    expect(closed.code).toBe(4008);
  });

  it("refuses more than 100 declared steps (steps and on_failure together) in a pipeline", async () => {
    const { error, closed } = await refusedHello([pipeline({ steps: names(60, "s"), onFailure: names(41, "f") })]);
    expect(error).toMatchObject({ code: "limit-exceeded", message: expect.stringContaining("pipeline app: 101 declared steps") });
    expect(closed.code).toBe(4008);
  });

  it("refuses a pipeline timeout over 24 h (a running job's log escapes the budget until its deadline)", async () => {
    const { error, closed } = await refusedHello([pipeline({ timeoutMs: 24 * 3_600_000 + 1 })]);
    expect(error).toMatchObject({ code: "limit-exceeded", message: "pipeline app: timeoutMs 86400001: a pipeline's timeout may be at most 86400000 ms (24 h)" });
    expect(closed.code).toBe(4008);
  });

  it("gives a job made from a declaration stored before the cap (up to 30 days) the 24 h cap", async () => {
    const delivery = { hookId: "1", delivery: "d", event: "push", repo: "o/r", ref: "refs/heads/master", sha: "b".repeat(40), before: "a".repeat(40), pusher: "me" };
    const timeout = await runInDurableObject(env.TARGET.getByName(uniqueName()), (_: Target, state) => {
      const id = createJob(state.storage.sql, "web-1", pipeline({ timeoutMs: 30 * 86_400_000 }), delivery, 1);
      return getJob(state.storage.sql, id)?.timeout_ms;
    });
    expect(timeout).toBe(86_400_000);
  });

  it("refuses a hello declaring one pipeline name twice, naming it (one deployment would count the agent twice)", async () => {
    const { error, closed } = await refusedHello([pipeline({ name: "app" }), pipeline({ name: "worker" }), pipeline({ name: "app", branches: ["dev"] })]);
    expect(error).toMatchObject({ code: "invalid-declaration", message: 'pipeline "app" is declared twice: pipeline names must be unique within an agent' });
    expect(closed.code).toBe(4008);
  });

  it("accepts a hello exactly at every limit", async () => {
    const target = uniqueName();
    const agent = await connectAgent(target, "web-1");
    const full = (name: string) => pipeline({ name, branches: names(50, "b"), steps: names(50, "s"), onFailure: names(50, "f"), timeoutMs: 24 * 3_600_000 });
    agent.send(hello("web-1", names(50, "p").map(full)));
    await agent.next("welcome");
    expect((await agentsOf(target))[0]?.pipelines).toHaveLength(50);
    agent.close();
  });
});
