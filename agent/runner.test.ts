import { describe, expect, it } from "vitest";
import type { PipelineConfig } from "./config.ts";
import { checkJob, type JobRequest } from "./runner.ts";
import { SHA_A, SHA_B } from "./testing/fake-worker.ts";
import { testDir } from "./testing/test-agent.ts";

const pipeline: PipelineConfig = {
  name: "app",
  repo: "owner/app",
  events: ["push"],
  branches: ["main"],
  workdir: testDir(),
  env: {},
  timeoutMs: 60_000,
  steps: [{ name: "s", run: "true", timeoutMs: null }],
  onFailure: [],
};

const job = (fields: Partial<JobRequest["fields"]> = {}): JobRequest => ({
  jobId: "j",
  pipeline: "app",
  fields: { delivery: "d-1", event: "push", repo: "owner/app", ref: "refs/heads/main", sha: SHA_A, before: SHA_B, pusher: "octocat", ...fields },
});

describe("checkJob", () => {
  it("finds nothing wrong with a good job", () => {
    expect(checkJob(job(), pipeline, [pipeline])).toEqual([]);
  });

  // A job frame bounds each field at 16 KiB; a request built any other way (or a future frame) is held to the same rules.
  it("names every payload field that cannot be an environment value, however long", () => {
    expect(checkJob(job({ pusher: "x".repeat(200_000), ref: "refs/heads/a\u0000b", sha: "ABC" }), pipeline, [pipeline])).toEqual([
      "ref contains a NUL character (U+0000), which no process environment can hold",
      "sha must be 40 or 64 lowercase hex digits",
      "pusher is 200000 bytes long, more than the 256 allowed",
    ]);
  });
});
