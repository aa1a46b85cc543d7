import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../app.ts";
import { ADMIN, api, postWebhook, pushPayload, uniqueName } from "../../testing/workerd/worker-support.ts";

describe("/api", () => {
  it("answers 401 without the admin token or with a wrong one", async () => {
    const target = uniqueName();
    expect((await app.request(`/api/targets/${target}/jobs`, {}, env)).status).toBe(401);
    expect((await app.request(`/api/targets/${target}/jobs`, { headers: { Authorization: "Bearer test-agent-token" } }, env)).status).toBe(401);
  });

  it("answers 500 naming ADMIN_TOKEN when it is not configured (fail closed)", async () => {
    const res = await app.request(`/api/targets/t/jobs`, { headers: { Authorization: "Bearer x" } }, { ...env, ADMIN_TOKEN: undefined as unknown as string });
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("ADMIN_TOKEN");
  });

  it("answers 404 JSON for an unknown job and for an invalid target name", async () => {
    const target = uniqueName();
    const res = await api(`/api/targets/${target}/jobs/${crypto.randomUUID()}`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: expect.stringContaining("no job") });
    expect((await api(`/api/targets/${target}/jobs/${crypto.randomUUID()}/log`)).status).toBe(404);
    expect((await api(`/api/targets/-bad-/jobs`)).status).toBe(404);
  });

  it("answers a target's stored logs against its budget, behind the admin token", async () => {
    const target = uniqueName();
    expect((await app.request(`/api/targets/${target}/storage`, {}, env)).status).toBe(401);
    expect((await api(`/api/targets/-bad-/storage`)).status).toBe(404);
    const res = await api(`/api/targets/${target}/storage`);
    expect(res.status).toBe(200);
    // The worker tests' LOG_BUDGET_MB is "1" (vitest.worker.config.ts); a fresh target stores nothing.
    expect(await res.json()).toEqual({ target, logBytes: 0, logRows: 0, logBudgetBytes: 1024 * 1024, rowOverheadBytes: 128, oldestLoggedJob: null });
  });

  it("lists jobs newest first and honours limit", async () => {
    const target = uniqueName();
    // No agent has declared anything yet: these are ignored, so declare via a hello first.
    const { helloAgent } = await import("../../testing/workerd/worker-support.ts");
    const agent = await helloAgent(target, "web-1");
    const ids: string[] = [];
    for (const sha of ["1", "2", "3"]) {
      const res = await postWebhook(target, JSON.stringify(pushPayload({ after: sha.repeat(40) })));
      ids.push(((await res.json()) as { jobs: { id: string }[] }).jobs[0]!.id);
    }
    const all = (await (await api(`/api/targets/${target}/jobs`)).json()) as { jobs: { id: string; sha: string }[] };
    expect(all.jobs.map((j) => j.id)).toEqual([...ids].reverse());
    const two = (await (await api(`/api/targets/${target}/jobs?limit=2`)).json()) as { jobs: unknown[] };
    expect(two.jobs).toHaveLength(2);
    expect((await api(`/api/targets/${target}/jobs?limit=abc`)).status).toBe(400);
    agent.close();
  });
});

describe("/api deploy and errors", () => {
  it("re-runs a pipeline with the last job's ref and sha, or with the ones given", async () => {
    const { helloAgent } = await import("../../testing/workerd/worker-support.ts");
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const noHistory = await api(`/api/targets/${target}/deploy`, { method: "POST", body: JSON.stringify({ pipeline: "app" }) });
    expect(noHistory.status).toBe(400);
    const given = await api(`/api/targets/${target}/deploy`, {
      method: "POST",
      body: JSON.stringify({ pipeline: "app", ref: "refs/heads/master", sha: "c".repeat(40) }),
    });
    expect(given.status).toBe(202);
    const { jobs } = (await given.json()) as { jobs: { id: string; agent: string }[] };
    expect(jobs).toEqual([{ id: expect.any(String), agent: "web-1", pipeline: "app", status: "queued" }]);
    expect(await agent.next("job")).toMatchObject({ jobId: jobs[0]!.id, sha: "c".repeat(40), event: "push", pusher: "api", delivery: expect.stringMatching(/^manual-/) });
    expect((await api(`/api/targets/${target}/deploy`, { method: "POST", body: JSON.stringify({ pipeline: "nope" }) })).status).toBe(404);
    expect((await api(`/api/targets/${target}/deploy`, { method: "POST", body: JSON.stringify({ pipeline: "app", sha: "xyz" }) })).status).toBe(400);
    agent.close();
  });

  it("answers a plain 500 without details when a route throws", async () => {
    const res = await app.request(`/api/targets/t/agents`, { headers: ADMIN }, { ...env, TARGET: undefined as unknown as Env["TARGET"] });
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).toBe("internal error");
  });
});
