// The Flask fixture and agent/examples/flask.yml together: the pipeline's own step
// commands, run with bash the way the agent runs them, deploy a new release to a
// real gunicorn. (The agent itself is exercised by the end-to-end tests.)
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfig } from "../agent/common/config.ts";
import { BRANCH, columnAddedIn, EXAMPLE_PIPELINE, INITIAL_REVISION, releaseRevision, REPO, versionFiles } from "../testing/flask-example.ts";
import { cleanEnv, flaskSiteUnavailable } from "../testing/flask-python.ts";
import { createFlaskSite, type FlaskSite } from "../testing/flask-site.ts";

const unavailable = flaskSiteUnavailable();
if (unavailable) console.warn(`[flask-site.test] skipped: ${unavailable}`);

interface Step {
  name: string;
  run: string;
}
interface Pipeline {
  workdir: string;
  env: Record<string, string>;
  steps: Step[];
  on_failure: Step[];
}
interface StepResult {
  name: string;
  exitCode: number | null;
  output: string;
}

function readPipeline(yamlText: string): Pipeline {
  const doc: unknown = parse(yamlText);
  const p: unknown = (doc as { pipelines?: unknown[] } | null)?.pipelines?.[0];
  if (typeof p !== "object" || p === null) throw new Error("flask.yml has no pipeline");
  const { workdir, env, steps, on_failure } = p as Record<string, unknown>;
  const isSteps = (v: unknown): v is Step[] =>
    Array.isArray(v) && v.every((s) => typeof s?.name === "string" && typeof s?.run === "string");
  if (typeof workdir !== "string" || typeof env !== "object" || env === null || !isSteps(steps) || !isSteps(on_failure)) {
    throw new Error("flask.yml pipeline lacks workdir, env, steps or on_failure");
  }
  return { workdir, env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])), steps, on_failure };
}

function runStep(step: Step, pipeline: Pipeline, vars: Record<string, string>): Promise<StepResult> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-eo", "pipefail", "-c", step.run], {
      cwd: pipeline.workdir,
      env: cleanEnv({ ...pipeline.env, ...vars }),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n[timed out]`;
      if (child.pid) process.kill(-child.pid, "SIGKILL");
    }, 90_000);
    child.on("close", (exitCode) => {
      clearTimeout(timer);
      resolve({ name: step.name, exitCode, output });
    });
  });
}

/** Steps until the first failure, then on_failure — the agent's semantics, minus everything else. */
async function deploy(site: FlaskSite, sha: string, before: string): Promise<{ steps: StepResult[]; onFailure: StepResult[] }> {
  const pipeline = readPipeline(site.pipelineYaml());
  const vars = {
    HOOKRELAY_JOB_ID: `job-${sha.slice(0, 8)}`,
    HOOKRELAY_EVENT: "push",
    HOOKRELAY_REPO: REPO,
    HOOKRELAY_REF: `refs/heads/${BRANCH}`,
    HOOKRELAY_BRANCH: BRANCH,
    HOOKRELAY_SHA: sha,
    HOOKRELAY_BEFORE: before,
    // Offline here: fail at once rather than retry an unreachable index if a requirement were unmet.
    PIP_NO_INDEX: "1",
  };
  const steps: StepResult[] = [];
  for (const step of pipeline.steps) {
    const result = await runStep(step, pipeline, vars);
    steps.push(result);
    if (result.exitCode !== 0) break;
  }
  const onFailure: StepResult[] = [];
  if (steps.some((s) => s.exitCode !== 0)) {
    for (const step of pipeline.on_failure) onFailure.push(await runStep(step, pipeline, vars));
  }
  return { steps, onFailure };
}

const summary = (results: StepResult[]): string => results.map((r) => `${r.name}=${r.exitCode}`).join(" ");
const dump = (results: StepResult[]): string => results.map((r) => `--- ${r.name} (${r.exitCode})\n${r.output}`).join("\n");

describe("agent/examples/flask.yml", () => {
  it("is a config the agent accepts", () => {
    const result = parseConfig(readFileSync(EXAMPLE_PIPELINE, "utf8"), EXAMPLE_PIPELINE);
    expect(result.ok ? [] : result.problems).toEqual([]);
  });
});

describe("flask site fixture", () => {
  let site: FlaskSite;
  let v2 = "";

  beforeAll(async () => {
    if (!unavailable) site = await createFlaskSite();
  }, 120_000);
  afterAll(async () => {
    await site?.stop();
  });

  it.skipIf(unavailable)("serves release 1 at the seeded commit with the initial schema", async () => {
    const yml = site.pipelineYaml({ server: "ws://127.0.0.1:1", tokenFile: `${site.dir}/token` });
    expect(yml).not.toMatch(/\/srv\/|\/run\/gunicorn\/|127\.0\.0\.1:8000\b/);
    const config = parseConfig(yml, "substituted flask.yml");
    expect(config.ok ? config.config.pipelines[0]?.workdir : config.problems).toBe(site.livePath);
    expect(await site.getVersion()).toEqual({ version: "1.0.0", revision: site.initialSha, schema: INITIAL_REVISION });
    expect(await site.liveHead()).toBe(site.initialSha);
    expect(await site.columns("note")).not.toContain(columnAddedIn(2));
    const res = await fetch(`${site.baseUrl}/notes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: "kept across deploys" }),
      signal: AbortSignal.timeout(5_000),
    });
    expect(res.status).toBe(201);
  });

  it.skipIf(unavailable)("deploys release 2 with flask.yml's steps: new column, new code after HUP, same master", async () => {
    const master = site.masterPid();
    v2 = await site.commit(versionFiles(2, { migration: "add column" }), "release 2: add a column");
    const { steps, onFailure } = await deploy(site, v2, site.initialSha);
    expect(summary(steps), dump(steps)).toBe("fetch=0 install=0 migrate=0 reload=0 health=0");
    expect(onFailure).toEqual([]);
    expect(await site.getVersion()).toEqual({ version: "2.0.0", revision: v2, schema: releaseRevision(2) });
    expect(await site.columns("note")).toContain(columnAddedIn(2));
    expect(site.masterPid()).toBe(master); // reloaded, not restarted
    const notes = await (await fetch(`${site.baseUrl}/notes`, { signal: AbortSignal.timeout(5_000) })).json();
    expect(notes).toMatchObject({ notes: [{ text: "kept across deploys" }] });
  });

  it.skipIf(unavailable)("stops at a failing migration, skips the rest, rolls back and keeps serving release 2", async () => {
    expect(v2).not.toBe("");
    const v3 = await site.commit(versionFiles(3, { migration: "raise" }), "release 3: broken migration");
    const { steps, onFailure } = await deploy(site, v3, v2);
    expect(summary(steps), dump(steps)).toBe("fetch=0 install=0 migrate=1");
    expect(steps.at(-1)?.output).toContain("release 3's migration fails on purpose");
    expect(summary(onFailure), dump(onFailure)).toBe("rollback=0 reload-previous=0");
    expect(await site.liveHead()).toBe(v2);
    // The HUP from rollback's reload has been sent; new workers run release 2 again.
    expect(await site.waitForRevision(v2)).toEqual({ version: "2.0.0", revision: v2, schema: releaseRevision(2) });
  });

  // A job's sha is only a claim: a worker that is not ours (or a forged push) could name any commit
  // origin has, e.g. one on a branch nobody reviewed. Its `before` is a claim too.
  it.skipIf(unavailable)("refuses a sha that is only on another branch: fetch fails saying why, the live checkout and the site stay on release 2", async () => {
    expect(v2).not.toBe("");
    const unreviewed = await site.commit({ ...versionFiles(4), [`migrations/versions/${releaseRevision(3)}.py`]: null }, "release 4, unreviewed", { branch: "unreviewed" });
    // Present in the live checkout, as after any plain `git fetch origin`: the check refuses it, not a missing object.
    execFileSync("git", ["-C", site.livePath, "fetch", "-q", "origin"], { env: cleanEnv() });
    const { steps, onFailure } = await deploy(site, unreviewed, unreviewed);
    expect(summary(steps), dump(steps)).toBe("fetch=1");
    expect(steps[0]?.output).toContain(`refusing to deploy ${unreviewed}: it is not on branch ${BRANCH} of origin`);
    expect(summary(onFailure), dump(onFailure)).toBe("rollback=0 reload-previous=0");
    expect(await site.liveHead()).toBe(v2);
    expect(await site.waitForRevision(v2)).toEqual({ version: "2.0.0", revision: v2, schema: releaseRevision(2) });
  });

  it.skipIf(unavailable)("still deploys a commit on the branch after a refusal", async () => {
    const v5 = await site.commit({ ...versionFiles(5), [`migrations/versions/${releaseRevision(3)}.py`]: null }, "release 5: drop the broken migration");
    const { steps, onFailure } = await deploy(site, v5, v2);
    expect(summary(steps), dump(steps)).toBe("fetch=0 install=0 migrate=0 reload=0 health=0");
    expect(onFailure).toEqual([]);
    expect(await site.getVersion()).toEqual({ version: "5.0.0", revision: v5, schema: releaseRevision(2) });
  });
});
