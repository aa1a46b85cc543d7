import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { encodeOutputFrame, GATES_PROTOCOL_VERSION, MAX_FRAME_BYTES, MAX_UNFINISHED, OUTPUT_FRAME_TAG, PROTOCOL_VERSION } from "../../../shared/protocol.ts";
import {
  api,
  apiJson,
  connectAgent,
  disconnected,
  event,
  eventually,
  hello,
  helloAgent,
  jobOf,
  pipeline,
  push,
  pushJob,
  runningJob,
  statusBecomes,
  uniqueName,
} from "../../../testing/workerd/worker-support.ts";
import type { JobView } from "../types.ts";

/** web-1 starts a job's first step (seq 1, acked), goes away past AGENT_STALE_SECONDS, and the alarm ends the job interrupted. */
async function interruptedWhileAway(target: string): Promise<{ a: string; interrupted: JobView }> {
  const agent = await helloAgent(target, "web-1");
  const a = await runningJob(target, agent);
  agent.send(event(a, 1, { kind: "step-start", step: "fetch" }));
  await agent.next("ack");
  await disconnected(target, agent);
  const stub = env.TARGET.getByName(target);
  await runInDurableObject(stub, (_, state) => {
    state.storage.sql.exec("UPDATE agents SET disconnected_at = disconnected_at - 301000");
  });
  await runDurableObjectAlarm(stub);
  const interrupted = await jobOf(target, a);
  expect(interrupted.status).toBe("interrupted");
  return { a, interrupted };
}

describe("Target DO: frames no agent should send", () => {
  it("refuses a hello listing more than MAX_UNFINISHED jobs with an error naming the limit, and takes the next good hello", async () => {
    const target = uniqueName();
    const agent = await connectAgent(target, "web-1");
    const unfinished = Array.from({ length: MAX_UNFINISHED + 1 }, (_, i) => ({ jobId: `job-${i}`, lastSeq: 0 }));
    agent.send(hello("web-1", undefined, unfinished));
    const error = await agent.next("error");
    expect(error.code).toBe("bad-frame");
    expect(error.message).toContain("unfinished");
    expect(error.message).toContain(String(MAX_UNFINISHED));
    agent.send(hello("web-1"));
    expect((await agent.next("welcome")).agent).toBe("web-1");
    agent.close();
  });

  it("refuses an event whose time is past the Date range, and the job still answers 200", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    agent.send({ type: "event", jobId: id, seq: 1, at: 8.64e15 + 1, body: { kind: "step-start", step: "fetch" } });
    const error = await agent.next("error");
    expect(error.code).toBe("bad-frame");
    expect(error.message).toContain("at");
    expect((await jobOf(target, id)).steps[0]).toMatchObject({ name: "fetch", status: "pending", startedAt: null });
    agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    expect((await agent.next("ack")).seq).toBe(1);
    agent.close();
  });

  it("still answers a job whose stored times are outside the Date range (a row written before times were bounded)", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    await runInDurableObject(env.TARGET.getByName(target), (_, state) => {
      state.storage.sql.exec("UPDATE job_steps SET started_at = ?, finished_at = ? WHERE job_id = ? AND position = 0", 9e15, Number.MAX_SAFE_INTEGER, id);
      state.storage.sql.exec("UPDATE jobs SET started_at = ? WHERE id = ?", -9e15, id);
    });
    const res = await api(`/api/targets/${target}/jobs/${id}`);
    expect(res.status).toBe(200);
    const job = (await res.json()) as { startedAt: string | null; steps: { startedAt: string | null; finishedAt: string | null }[] };
    expect(job.startedAt).toBeNull();
    expect(job.steps[0]).toMatchObject({ startedAt: null, finishedAt: null });
    expect((await api(`/api/targets/${target}/jobs`)).status).toBe(200);
    agent.close();
  });
});

describe("Target DO: events a job's declaration and its end do not allow", () => {
  const logOf = async (target: string, id: string) => (await api(`/api/targets/${target}/jobs/${id}/log`)).text();

  it("refuses events after the job's job-end with after-job-end, stores nothing, and still acks them", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    agent.send(event(id, 1, { kind: "job-end", status: "succeeded" }));
    expect((await agent.next("ack")).seq).toBe(1);
    agent.send(event(id, 2, { kind: "output", step: null, stream: "stdout", data: "written after the end\n" }));
    expect((await agent.next("error")).code).toBe("after-job-end");
    expect(await agent.next("ack")).toEqual({ type: "ack", jobId: id, seq: 2 });
    agent.send(event(id, 3, { kind: "job-end", status: "failed" }));
    expect((await agent.next("error")).code).toBe("after-job-end");
    expect((await agent.next("ack")).seq).toBe(3);
    expect(await logOf(target, id)).toBe("--- job succeeded\n");
    expect((await jobOf(target, id)).status).toBe("succeeded");
    agent.close();
  });

  it("refuses a step-start for a step the job's declaration does not list with unknown-step, and still acks it", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    agent.send(event(id, 1, { kind: "step-start", step: "not-declared" }));
    const error = await agent.next("error");
    expect(error.code).toBe("unknown-step");
    expect(error.message).toContain("not-declared");
    expect((await agent.next("ack")).seq).toBe(1);
    agent.send(event(id, 2, { kind: "step-start", step: "fetch" }));
    expect((await agent.next("ack")).seq).toBe(2);
    expect((await jobOf(target, id)).steps.map((s) => [s.name, s.status])).toEqual([
      ["fetch", "running"],
      ["install", "pending"],
      ["reload", "pending"],
      ["rollback", "pending"],
    ]);
    expect(await logOf(target, id)).toBe("--- fetch\n");
    expect(agent.pending().filter((m) => m.type === "error")).toEqual([]);
    agent.close();
  });

  it("gives the agent's queued jobs the steps and timeout its new hello declares, so a changed config is not refused", async () => {
    const target = uniqueName();
    await disconnected(target, await helloAgent(target, "web-1"));
    const id = (await push(target)).body.jobs[0]!.id;
    const changed = pipeline({ steps: ["fetch", "build", "reload"], onFailure: [], timeoutMs: 5 * 60_000 });
    const back = await connectAgent(target, "web-1");
    back.send(hello("web-1", [changed]));
    await back.next("welcome");
    expect((await back.next("job")).jobId).toBe(id);
    expect((await jobOf(target, id)).steps.map((s) => [s.name, s.status])).toEqual([
      ["fetch", "pending"],
      ["build", "pending"],
      ["reload", "pending"],
    ]);
    const stored = await runInDurableObject(env.TARGET.getByName(target), (_, state) =>
      state.storage.sql.exec("SELECT timeout_ms, has_on_failure FROM jobs WHERE id = ?", id).one(),
    );
    expect(stored).toEqual({ timeout_ms: 5 * 60_000, has_on_failure: 0 });
    back.send({ type: "accepted", jobId: id });
    back.send(event(id, 1, { kind: "step-start", step: "build" }));
    expect((await back.next("ack")).seq).toBe(1);
    expect(back.pending().filter((m) => m.type === "error")).toEqual([]);
    back.close();
  });
});

describe("Target DO: hello after a reconnect", () => {
  it("resumes unfinished jobs on hello and marks running jobs the agent lost as interrupted", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    await agent.next("ack");
    await disconnected(target, agent);

    const back = await connectAgent(target, "web-1");
    back.send(hello("web-1", [pipeline()], [{ jobId: id, lastSeq: 3 }]));
    await back.next("welcome");
    expect(await back.next("resume")).toEqual({ type: "resume", jobId: id, ackedSeq: 1 });
    expect((await jobOf(target, id)).status).toBe("running");
    await disconnected(target, back);

    const amnesiac = await helloAgent(target, "web-1"); // unfinished: []
    await statusBecomes(target, id, "interrupted");
    const steps = (await jobOf(target, id)).steps;
    expect(steps.map((s) => s.status)).toEqual(["canceled", "skipped", "skipped", "skipped"]);
    expect(await (await api(`/api/targets/${target}/jobs/${id}/log`)).text()).toBe(
      "--- fetch\n--- [hookrelay] agent web-1 reconnected without this job (it did not list it unfinished): ended interrupted\n",
    );
    amnesiac.close();
  });

  it("tells an agent that comes back still running a stale-interrupted job to stop it, keeps it interrupted, and re-sends the next job after its end", async () => {
    const target = uniqueName();
    const { a, interrupted } = await interruptedWhileAway(target);
    const b = await pushJob(target, "c");

    const back = await connectAgent(target, "web-1");
    back.send(hello("web-1", undefined, [{ jobId: a, lastSeq: 1 }]));
    await back.next("welcome");
    expect(await back.next("resume")).toMatchObject({ jobId: a, ackedSeq: 1 });
    expect(await back.next("cancel")).toEqual({ type: "cancel", jobId: a });
    expect(await back.next("job")).toMatchObject({ jobId: b }); // the agent, busy with A, does not accept it yet
    const kept = await jobOf(target, a);
    expect({ status: kept.status, finishedAt: kept.finishedAt }).toEqual({ status: "interrupted", finishedAt: interrupted.finishedAt });
    expect(kept.steps.map((s) => s.status)).toEqual(["canceled", "skipped", "skipped", "skipped"]);

    back.send(event(a, 2, { kind: "step-end", step: "fetch", status: "canceled", exitCode: null }));
    back.send(event(a, 3, { kind: "job-end", status: "canceled" }));
    expect(await back.next("job")).toMatchObject({ jobId: b }); // re-sent once A's end is in
    expect((await jobOf(target, a)).status).toBe("interrupted");
    expect(await (await api(`/api/targets/${target}/jobs/${a}/log`)).text()).toBe(
      "--- fetch\n" +
        "--- [hookrelay] agent web-1 has been disconnected for more than 5 min: ended interrupted\n" +
        "--- [hookrelay] agent web-1 came back running this job after it was ended interrupted: told to stop; it stays interrupted and its deployment failed\n" +
        "--- fetch canceled (exit none)\n" +
        "--- [hookrelay] agent web-1 ended this job canceled after the worker had ended it interrupted: its steps show what ran there; the job stays interrupted\n" +
        "--- job canceled\n",
    );
    back.close();
  });
});

describe("Target DO: a job's late events", () => {
  it("shows the steps a job ended interrupted really ran when its agent comes back, and keeps it interrupted", async () => {
    const target = uniqueName();
    const { a, interrupted } = await interruptedWhileAway(target);
    expect(interrupted.steps.map((s) => s.status)).toEqual(["canceled", "skipped", "skipped", "skipped"]);

    // Cut off, not stopped: the agent ran every step and finished the job; it sends what it spooled.
    const back = await connectAgent(target, "web-1");
    back.send(hello("web-1", undefined, [{ jobId: a, lastSeq: 1 }]));
    await back.next("welcome");
    await back.next("resume");
    await back.next("cancel");
    const names = interrupted.steps.map((s) => s.name).slice(0, 3); // its steps; its on_failure step does not run
    let seq = 2;
    back.send(event(a, seq++, { kind: "step-end", step: names[0]!, status: "succeeded", exitCode: 0 }));
    for (const name of names.slice(1)) {
      back.send(event(a, seq++, { kind: "step-start", step: name }));
      back.send(event(a, seq++, { kind: "output", step: name, stream: "stdout", data: `${name} ran\n` }));
      back.send(event(a, seq++, { kind: "step-end", step: name, status: "succeeded", exitCode: 0 }));
    }
    back.send(event(a, seq, { kind: "job-end", status: "succeeded" }));
    await eventually("the job-end stored", async () => (await jobOf(target, a)).steps[2]?.status === "succeeded", 2000, 10);

    const after = await jobOf(target, a);
    // What the deployment and GitHub were told stays; what ran there is shown.
    expect({ status: after.status, startedAt: after.startedAt, finishedAt: after.finishedAt }).toEqual({
      status: "interrupted",
      startedAt: interrupted.startedAt,
      finishedAt: interrupted.finishedAt,
    });
    expect(after.steps.map((s) => [s.name, s.status, s.exitCode])).toEqual([...names.map((n) => [n, "succeeded", 0]), [interrupted.steps[3]!.name, "skipped", null]]);
    for (const s of after.steps.slice(0, 3)) expect(s.startedAt).not.toBeNull();
    const log = await (await api(`/api/targets/${target}/jobs/${a}/log`)).text();
    expect(log).toContain("--- [hookrelay] agent web-1 ended this job succeeded after the worker had ended it interrupted: its steps show what ran there; the job stays interrupted\n");
    for (const name of names.slice(1)) expect(log).toContain(`${name} ran\n`);
    back.close();
  });
});

describe("Target DO: accepted", () => {
  it("sends cancel when a job canceled on its way to the agent is accepted, and keeps it canceled", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await pushJob(target);
    await agent.next("job");
    const next = await pushJob(target, "c");
    const res = await api(`/api/targets/${target}/jobs/${id}/cancel`, { method: "POST" });
    expect(await res.json()).toEqual({ id, status: "canceled" });
    agent.send({ type: "accepted", jobId: id });
    expect(await agent.next("cancel")).toEqual({ type: "cancel", jobId: id });
    agent.send(event(id, 1, { kind: "job-end", status: "canceled" }));
    await agent.next("ack");
    expect(((await apiJson(`/api/targets/${target}/jobs/${id}`)) as JobView).status).toBe("canceled");
    expect((await agent.next("job")).jobId).toBe(next); // the agent is free again
    agent.close();
  });
});

describe("Target DO: peer text in the worker's log", () => {
  it("logs an agent's error frame with its control characters escaped, on one line", async () => {
    const warn = vi.spyOn(console, "warn");
    try {
      const agent = await helloAgent(uniqueName(), "web-1");
      agent.send({ type: "error", code: "x\ny", message: "fine\n[agent web-1] job succeeded\r\u001b[2K" });
      await eventually("the error frame logged", async () => warn.mock.calls.some((args) => String(args[0]).includes("reported error")), 2000, 10);
      const line = String(warn.mock.calls.find((args) => String(args[0]).includes("reported error"))![0]);
      expect(line).not.toMatch(/[\u0000-\u001f]/);
      expect(line).toBe('[agent web-1] reported error "x\\ny": "fine\\n[agent web-1] job succeeded\\r\\u001b[2K"');
      agent.close();
    } finally {
      warn.mockRestore();
    }
  });
});

describe("Target DO: protocol 3's binary output frames", () => {
  const logOf = async (target: string, id: string) => (await api(`/api/targets/${target}/jobs/${id}/log`)).text();
  const bytes = (...parts: (string | number[])[]) => new Uint8Array(parts.flatMap((p) => (typeof p === "string" ? [...new TextEncoder().encode(p)] : p)));
  const output = (jobId: string, seq: number, data: Uint8Array, step: string | null = "fetch") =>
    encodeOutputFrame({ jobId, seq, at: Date.now(), step, stream: "stdout" }, data);

  it("stores an output frame's bytes as they came (a BLOB), counts them as bytes, and the log reads them as text", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    expect((await agent.next("ack")).seq).toBe(1);
    // Whole characters per frame (as the agent cuts them), one not UTF-8 at all.
    const frames = [bytes("héllo "), bytes("✓ 😀\n"), bytes("bad ", [0xff, 0xfe], "\n"), bytes("\ufeffa BOM, kept\n")];
    for (const [i, data] of frames.entries()) {
      agent.ws.send(output(id, i + 2, data));
      expect((await agent.next("ack")).seq).toBe(i + 2);
    }
    // An empty one (no agent of ours sends it) is acked and not stored: no row, not even a line break before the next header.
    agent.ws.send(output(id, 6, new Uint8Array(0)));
    expect((await agent.next("ack")).seq).toBe(6);
    agent.send(event(id, 7, { kind: "step-end", step: "fetch", status: "succeeded", exitCode: 0 }));
    expect((await agent.next("ack")).seq).toBe(7);
    expect(await logOf(target, id)).toBe("--- fetch\nhéllo ✓ 😀\nbad \ufffd\ufffd\n\ufeffa BOM, kept\n--- fetch succeeded (exit 0)\n");
    // One step's raw output is the bytes as they came, those that are not UTF-8 included.
    const raw = new Uint8Array(await (await api(`/api/targets/${target}/jobs/${id}/log?step=fetch`)).arrayBuffer());
    expect([...raw]).toEqual(frames.flatMap((f) => [...f]));
    await runInDurableObject(env.TARGET.getByName(target), (_, state) => {
      const rows = state.storage.sql.exec<{ t: string; n: number }>("SELECT typeof(data) AS t, length(data) AS n FROM job_events WHERE job_id = ? AND kind = 'output' ORDER BY seq", id).toArray();
      expect(rows).toEqual(frames.map((f) => ({ t: "blob", n: f.length })));
      const job = state.storage.sql.exec<{ output_bytes: number }>("SELECT output_bytes FROM jobs WHERE id = ?", id).one();
      expect(job.output_bytes).toBe(frames.reduce((n, f) => n + f.length, 0));
    });
    agent.close();
  });

  it("refuses a malformed binary frame saying why, stores nothing, and keeps the connection", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    const good = output(id, 1, bytes("fine\n"), null);
    const headerOf = (h: object) => new TextEncoder().encode(JSON.stringify(h));
    const framed = (header: Uint8Array, data = bytes("x")) => new Uint8Array([OUTPUT_FRAME_TAG, header.length >> 8, header.length & 0xff, ...header, ...data]);
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array([0x7b, 0x7d]), /output tag/],
      [new Uint8Array([OUTPUT_FRAME_TAG, 0xff, 0xff, 1, 2, 3]), /header length/],
      [framed(new TextEncoder().encode("not json")), /header: frame is not JSON/],
      [framed(headerOf({ type: "event", jobId: id, seq: 1, at: 1, body: { kind: "step-start", step: "fetch", stream: "stdout" } })), /kind/],
      [framed(headerOf({ type: "event", jobId: "no such/id", seq: 1, at: 1, body: { kind: "output", step: null, stream: "stdout" } })), /jobId/],
      [framed(headerOf({ type: "event", jobId: id, seq: 1, at: 1, body: { kind: "output", step: null, stream: "stdin" } })), /stream/],
      [framed(headerOf({ type: "event", jobId: id, seq: 1, at: 1, body: { kind: "output", step: null, stream: "stdout" } }), new Uint8Array(MAX_FRAME_BYTES + 1)), /longer than/],
    ];
    for (const [frame, why] of cases) {
      agent.ws.send(frame);
      const error = await agent.next("error");
      expect(error.code).toBe("bad-frame");
      expect(error.message).toMatch(why);
    }
    expect(await logOf(target, id)).toBe("");
    agent.ws.send(good);
    expect((await agent.next("ack")).seq).toBe(1);
    expect(await logOf(target, id)).toBe("fine\n");
    agent.close();
  });

  it("refuses an agent of an older protocol with a message saying to upgrade it, and closes", async () => {
    const target = uniqueName();
    const agent = await connectAgent(target, "web-1");
    agent.send({ ...hello("web-1"), protocol: PROTOCOL_VERSION - 1 } as ReturnType<typeof hello>);
    const error = await agent.next("error");
    expect(error.code).toBe("unsupported-protocol");
    expect(error.message).toBe(`this worker speaks protocol ${PROTOCOL_VERSION} and agent web-1 speaks ${PROTOCOL_VERSION - 1} (version test-1): upgrade the agent to the release that matches this worker`);
    expect((await agent.closed()).code).toBe(4002);
    const { agents } = (await apiJson(`/api/targets/${target}/agents`)) as { agents: { name: string; connected: boolean }[] };
    expect(agents.find((a) => a.name === "web-1")?.connected).toBe(false);
  });
});

describe("Target DO: gates need protocol 4", () => {
  it("welcomes an agent whose pipelines declare gates in protocol 4, and refuses one past it saying to deploy the matching worker", async () => {
    const target = uniqueName();
    const agent = await connectAgent(target, "web-1");
    const gated = [pipeline({ waitFor: { workflows: ["CI"], checks: [], approval: false, timeoutMs: 3_600_000 } })];
    agent.send(hello("web-1", gated));
    expect(await agent.next("welcome")).toMatchObject({ protocol: GATES_PROTOCOL_VERSION });
    agent.close();
    const newer = await connectAgent(target, "web-2");
    newer.send({ ...hello("web-2", gated), protocol: GATES_PROTOCOL_VERSION + 1 } as ReturnType<typeof hello>);
    expect((await newer.next("error")).message).toBe(
      `this worker speaks protocol ${PROTOCOL_VERSION} and agent web-2 speaks ${GATES_PROTOCOL_VERSION + 1} (version test-1): deploy the worker that matches this agent`,
    );
    expect((await newer.closed()).code).toBe(4002);
  });
});

describe("Target DO: two sockets of one agent name", () => {
  /**
   * Delivers a frame to the DO as if it came on the socket of connection `connId` — one the DO has
   * already replaced: its hello was on the wire when the newer socket opened. Returns what the DO
   * answered on it.
   */
  async function frameOnReplacedSocket(target: string, connId: string, frame: string): Promise<{ sent: unknown[]; closed: number | null }> {
    return runInDurableObject(env.TARGET.getByName(target), async (instance, state) => {
      const { 0: client, 1: server } = new WebSocketPair();
      const sent: unknown[] = [];
      let closed: number | null = null;
      state.acceptWebSocket(server, ["web-1"]);
      server.serializeAttachment({ agent: "web-1", connId, connectedAt: Date.now() - 1000 });
      client.accept();
      client.addEventListener("message", (e) => sent.push(JSON.parse(String(e.data))));
      client.addEventListener("close", (e) => (closed = e.code));
      await instance.webSocketMessage(server, frame);
      await new Promise((r) => setTimeout(r, 50));
      return { sent, closed };
    });
  }

  const connIdOf = (target: string) =>
    runInDurableObject(env.TARGET.getByName(target), (_, state) => {
      const ids = state.getWebSockets("web-1").map((ws) => (ws.deserializeAttachment() as { connId: string }).connId);
      return ids[ids.length - 1]!;
    });

  // A restarted agent's new socket replaces the old one; the old one's hello can still arrive after
  // the new socket opened (or said hello). It must not make the replaced socket current again.
  it.each([
    ["an agent seen before, after the new socket's hello", true, true],
    ["an agent seen before, before the new socket's hello", true, false],
    ["an agent's first two connections, before the new socket's hello", false, false],
  ])("refuses a late hello on the replaced socket (%s), and the new socket stays live", async (_, seenBefore, newSaidHello) => {
    const target = uniqueName();
    if (seenBefore) {
      const first = await helloAgent(target, "web-1");
      first.close();
      await first.closed();
    }
    const old = await connectAgent(target, "web-1");
    const oldConnId = await connIdOf(target);
    const current = await connectAgent(target, "web-1");
    expect(await old.closed()).toMatchObject({ code: 4000 });
    if (newSaidHello) {
      current.send(hello("web-1"));
      await current.next("welcome");
    }
    const late = await frameOnReplacedSocket(target, oldConnId, JSON.stringify(hello("web-1")));
    expect(late.sent).toEqual([expect.objectContaining({ type: "error", code: "replaced" })]);
    expect(late.closed).toBe(4000);
    if (!newSaidHello) {
      current.send(hello("web-1"));
      await current.next("welcome");
    }

    // The real socket works: it gets its job and its accepted counts.
    const { body } = await push(target);
    const job = await current.next("job");
    expect(job.jobId).toBe(body.jobs[0]!.id);
    current.send({ type: "accepted", jobId: job.jobId });
    await statusBecomes(target, job.jobId, "running");
    expect(current.pending().filter((m) => m.type === "error")).toEqual([]);
    const { agents } = (await apiJson(`/api/targets/${target}/agents`)) as { agents: { name: string; connected: boolean }[] };
    expect(agents).toMatchObject([{ name: "web-1", connected: true }]);
    current.close();
  });
});

describe("Target DO: the hot path of a running job's frames", () => {
  it("stores and acks a running job's step-start, output and step-end without re-deriving the alarm; its job-end does", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    // Each time the shell re-derives the alarm it reads the current one first (alarm.ts scheduleAlarm).
    const reads = await runInDurableObject(env.TARGET.getByName(target), (_, state) => {
      const spy = vi.spyOn(state.storage, "getAlarm");
      return { count: () => spy.mock.calls.length };
    });
    const count = () => runInDurableObject(env.TARGET.getByName(target), () => reads.count());
    agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    agent.send(event(id, 2, { kind: "output", step: "fetch", stream: "stdout", data: "fetched\n" }));
    agent.send(event(id, 3, { kind: "step-end", step: "fetch", status: "succeeded", exitCode: 0 }));
    for (const seq of [1, 2, 3]) expect((await agent.next("ack")).seq).toBe(seq);
    expect(await count()).toBe(0);
    expect((await jobOf(target, id)).steps[0]).toMatchObject({ name: "fetch", status: "succeeded" });
    // The job's end moves its deadlines (and its deployment): that frame does re-derive the alarm.
    agent.send(event(id, 4, { kind: "job-end", status: "succeeded" }));
    expect((await agent.next("ack")).seq).toBe(4);
    await statusBecomes(target, id, "succeeded");
    expect(await count()).toBeGreaterThan(0);
    agent.close();
  });
});
