import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  agentsOf,
  api,
  connectAgent,
  disconnected,
  event,
  eventually,
  hello,
  HEARTBEAT,
  helloAgent,
  jobOf,
  pipeline,
  push,
  pushJob,
  runningJob,
  statusBecomes,
  uniqueName,
} from "../../../testing/workerd/worker-support.ts";
import { storeReportSetup } from "../reports/report-outbox.ts";

const MINUTE = 60_000;
const JOB_GRACE_MS = 120_000; // wrangler.toml JOB_GRACE_SECONDS
const STALE_MS = 300_000; // wrangler.toml AGENT_STALE_SECONDS
const CANCEL_GRACE_MS = 60_000; // wrangler.toml CANCEL_GRACE_SECONDS

/** One agent with two pipelines, so a second job can wait behind the first. */
const twoPipelines = (timeoutMs: number) => [
  pipeline({ name: "app", timeoutMs }),
  pipeline({ name: "docs", branches: ["docs"], onFailure: [], timeoutMs }),
];

/** Runs `f` on the target's SQL inside the DO, with the alarm as it is now. */
function inTarget<T>(target: string, f: (sql: SqlStorage, alarm: number | null) => T): Promise<T> {
  return runInDurableObject(env.TARGET.getByName(target), async (_, state) => f(state.storage.sql, await state.storage.getAlarm()));
}

const logOf = async (target: string, id: string) => (await api(`/api/targets/${target}/jobs/${id}/log`)).text();

describe("Target DO deadlines: a job that never ends", () => {
  it("ends a running job timed_out past its timeout (twice, with on_failure steps) + grace, cancels it on the agent and sends the next job", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", twoPipelines(MINUTE));
    const id = await runningJob(target, agent);
    agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    await agent.next("ack");
    const next = (await push(target, { ref: "refs/heads/docs" })).body.jobs[0]!.id; // waits: the agent is busy

    const armed = await inTarget(target, (sql, alarm) => ({ startedAt: sql.exec<{ t: number }>("SELECT started_at AS t FROM jobs WHERE id = ?", id).one().t, alarm }));
    expect(armed.alarm).toBe(armed.startedAt + 2 * MINUTE + JOB_GRACE_MS);
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await jobOf(target, id)).status).toBe("running"); // not yet

    await inTarget(target, (sql) => sql.exec("UPDATE jobs SET started_at = started_at - ? WHERE id = ?", 2 * MINUTE + JOB_GRACE_MS, id));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    const job = await jobOf(target, id);
    expect(job.status).toBe("timed_out");
    expect(job.steps.map((s) => s.status)).toEqual(["timed_out", "skipped", "skipped", "skipped"]);
    expect(await agent.next("cancel")).toEqual({ type: "cancel", jobId: id });
    expect((await agent.next("job")).jobId).toBe(next);
    expect(await logOf(target, id)).toBe(
      "--- fetch\n--- [hookrelay] the agent never reported the end of this job within its timeout (1 min, twice for on_failure steps) + 2 min grace: ended timed_out\n",
    );

    // The live log has the note too, and ends: the job has ended even though its agent never said so.
    const follow = await (await api(`/api/targets/${target}/jobs/${id}/log?follow=1`)).text();
    expect(follow).toContain("ended timed_out\\n");
    expect(follow).toContain("event: end");

    // The agent's late job-end is acked and kept in the log, and changes nothing.
    agent.send(event(id, 2, { kind: "job-end", status: "canceled" }));
    expect((await agent.next("ack")).seq).toBe(2);
    expect((await jobOf(target, id)).status).toBe("timed_out");
    expect(await logOf(target, id)).toMatch(/ended timed_out\n--- \[hookrelay\] agent web-1 ended this job canceled after the worker had ended it timed_out: its steps show what ran there; the job stays timed_out\n--- job canceled\n$/);

    // Retention takes the note with the job.
    await inTarget(target, (sql) => sql.exec("UPDATE jobs SET finished_at = finished_at - ? WHERE id = ?", 31 * 86_400_000, id));
    await runDurableObjectAlarm(env.TARGET.getByName(target));
    expect(await inTarget(target, (sql) => sql.exec<{ n: number }>("SELECT count(*) AS n FROM job_notes").one().n)).toBe(0);
    agent.close();
  });

  it("tells an agent that was away when its job timed out to stop it when it comes back", async () => {
    const target = uniqueName();
    const decls = [pipeline({ timeoutMs: 1000 })];
    const agent = await helloAgent(target, "web-1", decls);
    const id = await runningJob(target, agent);
    await disconnected(target, agent);
    await inTarget(target, (sql) => sql.exec("UPDATE jobs SET started_at = started_at - ? WHERE id = ?", 2000 + JOB_GRACE_MS, id));
    await runDurableObjectAlarm(env.TARGET.getByName(target));
    expect((await jobOf(target, id)).status).toBe("timed_out"); // before the stale deadline (5 min)

    const back = await connectAgent(target, "web-1");
    back.send(hello("web-1", decls, [{ jobId: id, lastSeq: 0 }]));
    expect(await back.next("resume")).toEqual({ type: "resume", jobId: id, ackedSeq: 0 });
    expect(await back.next("cancel")).toEqual({ type: "cancel", jobId: id });
    back.close();
  });

  it("gives a pipeline without on_failure steps its timeout + grace", async () => {
    const target = uniqueName();
    // 2 min + grace comes before the socket check a stale period (5 min) on; 2 × 2 min + grace would not.
    const agent = await helloAgent(target, "web-1", twoPipelines(2 * MINUTE));
    const id = await runningJob(target, agent, { ref: "refs/heads/docs" });
    const armed = await inTarget(target, (sql, alarm) => ({ startedAt: sql.exec<{ t: number }>("SELECT started_at AS t FROM jobs WHERE id = ?", id).one().t, alarm }));
    expect(armed.alarm).toBe(armed.startedAt + 2 * MINUTE + JOB_GRACE_MS);
    agent.close();
  });
});

describe("Target DO deadlines: no running job escapes its timeout", () => {
  const timesOf = (target: string, id: string) =>
    inTarget(target, (sql, alarm) => ({
      ...sql.exec<{ started: number | null; sent: number }>("SELECT started_at AS started, dispatched_at AS sent FROM jobs WHERE id = ?", id).one(),
      alarm,
    }));

  it("starts the clock of a sent job whose `accepted` was lost when the agent's hello lists it", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", twoPipelines(MINUTE));
    const id = (await push(target)).body.jobs[0]!.id;
    await agent.next("job");
    await disconnected(target, agent); // before `accepted`
    const back = await connectAgent(target, "web-1");
    back.send(hello("web-1", twoPipelines(MINUTE), [{ jobId: id, lastSeq: 0 }]));
    await back.next("resume");
    expect((await jobOf(target, id)).status).toBe("running");
    const t = await timesOf(target, id);
    expect(t.started).not.toBeNull();
    expect(t.alarm).toBe(t.started! + 2 * MINUTE + JOB_GRACE_MS);
    back.close();
  });

  it("times out a running job without a start time (a row an older version revived) from when it was sent", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", twoPipelines(MINUTE));
    const id = await runningJob(target, agent);
    await inTarget(target, (sql) => sql.exec("UPDATE jobs SET started_at = NULL WHERE id = ?", id));
    await runDurableObjectAlarm(env.TARGET.getByName(target)); // re-derives the alarm from the row as it is now
    const t = await timesOf(target, id);
    expect(t.alarm).toBe(t.sent + 2 * MINUTE + JOB_GRACE_MS);

    await inTarget(target, (sql) => sql.exec("UPDATE jobs SET dispatched_at = dispatched_at - ? WHERE id = ?", 2 * MINUTE + JOB_GRACE_MS, id));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await jobOf(target, id)).status).toBe("timed_out");
    expect(await agent.next("cancel")).toEqual({ type: "cancel", jobId: id });
    agent.close();
  });
});

describe("Target DO deadlines: an agent that goes quiet", () => {
  it("arms the stale alarm when a new socket of the agent replaces its live one and never says hello", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    const silent = await connectAgent(target, "web-1"); // replaces the live socket; no hello ever
    await eventually("web-1 disconnected", async () => (await agentsOf(target))[0]?.connected === false, 2000, 10);

    const armed = await inTarget(target, (sql, alarm) => ({ left: sql.exec<{ t: number }>("SELECT disconnected_at AS t FROM agents").one().t, alarm }));
    expect(armed.alarm).toBe(armed.left + STALE_MS);
    await inTarget(target, (sql) => sql.exec("UPDATE agents SET disconnected_at = disconnected_at - ?", STALE_MS + 1000));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await jobOf(target, id)).status).toBe("interrupted");
    silent.close();
  });

  it("finds an agent whose socket vanished without a close event (a worker restart) and lets its job go stale", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    // What a restarted worker finds: the row says connected, but no socket with that connection id exists.
    await inTarget(target, (sql) => sql.exec("UPDATE agents SET conn_id = 'lost-in-restart'"));

    // While it runs a job, the alarm looks at least once a stale period.
    const armed = await inTarget(target, (sql, alarm) => ({ seen: sql.exec<{ t: number }>("SELECT last_seen_at AS t FROM agents").one().t, alarm }));
    expect(armed.alarm).toBe(armed.seen + STALE_MS);
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await agentsOf(target))[0]?.connected).toBe(false);
    expect((await jobOf(target, id)).status).toBe("running"); // its stale deadline starts now

    await inTarget(target, (sql) => sql.exec("UPDATE agents SET disconnected_at = disconnected_at - ?", STALE_MS + 1000));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await jobOf(target, id)).status).toBe("interrupted");
    agent.close();
  });

  it("keeps an agent whose socket is there and whose heartbeats arrive connected when the alarm looks", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    await inTarget(target, (sql) => sql.exec("UPDATE agents SET last_seen_at = last_seen_at - ?, connected_at = connected_at - ?", STALE_MS + 1000, STALE_MS + 1000));
    // No frame for longer than the stale period, but its heartbeats arrive (answered without waking the DO).
    const before = Date.now();
    agent.send(HEARTBEAT);
    await new Promise((r) => setTimeout(r, 50));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await agentsOf(target))[0]?.connected).toBe(true);
    expect((await jobOf(target, id)).status).toBe("running");
    const next = await inTarget(target, (sql, alarm) => ({ seen: sql.exec<{ t: number }>("SELECT last_seen_at AS t FROM agents").one().t, alarm }));
    expect(next.seen).toBeGreaterThanOrEqual(before - 1000); // seen when its heartbeat was answered
    expect(next.alarm).toBe(next.seen + STALE_MS); // the next look, a stale period on
    agent.close();
  });

  it("closes a socket nothing came through for longer than the stale period (a silent partition) and ends its job interrupted", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    // The socket is still there on this side, but no frame and no heartbeat arrived for a stale period and more.
    await inTarget(target, (sql) => sql.exec("UPDATE agents SET last_seen_at = last_seen_at - ?, connected_at = connected_at - ?", STALE_MS + 1000, STALE_MS + 1000));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect(await agent.closed()).toEqual({ code: 4010, reason: "nothing heard, not even a heartbeat" });
    expect((await agentsOf(target))[0]?.connected).toBe(false);
    const job = await jobOf(target, id);
    expect(job.status).toBe("interrupted");
    expect(await logOf(target, id)).toContain("agent web-1 has been disconnected for more than 5 min: ended interrupted");
  });

  it("still finds a silent socket silent when the object hibernated in between (its sockets outlive the instance)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    await inTarget(target, (sql) => sql.exec("UPDATE agents SET last_seen_at = last_seen_at - ?, connected_at = connected_at - ?", STALE_MS + 1000, STALE_MS + 1000));
    // An idle object is evicted and rebuilt on its next event (here, the alarm); hibernatable sockets stay.
    // Waking is not hearing: the socket being there says nothing of whether anything came through it.
    await evictDurableObject(env.TARGET.getByName(target));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect(await agent.closed()).toEqual({ code: 4010, reason: "nothing heard, not even a heartbeat" });
    expect((await jobOf(target, id)).status).toBe("interrupted");
  });

  it("keeps a heartbeating agent connected when the object hibernated between its heartbeat and the look", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    await inTarget(target, (sql) => sql.exec("UPDATE agents SET last_seen_at = last_seen_at - ?, connected_at = connected_at - ?", STALE_MS + 1000, STALE_MS + 1000));
    agent.send(HEARTBEAT); // answered by the runtime: the object is not woken, the row not touched
    await new Promise((r) => setTimeout(r, 50));
    await evictDurableObject(env.TARGET.getByName(target));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await agentsOf(target))[0]?.connected).toBe(true);
    expect((await jobOf(target, id)).status).toBe("running");
    agent.close();
  });
});

describe("Target DO deadlines: a cancel the agent never confirms", () => {
  const cancel = async (target: string, id: string) => expect((await api(`/api/targets/${target}/jobs/${id}/cancel`, { method: "POST" })).status).toBe(202);
  const requestedAt = (target: string, id: string) =>
    inTarget(target, (sql, alarm) => ({ at: sql.exec<{ t: number }>("SELECT cancel_requested_at AS t FROM jobs WHERE id = ?", id).one().t, alarm }));

  it("ends the job canceled when a connected agent does not confirm within the grace, and sends its next job", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", twoPipelines(30 * MINUTE));
    const id = await runningJob(target, agent);
    const next = (await push(target, { ref: "refs/heads/docs" })).body.jobs[0]!.id;
    await cancel(target, id);
    expect(await agent.next("cancel")).toEqual({ type: "cancel", jobId: id }); // …and the agent stays silent

    const armed = await requestedAt(target, id);
    expect(armed.alarm).toBe(armed.at + CANCEL_GRACE_MS);
    await inTarget(target, (sql) => sql.exec("UPDATE jobs SET cancel_requested_at = cancel_requested_at - ? WHERE id = ?", CANCEL_GRACE_MS, id));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await jobOf(target, id)).status).toBe("canceled");
    expect((await agent.next("job")).jobId).toBe(next);
    expect(await logOf(target, id)).toBe("--- [hookrelay] the agent did not confirm the cancel within 1 min: ended canceled\n");

    agent.send(event(id, 1, { kind: "job-end", status: "succeeded" }));
    expect((await agent.next("ack")).seq).toBe(1);
    expect((await jobOf(target, id)).status).toBe("canceled");
    agent.close();
  });

  it("ends the job canceled after the grace when its agent is offline (and may never come back)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    await disconnected(target, agent);
    await cancel(target, id);
    const armed = await requestedAt(target, id);
    expect(armed.alarm).toBe(armed.at + CANCEL_GRACE_MS); // before the stale deadline
    await inTarget(target, (sql) => sql.exec("UPDATE jobs SET cancel_requested_at = cancel_requested_at - ? WHERE id = ?", CANCEL_GRACE_MS, id));
    await runDurableObjectAlarm(env.TARGET.getByName(target));
    expect((await jobOf(target, id)).status).toBe("canceled");
  });
});

describe("Target DO deadlines: an agent that stays away", () => {
  it("marks a disconnected agent's running job interrupted once the stale deadline passes (alarm)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    await disconnected(target, agent);
    const stub = env.TARGET.getByName(target);

    // Before the deadline the alarm changes nothing.
    expect(await runInDurableObject(stub, async (_, state) => (await state.storage.getAlarm()) !== null)).toBe(true);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await jobOf(target, id)).status).toBe("running");

    // Fake the clock: the agent left longer ago than AGENT_STALE_SECONDS.
    await runInDurableObject(stub, (_, state) => {
      state.storage.sql.exec("UPDATE agents SET disconnected_at = disconnected_at - 301000");
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await jobOf(target, id)).status).toBe("interrupted");
  });
});

describe("Target DO deadlines: retention", () => {
  it("deletes finished jobs, their events and old delivery records after the retention period (alarm)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await pushJob(target);
    await agent.next("job");
    agent.send({ type: "accepted", jobId: id });
    agent.send(event(id, 1, { kind: "job-end", status: "succeeded" }));
    await agent.next("ack");
    const stub = env.TARGET.getByName(target);
    const count = () =>
      runInDurableObject(stub, (_, state) =>
        ["jobs", "job_events", "job_steps", "deliveries"].map((t) => state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ${t}`).one().n),
      );
    expect((await count()).every((n) => n > 0)).toBe(true);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await count()).every((n) => n > 0)).toBe(true); // not old yet

    const thirtyOneDays = 31 * 86_400_000;
    await runInDurableObject(stub, (_, state) => {
      state.storage.sql.exec("UPDATE jobs SET finished_at = finished_at - ?", thirtyOneDays);
      state.storage.sql.exec("UPDATE deliveries SET created_at = created_at - ?", thirtyOneDays);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await count()).toEqual([0, 0, 0, 0]);
    agent.close();
  });
});

describe("Target DO deadlines: a job sent but never confirmed", () => {
  const githubStates = (target: string, deploymentId: string) =>
    inTarget(target, (sql) =>
      sql
        .exec<{ body: string }>("SELECT body FROM reports WHERE deployment_id = ? AND kind = 'github-status' ORDER BY id", deploymentId)
        .toArray()
        .map((r) => (JSON.parse(r.body) as { state: string }).state),
    );

  it("ends it interrupted saying it may have run, halts the rollout, and keeps it ended when the agent comes back running it", async () => {
    const target = uniqueName();
    const web1 = await helloAgent(target, "web-1");
    const web2 = await helloAgent(target, "web-2");
    await inTarget(target, (sql) =>
      storeReportSetup(sql, { target, github: { state: "on", why: null }, notify: { state: "off", why: null, on: "all", targets: [] }, publicUrl: null }),
    );
    const dep = (await push(target)).body.deployments![0]!;
    const [j1, j2] = dep.jobs as [string, string];
    expect((await web1.next("job")).jobId).toBe(j1);
    await disconnected(target, web1, "web-1"); // its `accepted` never arrives: it may be running j1 now

    await inTarget(target, (sql) => {
      sql.exec("UPDATE jobs SET released_at = released_at - ? WHERE id = ?", STALE_MS, j1);
      sql.exec("UPDATE agents SET disconnected_at = disconnected_at - ? WHERE name = 'web-1'", STALE_MS);
    });
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    const ended = await jobOf(target, j1);
    expect(ended.status).toBe("interrupted");
    expect((await jobOf(target, j2)).status).toBe("skipped");
    const dep1 = (await api(`/api/targets/${target}/deployments/${dep.id}`).then((r) => r.json())) as { status: string };
    expect(dep1.status).toBe("failed");
    const interruptedNote =
      "--- [hookrelay] the job was sent to web-1, which went away before confirming it and stayed away more than 5 min: ended interrupted; it may have run there\n";
    expect(await logOf(target, j1)).toBe(interruptedNote);

    // web-1 comes back still running j1: it is told to stop, and the record stays what GitHub was told.
    const back = await connectAgent(target, "web-1");
    back.send(hello("web-1", [pipeline()], [{ jobId: j1, lastSeq: 0 }]));
    await back.next("welcome");
    expect(await back.next("resume")).toEqual({ type: "resume", jobId: j1, ackedSeq: 0 });
    expect(await back.next("cancel")).toEqual({ type: "cancel", jobId: j1 });
    const comeBack =
      "--- [hookrelay] agent web-1 came back running this job after it was ended interrupted: told to stop; it stays interrupted and its deployment failed\n";
    expect(await logOf(target, j1)).toBe(interruptedNote + comeBack);
    expect((await jobOf(target, j1)).status).toBe("interrupted");

    // Its events are still kept as the log, its late success included, and change nothing.
    back.send(event(j1, 1, { kind: "step-start", step: "fetch" }));
    back.send(event(j1, 2, { kind: "step-end", step: "fetch", status: "succeeded", exitCode: 0 }));
    back.send(event(j1, 3, { kind: "job-end", status: "succeeded" }));
    for (let i = 0; i < 3; i++) await back.next("ack");
    const after = await jobOf(target, j1);
    expect({ status: after.status, finishedAt: after.finishedAt }).toEqual({ status: "interrupted", finishedAt: ended.finishedAt });
    // It never started as far as the worker knew; it did run: its start and its step say so.
    expect(ended.startedAt).toBeNull();
    expect(after.startedAt).not.toBeNull();
    expect(after.steps.map((s) => s.status)).toEqual(["succeeded", "skipped", "skipped", "skipped"]);
    const lateEnd = "--- [hookrelay] agent web-1 ended this job succeeded after the worker had ended it interrupted: its steps show what ran there; the job stays interrupted\n";
    expect(await logOf(target, j1)).toBe(`${interruptedNote}${comeBack}--- fetch\n--- fetch succeeded (exit 0)\n${lateEnd}--- job succeeded\n`);
    const d = (await api(`/api/targets/${target}/deployments/${dep.id}`).then((r) => r.json())) as { status: string; jobs: { agent: string; status: string }[] };
    expect(d.status).toBe("failed");
    expect(d.jobs.map((j) => [j.agent, j.status])).toEqual([["web-1", "interrupted"], ["web-2", "skipped"]]);
    expect(await githubStates(target, dep.id)).toEqual(["queued", "failure"]);
    expect(web2.pending().filter((m) => m.type === "job")).toEqual([]);
    back.close();
    web2.close();
  });
});

describe("Target DO deadlines: a job a connected agent did not accept", () => {
  const sentOf = (target: string, id: string) =>
    inTarget(target, (sql, alarm) => ({ sent: sql.exec<{ t: number }>("SELECT dispatched_at AS t FROM jobs WHERE id = ?", id).one().t, alarm }));

  it("sends it again a stale period after it was sent, for as long as the agent stays connected without accepting it", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = (await push(target)).body.jobs[0]!.id;
    // The agent could not write it down (a full disk) and dropped it: no `accepted`, and its connection stays up.
    expect((await agent.next("job")).jobId).toBe(id);
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true); // the dispatch net: nothing due yet
    const first = await sentOf(target, id);
    expect(first.alarm).toBe(first.sent + STALE_MS);
    expect(agent.pending().filter((m) => m.type === "job")).toEqual([]);
    expect((await jobOf(target, id)).status).toBe("queued");

    await inTarget(target, (sql) => sql.exec("UPDATE jobs SET dispatched_at = dispatched_at - ? WHERE id = ?", STALE_MS, id));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await agent.next("job")).jobId).toBe(id);
    // Counted from this send: the next one a stale period on, not at once again.
    const again = await sentOf(target, id);
    expect(again.sent).toBeGreaterThanOrEqual(first.sent);
    expect(again.alarm).toBe(again.sent + STALE_MS);

    // Space came back: the agent takes it.
    agent.send({ type: "accepted", jobId: id });
    await statusBecomes(target, id, "running");
    agent.close();
  });

  it("arms that sending again when a job goes out at the end of the agent's previous one", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", twoPipelines(MINUTE));
    const first = await runningJob(target, agent);
    const next = (await push(target, { ref: "refs/heads/docs" })).body.jobs[0]!.id; // waits: the agent is busy
    agent.send(event(first, 1, { kind: "job-end", status: "succeeded" }));
    await agent.next("ack");
    expect((await agent.next("job")).jobId).toBe(next); // not accepted
    const t = await sentOf(target, next);
    expect(t.alarm).not.toBeNull();
    expect(t.alarm!).toBeLessThanOrEqual(t.sent + STALE_MS);

    await inTarget(target, (sql) => sql.exec("UPDATE jobs SET dispatched_at = dispatched_at - ? WHERE id = ?", STALE_MS, next));
    expect(await runDurableObjectAlarm(env.TARGET.getByName(target))).toBe(true);
    expect((await agent.next("job")).jobId).toBe(next);
    agent.close();
  });
});
