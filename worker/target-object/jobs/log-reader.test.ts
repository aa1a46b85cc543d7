import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, pipeline, uniqueName } from "../../../testing/workerd/worker-support.ts";
import { createJob } from "./jobs.ts";
import type { Target } from "../target.ts";

const delivery = { hookId: "1", delivery: "d", event: "push", repo: "o/r", ref: "refs/heads/master", sha: "b".repeat(40), before: "a".repeat(40), pusher: "me" };
/** More than one page (log.ts reads 256 rows a page) of rows with no data, twice over. */
const EMPTY_ROWS = 700;

/** Reads a response body to its end, failing (not hanging) when it never ends. */
async function readAll(res: Response, timeoutMs = 4000): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stream did not end within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([res.text(), timeout]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

/**
 * The shape databases from before the row cap hold: an over-cap job's output events past the cap,
 * each a row with no data (and empty output events of any job). Written directly, as they are stored.
 */
async function jobWithEmptyRows(target: string): Promise<string> {
  return runInDurableObject(env.TARGET.getByName(target), (_: Target, state) => {
    const sql = state.storage.sql;
    const id = createJob(sql, "web-1", pipeline({ steps: ["s"], onFailure: [] }), delivery, 1);
    let seq = 0;
    const row = (kind: string, step: string | null, data: string | ArrayBuffer | null, status: string | null = null) =>
      sql.exec("INSERT INTO job_events (job_id, seq, at, kind, step, stream, data, status) VALUES (?, ?, 1, ?, ?, ?, ?, ?)", id, ++seq, kind, step, kind === "output" ? "stdout" : null, data, status);
    row("step-start", "s", null);
    row("output", "s", new TextEncoder().encode("head\n").buffer as ArrayBuffer);
    for (let i = 0; i < EMPTY_ROWS; i++) row("output", "s", i % 2 === 0 ? "" : new ArrayBuffer(0));
    row("output", "s", "middle\n");
    for (let i = 0; i < EMPTY_ROWS; i++) row("output", "s", "");
    row("step-end", "s", null, "succeeded");
    row("job-end", null, null, "succeeded");
    sql.exec("UPDATE jobs SET status = 'succeeded', started_at = 1, finished_at = 2, acked_seq = ?, end_seq = ?, output_bytes = 12, output_dropped = 700, output_dropped_events = 700 WHERE id = ?", seq, seq, id);
    return id;
  });
}

describe("a job's log over many rows with no data", () => {
  it("the raw step log ends, with every byte stored", async () => {
    const target = uniqueName();
    const id = await jobWithEmptyRows(target);
    const res = await api(`/api/targets/${target}/jobs/${id}/log?step=s`);
    expect(res.status).toBe(200);
    expect(await readAll(res)).toBe("head\nmiddle\n");
  });

  it("the whole log ends, with its headers, output and the omitted-output marker", async () => {
    const target = uniqueName();
    const id = await jobWithEmptyRows(target);
    const res = await api(`/api/targets/${target}/jobs/${id}/log`);
    expect(await readAll(res)).toBe("--- s\nhead\nmiddle\n--- s succeeded (exit none)\n--- job succeeded\n--- [hookrelay] 700 bytes of output omitted, 700 events (past the worker's per-job log cap: 67108864 bytes, or JOB_LOG_ROWS rows)\n");
  });

  it("the follow stream of the ended job ends too, with the same text", async () => {
    const target = uniqueName();
    const id = await jobWithEmptyRows(target);
    const res = await api(`/api/targets/${target}/jobs/${id}/log?follow=1`);
    const body = await readAll(res);
    const pieces = [...body.matchAll(/^event: log\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as string);
    expect(pieces.join("")).toBe("--- s\nhead\nmiddle\n--- s succeeded (exit none)\n--- job succeeded\n");
    expect(body).toMatch(/event: end\ndata: \{"lastSeq":1405\}\n\n$/);
  });
});
