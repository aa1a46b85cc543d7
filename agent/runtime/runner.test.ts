import { describe, expect, it } from "vitest";
import type { PipelineConfig } from "../common/config.ts";
import { checkJob, type JobRequest, stepEnv } from "./runner.ts";
import { AGENT_MALLOC_ENV, AGENT_V8_FLAGS } from "../common/sea.ts";
import { SHA_A, SHA_B } from "../../testing/fake-worker.ts";
import { testDir } from "../../testing/test-agent.ts";

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
  rollout: { batch: 1, haltOnFailure: true },
  environment: null,
  environmentUrl: null,
  productionEnvironment: null,
  transientEnvironment: null,
  secrets: {},
  tags: [],
  paths: null,
  pathsIgnore: null,
  waitFor: null,
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

  it("refuses a repo, event or branch its pipeline does not allow, naming the configured value", () => {
    expect(checkJob(job({ repo: "attacker/other", event: "release", ref: "refs/heads/unreviewed-branch" }), pipeline, [pipeline])).toEqual([
      `repo "attacker/other" is not this pipeline's repo (configured: owner/app; compared ignoring case, as GitHub does)`,
      `event "release" is not in this pipeline's events (configured: push)`,
      `branch "unreviewed-branch" does not match this pipeline's branches (configured: main)`,
    ]);
  });

  it("compares the repo ignoring case and reads branch filters in order, a later ! excluding", () => {
    const release = { ...pipeline, branches: ["release/**", "!release/**-alpha"] };
    expect(checkJob(job({ repo: "OWNER/App", ref: "refs/heads/release/2.0" }), release, [release])).toEqual([]);
    expect(checkJob(job({ ref: "refs/heads/release/2.0-alpha" }), release, [release])).toEqual([
      `branch "release/2.0-alpha" does not match this pipeline's branches (configured: release/**, !release/**-alpha)`,
    ]);
    const none = { ...pipeline, branches: ["main", "!main"] };
    expect(checkJob(job(), none, [none])).toEqual([`branch "main" does not match this pipeline's branches (configured: main, !main)`]);
  });

  it("refuses a tag job unless the pipeline's own tags name it (none configured: every tag job)", () => {
    const tagged = { ...pipeline, tags: ["v*", "!v*-rc*"] };
    expect(checkJob(job({ ref: "refs/tags/v2.1.0" }), tagged, [tagged])).toEqual([]);
    expect(checkJob(job({ ref: "refs/tags/v2.1.0-rc1" }), tagged, [tagged])).toEqual([`tag "v2.1.0-rc1" does not match this pipeline's tags (configured: v*, !v*-rc*)`]);
    expect(checkJob(job({ ref: "refs/tags/main" }), pipeline, [pipeline])).toEqual([`tag "main" does not match this pipeline's tags (configured: none: this pipeline deploys no tags)`]);
    // a tag named like a branch the pipeline takes is still a tag; a branch named like a tag glob is still a branch
    expect(checkJob(job({ ref: "refs/heads/v2.1.0" }), tagged, [tagged])).toEqual([`branch "v2.1.0" does not match this pipeline's branches (configured: main)`]);
    const tagOnly = { ...tagged, branches: [] };
    expect(checkJob(job(), tagOnly, [tagOnly])).toEqual([`branch "main" does not match this pipeline's branches (configured: none)`]);
    expect(checkJob(job({ ref: "refs/tags/a\u2028b" }), pipeline, [pipeline])).toEqual([`tag "a\\u2028b" does not match this pipeline's tags (configured: none: this pipeline deploys no tags)`]);
  });

  // Controls are refused as a field problem above; a line separator is valid in a branch name but must not split a log line.
  it("escapes a line separator in a refused branch's name", () => {
    expect(checkJob(job({ ref: "refs/heads/a\u2028b\u2029c" }), pipeline, [pipeline])).toEqual([
      `branch "a\\u2028b\\u2029c" does not match this pipeline's branches (configured: main)`,
    ]);
  });
});

describe("stepEnv", () => {
  it("sets HOOKRELAY_TAG and an empty HOOKRELAY_BRANCH for a tag job, the reverse for a branch job, over the agent's own values", () => {
    const tag = stepEnv(job({ ref: "refs/tags/v1.2.0" }), pipeline, { HOOKRELAY_TAG: "stale", HOOKRELAY_BRANCH: "stale" });
    expect(tag.ok && { branch: tag.env.HOOKRELAY_BRANCH, tag: tag.env.HOOKRELAY_TAG, ref: tag.env.HOOKRELAY_REF }).toEqual({ branch: "", tag: "v1.2.0", ref: "refs/tags/v1.2.0" });
    const branch = stepEnv(job({ ref: "refs/heads/release/2" }), pipeline, { HOOKRELAY_TAG: "stale" });
    expect(branch.ok && { branch: branch.env.HOOKRELAY_BRANCH, tag: branch.env.HOOKRELAY_TAG }).toEqual({ branch: "release/2", tag: "" });
  });

  it("keeps the agent's own settings and credentials from the steps, and an operator's own values in", () => {
    const unit = { PATH: "/usr/bin", HOOKRELAY_AGENT_TOKEN: "hr_secret", CREDENTIALS_DIRECTORY: "/run/credentials/x", NODE_OPTIONS: AGENT_V8_FLAGS, ...AGENT_MALLOC_ENV };
    const r = stepEnv(job(), pipeline, unit);
    if (!r.ok) throw new Error(r.problem);
    for (const name of ["HOOKRELAY_AGENT_TOKEN", "CREDENTIALS_DIRECTORY", "NODE_OPTIONS", "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_"]) expect(r.env).not.toHaveProperty(name);
    expect(r.env.PATH).toBe("/usr/bin");
    expect(Object.keys(AGENT_MALLOC_ENV).sort()).toEqual(["MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_"]);

    const own = stepEnv(job(), pipeline, { NODE_OPTIONS: "--max-old-space-size=512", MALLOC_ARENA_MAX: "4", MALLOC_TRIM_THRESHOLD_: "131072" });
    if (!own.ok) throw new Error(own.problem);
    expect(own.env).toMatchObject({ NODE_OPTIONS: "--max-old-space-size=512", MALLOC_ARENA_MAX: "4" });
    expect(own.env).not.toHaveProperty("MALLOC_TRIM_THRESHOLD_");
    // A pipeline's env: sets what its steps see, whatever the agent runs with.
    const set = stepEnv(job(), { ...pipeline, env: { MALLOC_ARENA_MAX: "2" } }, { ...AGENT_MALLOC_ENV });
    expect(set.ok && set.env.MALLOC_ARENA_MAX).toBe("2");
  });
});
