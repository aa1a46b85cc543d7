/**
 * The seed's deployment, for real: agent/examples/flask.yml deploys examples/flask-app to a real
 * gunicorn from a venv, driven by signed pushes through the real worker and the real agent.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentWithConfig, type AgentProcess } from "../dev/agent-process.ts";
import { agentToken, jobLog, waitForAgent, waitForJob } from "../dev/api.ts";
import { columnAddedIn, releaseRevision, REPO, versionFiles } from "../testing/flask-example.ts";
import { flaskSiteUnavailable } from "../testing/flask-python.ts";
import { createFlaskSite, type FlaskSite } from "../testing/flask-site.ts";
import { push } from "../testing/push.ts";
import { startWorker, type WorkerProcess } from "../dev/worker-process.ts";

const unavailable = flaskSiteUnavailable();
if (unavailable) console.warn(`[flask-deploy.e2e] skipped: ${unavailable} (.ci/run installs .ci/apt-packages.txt)`);

describe.skipIf(unavailable !== null)("deploying the example Flask app on push", () => {
  let site: FlaskSite;
  let worker: WorkerProcess;
  let agent: AgentProcess;
  let v2 = "";

  beforeAll(async () => {
    [site, worker] = await Promise.all([createFlaskSite(), startWorker()]);
    const tokenFile = join(site.dir, "token");
    writeFileSync(tokenFile, await agentToken(worker.url, "flask", "web-1"), { mode: 0o600 });
    const configPath = join(site.dir, "agent.yml");
    const stateDir = join(site.dir, "agent-state");
    writeFileSync(configPath, site.pipelineYaml({ server: worker.url.replace(/^http/, "ws"), target: "flask", name: "web-1", tokenFile, stateDir }));
    agent = startAgentWithConfig(configPath, stateDir, { label: "flask agent" });
    await waitForAgent(worker.url, "flask", "web-1");
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([worker?.stop(), site?.stop()]);
  });

  it("deploys v2 with its migration: gunicorn reloads and serves v2, the new column exists", async () => {
    const master = site.masterPid();
    v2 = await site.commit(versionFiles(2, { migration: "add column" }), "release 2: add a column");
    const res = await push(worker.url, "flask", REPO, v2, { before: site.initialSha });
    expect(res.status).toBe(202);
    const job = await waitForJob(worker.url, "flask", res.body.jobs[0].id, undefined, 120_000);
    const log = await jobLog(worker.url, "flask", job.id);
    expect(job.status, log).toBe("succeeded");
    expect(job.steps.map((s: any) => `${s.name}=${s.status}`)).toEqual([
      "fetch=succeeded",
      "install=succeeded",
      "migrate=succeeded",
      "reload=succeeded",
      "health=succeeded",
      "rollback=skipped",
      "reload-previous=skipped",
    ]);
    expect(await site.getVersion()).toEqual({ version: "2.0.0", revision: v2, schema: releaseRevision(2) });
    expect(await site.columns("note")).toContain(columnAddedIn(2));
    expect(site.masterPid()).toBe(master); // reloaded with HUP, not restarted
  });

  it("fails v3 at its broken migration, skips the rest, rolls back and keeps serving v2", async () => {
    expect(v2).not.toBe("");
    const v3 = await site.commit(versionFiles(3, { migration: "raise" }), "release 3: broken migration");
    const res = await push(worker.url, "flask", REPO, v3, { before: v2 });
    expect(res.status).toBe(202);
    const job = await waitForJob(worker.url, "flask", res.body.jobs[0].id, undefined, 120_000);
    const log = await jobLog(worker.url, "flask", job.id);
    expect(job.status, log).toBe("failed");
    expect(job.steps.map((s: any) => `${s.name}=${s.status}`)).toEqual([
      "fetch=succeeded",
      "install=succeeded",
      "migrate=failed",
      "reload=skipped",
      "health=skipped",
      "rollback=succeeded",
      "reload-previous=succeeded",
    ]);
    expect(await jobLog(worker.url, "flask", job.id, "migrate")).toContain("release 3's migration fails on purpose");
    expect(await site.liveHead()).toBe(v2);
    expect(await site.waitForRevision(v2)).toEqual({ version: "2.0.0", revision: v2, schema: releaseRevision(2) });
  });
});
