import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodeOutputFrame } from "../../../shared/protocol.ts";
import { api, apiJson, event, eventually, helloAgent, jobOf, runningJob, type TestAgent, uniqueName } from "../../../testing/workerd/worker-support.ts";
import { outputCaps } from "./events.ts";
import { LOG_DROPPED_NOTE, LOG_ROW_OVERHEAD_BYTES, logBudgetBytes, type LogStorageView, logUsage, maxJobLogBytes, measureLogUsage } from "./log-budget.ts";
import type { Target } from "../target.ts";

// The worker tests run with LOG_BUDGET_MB = "1" and JOB_LOG_ROWS = "1000" (vitest.worker.config.ts).
const BUDGET = 1024 * 1024;
const CAPS = outputCaps(env);
/** Two UTF-8 bytes per "é": what is counted is bytes, not characters. */
const frame = (tag: string) => `${tag}${"é".repeat(25_000)}`;

function utf8(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** Ends a running job with one step printing `frames` frames: 3 + frames events, each acked. */
async function runToEnd(agent: TestAgent, id: string, frames: string[]): Promise<void> {
  let seq = 0;
  const send = async (body: Parameters<typeof event>[2]) => {
    agent.send(event(id, ++seq, body));
    expect((await agent.next("ack", 5000)).seq).toBe(seq);
  };
  await send({ kind: "step-start", step: "fetch" });
  for (const data of frames) await send({ kind: "output", step: "fetch", stream: "stdout", data });
  await send({ kind: "step-end", step: "fetch", status: "succeeded", exitCode: 0 });
  await send({ kind: "job-end", status: "succeeded" });
}

const storage = async (target: string) => (await apiJson(`/api/targets/${target}/storage`)) as LogStorageView;
const fullLog = async (target: string, id: string) => (await api(`/api/targets/${target}/jobs/${id}/log`)).text();
const stepLog = async (target: string, id: string) => (await api(`/api/targets/${target}/jobs/${id}/log?step=fetch`)).text();
/** The running total and the rows counted one by one, read inside the object. */
const totals = (target: string) =>
  runInDurableObject(env.TARGET.getByName(target), (_: Target, state) => ({ running: logUsage(state.storage.sql), counted: measureLogUsage(state.storage.sql) }));

describe("log budget", () => {
  it("reads LOG_BUDGET_MB as MiB, falling back to 1024 when unset or not a positive number", () => {
    expect(logBudgetBytes({ LOG_BUDGET_MB: "1" })).toBe(BUDGET);
    expect(logBudgetBytes({ LOG_BUDGET_MB: "0.5" })).toBe(BUDGET / 2);
    for (const v of [undefined, "", " ", "0", "-1", "lots"]) expect(logBudgetBytes({ LOG_BUDGET_MB: v })).toBe(1024 * BUDGET);
  });

  it("past the budget drops the oldest finished jobs' logs first, keeps the newest intact, and its totals stay exact across eviction", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const frames = (i: number) => Array.from({ length: 5 }, (_, k) => `${frame(`job ${i} frame ${k} `)}\n`);
    const perJob = 5 * utf8(frames(0)[0]!) + 8 * LOG_ROW_OVERHEAD_BYTES;
    expect(4 * perJob).toBeLessThanOrEqual(BUDGET); // four jobs fit, five do not
    expect(5 * perJob).toBeGreaterThan(BUDGET);

    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const id = await runningJob(target, agent, { after: String(i).repeat(40) });
      ids.push(id);
      await runToEnd(agent, id, frames(i));
      if (i === 2) {
        // Eviction mid-way: the running total lives in SQLite, not in memory.
        await evictDurableObject(env.TARGET.getByName(target));
      }
    }
    await evictDurableObject(env.TARGET.getByName(target));

    const s = await storage(target);
    expect(s).toEqual({
      target,
      logBytes: 4 * perJob,
      logRows: 4 * 8,
      logBudgetBytes: BUDGET,
      rowOverheadBytes: LOG_ROW_OVERHEAD_BYTES,
      oldestLoggedJob: { id: ids[2], createdAt: expect.any(String) },
    });
    expect(await totals(target)).toEqual({ running: { bytes: 4 * perJob, rows: 32 }, counted: { bytes: 4 * perJob, rows: 32 } });

    // The two oldest: job, steps and status kept; the log says why it is gone.
    for (const id of ids.slice(0, 2)) {
      expect(await fullLog(target, id)).toBe(`--- [hookrelay] ${LOG_DROPPED_NOTE}\n`);
      expect(await jobOf(target, id)).toMatchObject({ status: "succeeded", logBytes: 0, logRows: 0, steps: [{ name: "fetch", status: "succeeded", exitCode: 0 }, { status: "skipped" }, { status: "skipped" }, { status: "skipped" }] });
    }
    // The rest intact, byte for byte.
    for (const [i, id] of ids.entries()) {
      if (i < 2) continue;
      expect(await stepLog(target, id)).toBe(frames(i).join(""));
      expect(await jobOf(target, id)).toMatchObject({ logBytes: perJob, logRows: 8 });
    }
    agent.close();
  });

  it("never drops a running job's log: the overshoot stays until it ends, then the oldest finished logs go", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const small = await runningJob(target, agent, { after: "1".repeat(40) });
    await runToEnd(agent, small, ["small\n"]);
    const big = await runningJob(target, agent, { after: "2".repeat(40) });
    // 30 frames of 40,000 ASCII bytes: 1.2 MB in one running job, past the budget on its own.
    let seq = 0;
    agent.send(event(big, ++seq, { kind: "step-start", step: "fetch" }));
    await agent.next("ack");
    const data = `${"x".repeat(39_999)}\n`;
    for (let k = 0; k < 30; k++) {
      agent.send(event(big, ++seq, { kind: "output", step: "fetch", stream: "stdout", data }));
      await agent.next("ack");
    }
    // The finished job's log went at the first append past the budget; the running one's stays whole.
    expect(await fullLog(target, small)).toBe(`--- [hookrelay] ${LOG_DROPPED_NOTE}\n`);
    const over = await storage(target);
    expect(over.logBytes).toBe(31 * LOG_ROW_OVERHEAD_BYTES + 30 * 40_000);
    expect(over.logBytes).toBeGreaterThan(BUDGET);
    expect(over.oldestLoggedJob?.id).toBe(big);
    // Ended: the job-end is an append, and the job is now the oldest finished one with a log.
    agent.send(event(big, ++seq, { kind: "job-end", status: "succeeded" }));
    await agent.next("ack");
    expect(await storage(target)).toMatchObject({ logBytes: 0, logRows: 0, oldestLoggedJob: null });
    expect((await totals(target)).counted).toEqual({ bytes: 0, rows: 0 });
    agent.close();
  });

  it("counts out what retention deletes (finished jobs past RETENTION_DAYS)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const old = await runningJob(target, agent, { after: "1".repeat(40) });
    await runToEnd(agent, old, ["old é\n"]);
    const recent = await runningJob(target, agent, { after: "2".repeat(40) });
    await runToEnd(agent, recent, ["recent\n"]);
    const stub = env.TARGET.getByName(target);
    await runInDurableObject(stub, (_: Target, state) => {
      state.storage.sql.exec("UPDATE jobs SET finished_at = 1 WHERE id = ?", old);
    });
    await evictDurableObject(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await api(`/api/targets/${target}/jobs/${old}`)).status).toBe(404);
    const expected = { bytes: utf8("recent\n") + 4 * LOG_ROW_OVERHEAD_BYTES, rows: 4 };
    expect(await totals(target)).toEqual({ running: expected, counted: expected });
    expect(await storage(target)).toMatchObject({ logBytes: expected.bytes, logRows: 4, oldestLoggedJob: { id: recent } });
    agent.close();
  });

  it("holds a flood of one-byte and empty output events to the budget + one job's caps, and acks every event", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    let seq = 0;
    const frame = (data: Uint8Array) => encodeOutputFrame({ jobId: id, seq: ++seq, at: 1, step: "fetch", stream: "stdout" }, data);
    agent.send(event(id, ++seq, { kind: "step-start", step: "fetch" }));
    // Past the row cap, one byte at a time, with an empty event after every tenth.
    const one = new Uint8Array([0x2e]);
    let ones = 0;
    let empties = 0;
    while (ones < CAPS.rows + 2_000) {
      agent.ws.send(frame(one));
      ones += 1;
      if (ones % 10 === 0) {
        agent.ws.send(frame(new Uint8Array(0)));
        empties += 1;
      }
    }
    // A declared step starts and ends once: more step events than that are refused (and acked).
    for (let i = 0; i < 50; i++) agent.send(event(id, ++seq, { kind: i % 2 === 0 ? "step-end" : "step-start", step: "fetch", ...(i % 2 === 0 ? { status: "succeeded", exitCode: 0 } : {}) } as Parameters<typeof event>[2]));
    const last = seq;
    // Every event is acked, so the agent's spool drops them all.
    await eventually("the flood acked", async () => agent.pending().some((m) => m.type === "ack" && m.seq === last), 30_000, 50);

    expect(CAPS.rows).toBe(1000); // the real code path, with the cap lowered through its var
    const { running, counted } = await totals(target);
    expect(running).toEqual(counted);
    // Stored: CAPS.rows rows in all (step-start + output), then the declared steps' other events (4 steps: 8 in all), no empty row.
    expect(counted.rows).toBe(CAPS.rows + 7);
    expect(counted.bytes).toBeLessThanOrEqual(BUDGET + maxJobLogBytes(CAPS));
    expect(counted.bytes).toBeLessThanOrEqual(counted.rows * LOG_ROW_OVERHEAD_BYTES + CAPS.rows);
    await runInDurableObject(env.TARGET.getByName(target), (_: Target, state) => {
      const sql = state.storage.sql;
      expect(sql.exec("SELECT count(*) AS n FROM job_events WHERE job_id = ? AND kind = 'output' AND length(data) = 0", id).one().n).toBe(0);
      const job = sql.exec<{ output_bytes: number; output_dropped: number; output_dropped_events: number; acked_seq: number }>(
        "SELECT output_bytes, output_dropped, output_dropped_events, acked_seq FROM jobs WHERE id = ?", id).one();
      expect(job.acked_seq).toBe(last);
      expect(job.output_bytes + job.output_dropped).toBe(ones);
      expect(job.output_dropped_events).toBe(job.output_dropped);
    });
    expect(agent.pending().filter((m) => m.type === "error").map((m) => m.type === "error" && m.code)).toEqual(Array(50 - 7).fill("too-many-step-events"));
    agent.close();
  }, 60_000);
});
