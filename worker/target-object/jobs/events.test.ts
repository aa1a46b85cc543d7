import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { pipeline, uniqueName } from "../../../testing/workerd/worker-support.ts";
import { OUTPUT_CAP_ROWS, storeEvent } from "./events.ts";
import { createJob, getJob } from "./jobs.ts";
import { logStream } from "./log-reader.ts";
import type { Target } from "../target.ts";

const delivery = { hookId: "1", delivery: "d", event: "push", repo: "o/r", ref: "refs/heads/master", sha: "b".repeat(40), before: "a".repeat(40), pusher: "me" };

describe("storeEvent", () => {
  it("acks output past the byte cap without storing it, and the log says how much was omitted", async () => {
    const stub = env.TARGET.getByName(uniqueName());
    const log = await runInDurableObject(stub, async (_: Target, state) => {
      const sql = state.storage.sql;
      const id = createJob(sql, "web-1", pipeline({ steps: ["s"], onFailure: [] }), delivery, 1);
      sql.exec("UPDATE jobs SET status = 'running' WHERE id = ?", id);
      const outcomes = ["0123456789", "abcdefghij", "KLMNO"].map((data, i) =>
        storeEvent(sql, getJob(sql, id)!, i + 1, 1, { kind: "output", step: "s", stream: "stdout", data }, 1, { bytes: 15, rows: OUTPUT_CAP_ROWS }),
      );
      expect(outcomes.map((o) => o.kind)).toEqual(["stored", "not-stored", "not-stored"]);
      expect(getJob(sql, id)).toMatchObject({ acked_seq: 3, output_bytes: 10, output_dropped: 15, output_dropped_events: 2, log_rows: 1 });
      const job = getJob(sql, id)!;
      return new Response(logStream(sql, id, null, { bytes: job.output_dropped, events: job.output_dropped_events })).text();
    });
    expect(log).toBe("0123456789\n--- [hookrelay] 15 bytes of output omitted, 2 events (past the worker's per-job log cap: 67108864 bytes, or JOB_LOG_ROWS rows)\n");
  });
});
