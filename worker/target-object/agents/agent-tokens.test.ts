import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  agentsOf,
  agentUpgrade,
  api,
  connectAgent,
  disconnected,
  event,
  hello,
  helloAgent,
  jobOf,
  push,
  registerAgent,
  runningJob,
  uniqueName,
} from "../../../testing/workerd/worker-support.ts";

const DAY = 86_400_000;
const RETENTION_MS = 30 * DAY; // wrangler.toml RETENTION_DAYS

const post = (path: string, body?: unknown) =>
  api(path, { method: "POST", ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }) });

async function refused(res: Response): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.webSocket).toBeNull();
  expect(await res.json()).toEqual({ error: "missing or invalid agent token" });
}

function inTarget<T>(target: string, f: (sql: SqlStorage) => T): Promise<T> {
  return runInDurableObject(env.TARGET.getByName(target), (_, state) => f(state.storage.sql));
}

describe("per-agent tokens: registration", () => {
  it("registers an agent with a fresh token shown once, and answers 409 for a name already registered", async () => {
    const target = uniqueName();
    const res = await post(`/api/targets/${target}/agents`, { name: "web-1" });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { name: string; token: string };
    expect(body.name).toBe("web-1");
    expect(body.token).toMatch(/^hra_[A-Za-z0-9_-]{43}$/);
    const again = await post(`/api/targets/${target}/agents`, { name: "web-1" });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: expect.stringContaining("web-1") });
    expect(await registerAgent(target, "web-2")).not.toBe(body.token);
    // Listed before they ever connect.
    expect((await agentsOf(target)).map((a) => [a.name, a.connected, a.version])).toEqual([
      ["web-1", false, ""],
      ["web-2", false, ""],
    ]);
  });

  it("answers 409 for a name differing only in case from a registered one, naming it (WEB-1 beside web-1 would be one host to a person, two to the DO)", async () => {
    const target = uniqueName();
    expect((await post(`/api/targets/${target}/agents`, { name: "web-1" })).status).toBe(201);
    const res = await post(`/api/targets/${target}/agents`, { name: "WEB-1" });
    expect(res.status).toBe(409);
    expect(await res.json()).toEqual({ error: `agent WEB-1 differs only in case from agent web-1, already registered in target ${target}: agent names are compared without case` });
    expect((await agentsOf(target)).map((a) => a.name)).toEqual(["web-1"]);
  });

  it("answers 400 for a missing or invalid name", async () => {
    const target = uniqueName();
    for (const body of [{}, { name: "-bad" }, { name: "a/b" }, "nope"]) {
      expect((await post(`/api/targets/${target}/agents`, body)).status, JSON.stringify(body)).toBe(400);
    }
  });

  it("keeps only the token's SHA-256 in the DO, never the token", async () => {
    const target = uniqueName();
    const token = await registerAgent(target, "web-1");
    const rows = await inTarget(target, (sql) => sql.exec("SELECT * FROM agent_tokens").toArray());
    expect(rows).toHaveLength(1);
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(token);
    expect(dump).not.toContain(token.slice(4));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
    expect(dump).toContain([...digest].map((b) => b.toString(16).padStart(2, "0")).join(""));
  });

  it("allows 100 agents per target and answers 409 for the 101st", async () => {
    const target = uniqueName();
    for (let i = 0; i < 100; i++) await registerAgent(target, `web-${i}`);
    const res = await post(`/api/targets/${target}/agents`, { name: "web-100" });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: string }).error).toContain("100");
  });
});

describe("per-agent tokens: GET /agent", () => {
  it("answers 401 with the same body for an unknown name as for a wrong token", async () => {
    const target = uniqueName();
    const token = await registerAgent(target, "web-1");
    await refused(await agentUpgrade(target, "web-1", "hra_wrong"));
    await refused(await agentUpgrade(target, "web-9", token));
    await refused(await agentUpgrade(target, "web-1", null));
  });

  it("refuses another agent's valid token for web-1's name, and the real web-1 keeps its job", async () => {
    const target = uniqueName();
    const real = await helloAgent(target, "web-1");
    const id = await runningJob(target, real);
    const otherToken = await registerAgent(target, "web-2");
    await refused(await agentUpgrade(target, "web-1", otherToken));
    // The same token in another target is no token there either.
    await refused(await agentUpgrade(uniqueName(), "web-2", otherToken));

    real.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    expect(await real.next("ack")).toEqual({ type: "ack", jobId: id, seq: 1 });
    real.send(event(id, 2, { kind: "job-end", status: "succeeded" }));
    await real.next("ack");
    expect((await jobOf(target, id)).status).toBe("succeeded");
    expect((await agentsOf(target)).find((a) => a.name === "web-1")?.connected).toBe(true);
    real.close();
  });

  it("lets web-1's own token replace its older connection (a restarted agent)", async () => {
    const target = uniqueName();
    const first = await helloAgent(target, "web-1");
    const second = await connectAgent(target, "web-1");
    expect(await first.closed()).toMatchObject({ code: 4000 });
    second.send(hello("web-1"));
    await second.next("welcome");
    second.close();
  });
});

describe("per-agent tokens: rotate and revoke", () => {
  it("rotates a token: the old one is refused, its open socket closed, the new one connects", async () => {
    const target = uniqueName();
    const oldToken = await registerAgent(target, "web-1");
    const agent = await connectAgent(target, "web-1", oldToken);
    agent.send(hello("web-1"));
    await agent.next("welcome");

    const res = await post(`/api/targets/${target}/agents/web-1/token`);
    expect(res.status).toBe(200);
    const { name, token } = (await res.json()) as { name: string; token: string };
    expect(name).toBe("web-1");
    expect(token).not.toBe(oldToken);
    expect(await agent.closed()).toEqual({ code: 4001, reason: "token rotated" });
    await refused(await agentUpgrade(target, "web-1", oldToken));
    const back = await connectAgent(target, "web-1", token);
    back.send(hello("web-1"));
    await back.next("welcome");
    back.close();

    expect((await post(`/api/targets/${target}/agents/web-9/token`)).status).toBe(404);
  });

  it("revokes an agent: its socket is closed, its token refused, its queued job canceled, and no new job targets it", async () => {
    const target = uniqueName();
    const token = await registerAgent(target, "web-1");
    const agent = await connectAgent(target, "web-1", token);
    agent.send(hello("web-1"));
    await agent.next("welcome");
    const running = await runningJob(target, agent);
    const queued = (await push(target, { after: "c".repeat(40) })).body.jobs[0]!.id;

    const res = await api(`/api/targets/${target}/agents/web-1`, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "web-1", revoked: true, canceled: [queued], interrupted: [running] });
    expect(await agent.closed()).toEqual({ code: 4003, reason: "agent revoked" });
    await refused(await agentUpgrade(target, "web-1", token));

    expect((await jobOf(target, queued)).status).toBe("canceled");
    expect(await (await api(`/api/targets/${target}/jobs/${queued}/log`)).text()).toContain("agent web-1 was revoked");
    expect((await jobOf(target, running)).status).toBe("interrupted");
    expect(await agentsOf(target)).toEqual([]);
    const after = await push(target, { after: "d".repeat(40) });
    expect(after.body.jobs).toEqual([]);

    expect((await api(`/api/targets/${target}/agents/web-1`, { method: "DELETE" })).status).toBe(404);
    // The name is free again: registering it gives a new token.
    expect(await registerAgent(target, "web-1")).not.toBe(token);
  });
});

describe("per-agent tokens: pruning", () => {
  it("prunes an agent unseen for RETENTION_DAYS (its token and row), and keeps a connected one", async () => {
    const target = uniqueName();
    const goneToken = await registerAgent(target, "gone");
    const gone = await helloAgent(target, "gone");
    await disconnected(target, gone, "gone");
    const live = await helloAgent(target, "live");
    await registerAgent(target, "never");

    const armed = await inTarget(target, (sql) => sql.exec<{ n: number }>("SELECT count(*) AS n FROM agent_tokens").one().n);
    expect(armed).toBe(3);
    await inTarget(target, (sql) => {
      sql.exec("UPDATE agent_tokens SET issued_at = issued_at - ?", RETENTION_MS);
      sql.exec("UPDATE agents SET last_seen_at = last_seen_at - ?, connected_at = connected_at - ?, disconnected_at = disconnected_at - ? WHERE name = 'gone'", RETENTION_MS, RETENTION_MS, RETENTION_MS);
    });
    const alarm = await runInDurableObject(env.TARGET.getByName(target), (_, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);

    const names = await inTarget(target, (sql) => sql.exec<{ name: string }>("SELECT name FROM agent_tokens ORDER BY name").toArray().map((r) => r.name));
    expect(names).toEqual(["live"]);
    expect((await agentsOf(target)).map((a) => a.name)).toEqual(["live"]);
    await refused(await agentUpgrade(target, "gone", goneToken));
    live.close();
  });
});
