import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AgentMessage, GATES_PROTOCOL_VERSION, MAX_UNFINISHED, PROTOCOL_VERSION } from "../../shared/protocol.ts";
import { groupAlive } from "./process-group.ts";
import { eventually } from "../../dev/eventually.ts";
import { type FakeWorker, jobMessage, SHA_A, startFakeWorker } from "../../testing/fake-worker.ts";
import { startTcpProxy } from "../../testing/tcp-proxy.ts";
import { writeUnfinishedJobs } from "../../testing/spool-files.ts";
import { FAST_BACKOFF, startTestAgent, testDir, type TestAgent, type TestAgentOptions, TEST_TOKEN } from "../../testing/test-agent.ts";

let fake: FakeWorker;
const running: TestAgent[] = [];

beforeEach(async () => {
  fake = await startFakeWorker();
});
afterEach(async () => {
  for (const a of running.splice(0)) await a.stop();
  await fake.close();
});

async function agentWith(o: Omit<TestAgentOptions, "server"> & { server?: string }): Promise<TestAgent> {
  const a = await startTestAgent({ server: fake.url, ...o });
  running.push(a);
  return a;
}

const hello = () => eventually("hello", () => fake.latest()?.messages.find((m): m is Extract<AgentMessage, { type: "hello" }> => m.type === "hello"));
const jobEnd = (jobId: string, timeoutMs?: number) => eventually(`job-end of ${jobId}`, () => fake.jobEnd(jobId), timeoutMs);
const kinds = (jobId: string) => (fake.events.get(jobId) ?? []).map((e) => (e.body.kind === "step-end" ? `${e.body.step}:${e.body.status}` : e.body.kind === "step-start" ? `start:${e.body.step}` : e.body.kind));

describe("connecting", () => {
  it("sends its token in the Authorization header and declares its pipelines without their commands", async () => {
    const a = await agentWith({ steps: [{ name: "build", run: "echo SECRET_COMMAND" }], onFailure: [{ name: "undo", run: "echo SECRET_UNDO" }] });
    const h = await hello();
    const socket = fake.latest()!;
    expect(socket.headers.authorization).toBe(`Bearer ${TEST_TOKEN}`);
    expect(socket.url).toBe("/agent?target=default&agent=web-1");
    expect(h).toMatchObject({ protocol: PROTOCOL_VERSION, agent: "web-1", unfinished: [] });
    expect(h.pipelines).toEqual([{ name: "app", repo: "owner/app", events: ["push"], branches: ["main", "x*"], steps: ["build"], onFailure: ["undo"], timeoutMs: 1_800_000, rollout: { batch: 1, haltOnFailure: true } }]);
    expect(socket.raw.join("\n")).not.toContain("SECRET");
    await eventually("connected log line", () => a.lines.some((l) => l.startsWith("connected to ")));
  });

  it("says protocol 4 in hello when a pipeline declares gates (a worker that does not know them refuses it)", async () => {
    await agentWith({ pipeline: { wait_for: { workflows: ["CI"] } } });
    const h = await hello();
    expect(h.protocol).toBe(GATES_PROTOCOL_VERSION);
    expect(h.pipelines[0]!.waitFor).toEqual({ workflows: ["CI"], checks: [], approval: false, timeoutMs: 7_200_000 });
  });

  it("declares each pipeline's configured rollout in hello", async () => {
    await agentWith({ pipeline: { rollout: { batch: "50%", halt_on_failure: false } } });
    expect((await hello()).pipelines.map((p) => p.rollout)).toEqual([{ batch: "50%", haltOnFailure: false }]);
  });

  it("declares each pipeline's gates in hello, as the protocol's parser reads them; none when the config sets none", async () => {
    await agentWith({
      pipeline: { tags: ["v*"], paths_ignore: ["docs/**", "*.md"], wait_for: { workflows: ["CI"], checks: ["test (3.12)"], approval: true, timeout: "90m" } },
    });
    expect((await hello()).pipelines[0]).toMatchObject({
      tags: ["v*"], pathsIgnore: ["docs/**", "*.md"], waitFor: { workflows: ["CI"], checks: ["test (3.12)"], approval: true, timeoutMs: 5_400_000 },
    });
    expect("paths" in (await hello()).pipelines[0]!).toBe(false);
  });

  it("waits long after the worker rejects its token (HTTP 401) instead of retrying in a loop", async () => {
    fake.rejectWith = 401;
    const a = await agentWith({ backoff: { ...FAST_BACKOFF, longMs: 60_000 } });
    await eventually("the rejection to be logged", () => a.lines.some((l) => l.includes("token rejected by the worker")));
    // With the quick backoff (20–100 ms) a hot loop would make dozens of attempts in this time.
    await new Promise((r) => setTimeout(r, 1000));
    expect(fake.attempts).toBe(1);
  });

  it("retries quickly after other failures", async () => {
    fake.rejectWith = 503;
    await agentWith({});
    await eventually("several attempts", () => fake.attempts >= 3);
  });

  it("drops a connection on which the worker stopped answering and connects again", async () => {
    const a = await agentWith({ extra: { heartbeat: "150ms" } });
    await hello();
    fake.responsive = false;
    await eventually("a second connection", () => fake.sockets.length >= 2);
    expect(a.lines.some((l) => l.includes("no answer from the worker"))).toBe(true);
  });
});

describe("running jobs", () => {
  it("accepts a job, then sends its events in seq order, ending succeeded", async () => {
    const a = await agentWith({ steps: [{ name: "one", run: "echo first" }, { name: "two", run: "echo second >&2" }] });
    await hello();
    fake.latest()!.send(jobMessage("j1"));
    expect(await jobEnd("j1")).toEqual({ kind: "job-end", status: "succeeded" });
    expect(fake.accepted).toEqual(["j1"]);
    const socket = fake.latest()!;
    const acceptedAt = socket.messages.findIndex((m) => m.type === "accepted");
    const seqs = socket.messages.flatMap((m) => (m.type === "event" ? [m.seq] : []));
    expect(acceptedAt).toBeLessThan(socket.messages.findIndex((m) => m.type === "event"));
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(kinds("j1")).toEqual(["start:one", "output", "one:succeeded", "start:two", "output", "two:succeeded", "job-end"]);
    expect(fake.output("j1", "one")).toBe("first\n");
    expect(fake.events.get("j1")!.find((e) => e.body.kind === "output" && e.body.step === "two")?.body).toMatchObject({ stream: "stderr", data: "second\n" });
    await eventually("finished log line", () => a.lines.includes("[job j1] finished: succeeded"));
    expect(a.lines).toContain("[job j1] accepted (pipeline app)");
  });

  it("gives steps the push only as environment variables, never the agent token or its credentials directory, and never runs payload text", async () => {
    const a = await agentWith({
      env: { CREDENTIALS_DIRECTORY: "/run/credentials/hookrelay-agent.service" },
      pipeline: { env: { FROM_CONFIG: "yes" }, branches: ["x**"] }, // ** : the hostile branch name holds the marker's path
      steps: [
        {
          name: "show",
          run: 'for v in JOB_ID DELIVERY EVENT REPO REF BRANCH SHA BEFORE PUSHER; do n="HOOKRELAY_$v"; printf "%s=%s\\n" "$n" "${!n}"; done; echo "FROM_CONFIG=$FROM_CONFIG"; echo "token=${HOOKRELAY_AGENT_TOKEN-unset}"; echo "credentials=${CREDENTIALS_DIRECTORY-unset}"',
        },
      ],
    });
    await hello();
    const marker = join(a.dir, "pwned");
    const ref = `refs/heads/x$(touch ${marker})\`touch ${marker}\``;
    fake.latest()!.send(jobMessage("env1", { ref, pusher: "eve; touch " + marker }));
    expect(await jobEnd("env1")).toMatchObject({ status: "succeeded" });
    const out = fake.output("env1", "show");
    expect(out).toContain(`HOOKRELAY_JOB_ID=env1\nHOOKRELAY_DELIVERY=delivery-env1\nHOOKRELAY_EVENT=push\nHOOKRELAY_REPO=owner/app\n`);
    expect(out).toContain(`HOOKRELAY_REF=${ref}\nHOOKRELAY_BRANCH=${ref.slice("refs/heads/".length)}\nHOOKRELAY_SHA=${SHA_A}\n`);
    expect(out).toContain(`HOOKRELAY_PUSHER=eve; touch ${marker}\n`);
    expect(out).toContain("FROM_CONFIG=yes\n");
    expect(out).toContain("token=unset\n");
    expect(out).toContain("credentials=unset\n");
    expect(existsSync(marker)).toBe(false);
  });

  it("fails a job with an invalid sha or ref before anything runs", async () => {
    const a = await agentWith({ steps: [{ name: "touch", run: "touch ran" }] });
    await hello();
    fake.latest()!.send(jobMessage("bad1", { sha: "ABC" }));
    fake.latest()!.send(jobMessage("bad1")); // a re-send of the same id: answered, not run
    expect(await jobEnd("bad1")).toEqual({ kind: "job-end", status: "failed" });
    fake.latest()!.send(jobMessage("bad2", { ref: "refs/pull/1/merge", before: "0".repeat(40) }));
    expect(await jobEnd("bad2")).toEqual({ kind: "job-end", status: "failed" });
    fake.latest()!.send(jobMessage("bad3", { pipeline: "nope" }));
    expect(await jobEnd("bad3")).toEqual({ kind: "job-end", status: "failed" });
    expect(kinds("bad1")).toEqual(["output", "job-end"]);
    expect(fake.output("bad1", null)).toMatch(/not run: sha must be 40 or 64 lowercase hex digits/);
    expect(fake.output("bad2", null)).toMatch(/not run: ref must be refs\/heads\/<branch> or refs\/tags\/<tag>/);
    expect(fake.output("bad3", null)).toMatch(/not run: pipeline "nope" is not configured/);
    expect(existsSync(join(a.workdir, "ran"))).toBe(false);
  });

  it("runs a tag job only where the pipeline's own tags name it, with HOOKRELAY_TAG set and HOOKRELAY_BRANCH empty", async () => {
    const show = { name: "show", run: 'touch "ran-$HOOKRELAY_JOB_ID"; printf "ref=%s branch=[%s] tag=[%s]\\n" "$HOOKRELAY_REF" "$HOOKRELAY_BRANCH" "$HOOKRELAY_TAG"' };
    const a = await agentWith({ pipeline: { tags: ["v[0-9]+.*", "!v0.*"] }, steps: [show] });
    await hello();
    const socket = fake.latest()!;
    socket.send(jobMessage("tag1", { ref: "refs/tags/v1.2.0" }));
    expect(await jobEnd("tag1")).toMatchObject({ status: "succeeded" });
    expect(fake.output("tag1", "show")).toBe("ref=refs/tags/v1.2.0 branch=[] tag=[v1.2.0]\n");
    // A tag the config does not name (or excludes): refused before anything runs, as an unnamed branch is.
    for (const [id, tag] of [["tag2", "release-1"], ["tag3", "v0.9"]] as const) {
      socket.send(jobMessage(id, { ref: `refs/tags/${tag}` }));
      expect(await jobEnd(id)).toEqual({ kind: "job-end", status: "failed" });
      expect(kinds(id)).toEqual(["output", "job-end"]);
      expect(fake.output(id, null)).toBe(`[hookrelay] not run: tag "${tag}" does not match this pipeline's tags (configured: v[0-9]+.*, !v0.*)\n`);
      expect(existsSync(join(a.workdir, `ran-${id}`))).toBe(false);
    }
    // A branch job of the same pipeline: HOOKRELAY_TAG empty, even when the agent's own environment has one.
    socket.send(jobMessage("branch1"));
    expect(await jobEnd("branch1")).toMatchObject({ status: "succeeded" });
    expect(fake.output("branch1", "show")).toBe("ref=refs/heads/main branch=[main] tag=[]\n");
  });

  it("refuses every tag job of a pipeline without tags", async () => {
    const a = await agentWith({ env: { HOOKRELAY_TAG: "from-the-agent" }, steps: [{ name: "touch", run: 'touch ran; echo "tag=[$HOOKRELAY_TAG]"' }] });
    await hello();
    fake.latest()!.send(jobMessage("notag", { ref: "refs/tags/main" }));
    expect(await jobEnd("notag")).toEqual({ kind: "job-end", status: "failed" });
    expect(fake.output("notag", null)).toBe(`[hookrelay] not run: tag "main" does not match this pipeline's tags (configured: none: this pipeline deploys no tags)\n`);
    expect(existsSync(join(a.workdir, "ran"))).toBe(false);
    fake.latest()!.send(jobMessage("branch"));
    expect(await jobEnd("branch")).toMatchObject({ status: "succeeded" });
    expect(fake.output("branch", "touch")).toBe("tag=[]\n");
  });

  it("skips the remaining steps after a failing one and runs on_failure", async () => {
    await agentWith({
      steps: [{ name: "ok", run: "true" }, { name: "boom", run: "echo about to fail; false; echo not reached" }, { name: "later", run: "touch later" }],
      onFailure: [{ name: "rollback", run: 'echo "rolling back to $HOOKRELAY_BEFORE"' }],
    });
    await hello();
    fake.latest()!.send(jobMessage("f1"));
    expect(await jobEnd("f1")).toMatchObject({ status: "failed" });
    expect(kinds("f1")).toEqual(["start:ok", "ok:succeeded", "start:boom", "output", "boom:failed", "later:skipped", "start:rollback", "output", "rollback:succeeded", "job-end"]);
    expect(fake.events.get("f1")!.find((e) => e.body.kind === "step-end" && e.body.step === "boom")?.body).toMatchObject({ exitCode: 1 });
    expect(fake.output("f1", "boom")).toBe("about to fail\n");
    expect(fake.output("f1", "rollback")).toBe(`rolling back to ${"b".repeat(40)}\n`);
  });

  it("marks on_failure steps skipped when the job succeeds", async () => {
    await agentWith({ onFailure: [{ name: "rollback", run: "touch rolled" }] });
    await hello();
    fake.latest()!.send(jobMessage("s1"));
    expect(await jobEnd("s1")).toMatchObject({ status: "succeeded" });
    expect(kinds("s1")).toEqual(["start:hello", "output", "hello:succeeded", "rollback:skipped", "job-end"]);
  });

  it("answers a bad frame with error bad-frame and keeps working", async () => {
    await agentWith({});
    await hello();
    const socket = fake.latest()!;
    socket.send("not json");
    socket.send(JSON.stringify({ type: "job", jobId: "x" }));
    socket.send(JSON.stringify({ type: "launch-missiles" }));
    await eventually("three error answers", () => socket.messages.filter((m) => m.type === "error").length === 3);
    for (const m of socket.messages.filter((m) => m.type === "error")) expect(m).toMatchObject({ code: "bad-frame" });
    socket.send(jobMessage("after"));
    expect(await jobEnd("after")).toMatchObject({ status: "succeeded" });
  });

  it("never runs a job twice, however often the worker sends it", async () => {
    const a = await agentWith({ steps: [{ name: "count", run: "echo run >> count; sleep 0.2" }] });
    await hello();
    const socket = fake.latest()!;
    socket.send(jobMessage("dup"));
    socket.send(jobMessage("dup"));
    await jobEnd("dup");
    socket.send(jobMessage("dup"));
    await eventually("three accepted answers", () => fake.accepted.filter((id) => id === "dup").length >= 3);
    await new Promise((r) => setTimeout(r, 300));
    expect(readFileSync(join(a.workdir, "count"), "utf8")).toBe("run\n");
  });

  it("answers accepted only once the job is on disk: a job the spool could not write down is not accepted until it can be, then runs once", async () => {
    const a = await agentWith({ steps: [{ name: "count", run: "echo run >> count" }] });
    await hello();
    const acceptedFile = join(a.config.stateDir, "accepted");
    mkdirSync(acceptedFile); // the id cannot be written down (as on a full disk)
    const socket = fake.latest()!;
    const refusals = () => a.lines.filter((l) => l.startsWith("error: [job disk1] not accepted: spool: ")).length;
    socket.send(jobMessage("disk1"));
    await eventually("the failed write to be logged", () => refusals() === 1);
    socket.send(jobMessage("disk1")); // the worker re-sends until it hears accepted
    await eventually("the second failed write to be logged", () => refusals() === 2);
    expect(fake.accepted).toEqual([]);
    expect(fake.events.get("disk1")).toBeUndefined();
    rmdirSync(acceptedFile);
    socket.send(jobMessage("disk1"));
    expect(await jobEnd("disk1")).toEqual({ kind: "job-end", status: "succeeded" });
    expect(fake.accepted).toEqual(["disk1"]);
    expect(readFileSync(join(a.workdir, "count"), "utf8")).toBe("run\n");
  });

  it("does not accept a second job while one runs", async () => {
    const a = await agentWith({ steps: [{ name: "slow", run: "sleep 0.5" }] });
    await hello();
    fake.latest()!.send(jobMessage("first"));
    await eventually("first accepted", () => fake.accepted.includes("first"));
    fake.latest()!.send(jobMessage("second"));
    await jobEnd("first");
    await eventually("busy log line", () => a.lines.some((l) => l.includes("[job second] not accepted: busy with job first")));
    expect(fake.accepted).not.toContain("second");
  });

  it("cancels the running job: the step's processes stop, on_failure does not run", async () => {
    const a = await agentWith({ steps: [{ name: "long", run: "echo started; sleep 30" }], onFailure: [{ name: "rollback", run: "touch rolled" }] });
    await hello();
    fake.latest()!.send(jobMessage("c1"));
    await eventually("the step to start", () => fake.output("c1", "long").includes("started"));
    fake.latest()!.send({ type: "cancel", jobId: "c1" });
    expect(await jobEnd("c1")).toEqual({ kind: "job-end", status: "canceled" });
    expect(kinds("c1")).toEqual(["start:long", "output", "output", "long:canceled", "rollback:skipped", "output", "job-end"]);
    expect(existsSync(join(a.workdir, "rolled"))).toBe(false);
  });
});

describe("every accepted job ends", () => {
  it("fails a job whose payload values cannot be environment values, naming the field, before anything runs", async () => {
    const a = await agentWith({ steps: [{ name: "touch", run: "touch ran" }] });
    await hello();
    const cases = [
      ["nul", { pusher: "eve\u0000mallory" }, /not run: pusher contains a NUL character/],
      ["ctl", { pusher: "eve\u001b[2J" }, /not run: pusher contains the control character U\+001B/],
      ["sur", { pusher: "eve\ud800" }, /not run: pusher contains an unpaired surrogate \(U\+D800\)/],
      ["long", { pusher: "x".repeat(16 * 1024) }, /not run: pusher is 16384 bytes long, more than the 256 allowed/],
      ["dlv", { delivery: "d\u0007" }, /not run: delivery contains the control character U\+0007/],
    ] as const;
    for (const [id, fields, why] of cases) {
      fake.latest()!.send(jobMessage(id, fields));
      expect(await jobEnd(id)).toEqual({ kind: "job-end", status: "failed" });
      expect(kinds(id)).toEqual(["output", "job-end"]);
      expect(fake.output(id, null)).toMatch(why);
    }
    expect(existsSync(join(a.workdir, "ran"))).toBe(false);
  });

  it("ends a job whose step cannot be started (a NUL in its command) failed, saying why, and runs the next job", async () => {
    await agentWith({
      steps: [{ name: "touch", run: "touch ran" }],
      // No config file can hold this any more; a config object can.
      adjust: (c) => void c.pipelines.push({ ...c.pipelines[0]!, name: "broken", steps: [{ name: "nul", run: "echo a\u0000b", timeoutMs: null }] }),
    });
    await hello();
    fake.latest()!.send(jobMessage("spawn1", { pipeline: "broken" }));
    expect(await jobEnd("spawn1")).toEqual({ kind: "job-end", status: "failed" });
    expect(kinds("spawn1")).toEqual(["start:nul", "output", "nul:failed", "job-end"]);
    expect(fake.output("spawn1", "nul")).toMatch(/\[hookrelay\] could not start bash: .*null bytes/);
    fake.latest()!.send(jobMessage("spawn2"));
    expect(await jobEnd("spawn2")).toEqual({ kind: "job-end", status: "succeeded" });
  });

  it("never hands a step an environment value spawn refuses: the job ends failed naming the variable", async () => {
    const a = await agentWith({
      steps: [{ name: "touch", run: "touch ran" }],
      adjust: (c) => void c.pipelines.push({ ...c.pipelines[0]!, name: "broken", env: { BAD: "a\u0000b" } }),
    });
    await hello();
    fake.latest()!.send(jobMessage("env1", { pipeline: "broken" }));
    expect(await jobEnd("env1")).toEqual({ kind: "job-end", status: "failed" });
    expect(kinds("env1")).toEqual(["output", "job-end"]);
    expect(fake.output("env1", null)).toMatch(/\[hookrelay\] not run: environment variable BAD contains a NUL character/);
    expect(existsSync(join(a.workdir, "ran"))).toBe(false);
    fake.latest()!.send(jobMessage("env2"));
    expect(await jobEnd("env2")).toEqual({ kind: "job-end", status: "succeeded" });
  });

  it("stops the step and frees itself when the spool cannot keep a job's events, runs the next job, and ends the first once its events can be written again", async () => {
    const a = await agentWith({ steps: [{ name: "loud", run: 'if [ "$HOOKRELAY_JOB_ID" = full1 ]; then echo $$ > step.pid; (head -c 6000000 /dev/zero | tr "\\0" x) || true; sleep 600; fi' }] });
    await hello();
    // Every segment after the first is a directory: once the first is full (4 MiB), no event of this job can be written.
    const jobDir = join(a.config.stateDir, "jobs", "full1");
    for (let seq = 2; seq <= 1000; seq++) mkdirSync(join(jobDir, `events-${seq}.frames`), { recursive: true });
    fake.latest()!.send(jobMessage("full1"));
    await eventually("the failure to be logged", () => a.lines.some((l) => l.startsWith("error: [job full1] the agent failed while running this job: ")), 30_000);
    await eventually("the job-end failure to be logged", () => a.lines.some((l) => l.startsWith("error: [job full1] could not spool the job's end")));
    const stepPid = Number(readFileSync(join(a.workdir, "step.pid"), "utf8"));
    await eventually("the step's processes to be gone", () => !groupAlive(stepPid));
    fake.latest()!.send(jobMessage("full2"));
    expect(await jobEnd("full2")).toEqual({ kind: "job-end", status: "succeeded" });
    // The worker still thinks full1 runs. Once its events can be written again (a full disk freed), the
    // agent writes the end it could not before, without waiting for a cancel or a restart.
    expect(fake.jobEnd("full1")).toBeUndefined();
    for (let seq = 2; seq <= 1000; seq++) rmdirSync(join(jobDir, `events-${seq}.frames`));
    expect(await jobEnd("full1")).toEqual({ kind: "job-end", status: "failed" });
    await eventually("the late end to be logged", () => a.lines.some((l) => l === "[job full1] its end is spooled at last: finished: failed"));
  });
});

describe("cancel", () => {
  it("ends a job canceled while it is being accepted: nothing runs, and the next job does", async () => {
    const a = await agentWith({ steps: [{ name: "touch", run: "touch ran" }] });
    await hello();
    const socket = fake.latest()!;
    // Back to back: the cancel arrives while the job's id is being written down.
    socket.send(jobMessage("early1"));
    socket.send({ type: "cancel", jobId: "early1" });
    expect(await jobEnd("early1")).toEqual({ kind: "job-end", status: "canceled" });
    expect(fake.accepted).toEqual(["early1"]);
    expect(kinds("early1")).toEqual(["output", "job-end"]);
    expect(fake.output("early1", null)).toBe("[hookrelay] job canceled by the worker before it started; nothing ran\n");
    expect(existsSync(join(a.workdir, "ran"))).toBe(false);
    socket.send(jobMessage("early2"));
    expect(await jobEnd("early2")).toEqual({ kind: "job-end", status: "succeeded" });
  });

  it("answers a cancel for a job that already ended here by sending its spooled events again, so the worker learns the end", async () => {
    const a = await agentWith({ extra: { heartbeat: "60s" }, steps: [{ name: "wait", run: "for i in $(seq 1 300); do [ -e go ] && break; sleep 0.05; done; echo went" }] });
    await hello();
    fake.latest()!.send(jobMessage("done1"));
    await eventually("accepted", () => fake.accepted.includes("done1"));
    // The worker hears nothing more of this job (frames lost on the way) while it finishes here.
    fake.responsive = false;
    writeFileSync(join(a.workdir, "go"), "");
    await eventually("the job to finish here", () => a.lines.includes("[job done1] finished: succeeded"));
    fake.responsive = true;
    expect(fake.jobEnd("done1")).toBeUndefined();
    fake.latest()!.send({ type: "cancel", jobId: "done1" });
    expect(await jobEnd("done1")).toEqual({ kind: "job-end", status: "succeeded" });
    expect(kinds("done1")).toEqual(["start:wait", "output", "wait:succeeded", "job-end"]);
    expect(fake.output("done1", "wait")).toBe("went\n");
    expect(a.lines.some((l) => l.startsWith("[job done1] cancel: the job already ended here"))).toBe(true);
  });

  it("answers a cancel for a job it never accepted with error unknown-job", async () => {
    await agentWith({});
    await hello();
    const socket = fake.latest()!;
    socket.send({ type: "cancel", jobId: "ghost" });
    expect(await eventually("the error answer", () => socket.messages.find((m) => m.type === "error"))).toEqual({
      type: "error",
      code: "unknown-job",
      message: "cancel for job ghost: not accepted by this agent",
    });
  });
});

describe("delivery across reconnects", () => {
  it("lets a loud step finish while the worker reads nothing, then delivers every event in order", async () => {
    // A proxy that can stop reading from the agent: TCP back-pressure builds up on the agent's side.
    const proxy = await startTcpProxy(Number(new URL(fake.url).port));
    try {
      // 40 MB: far more than loopback's socket buffers absorb, and all of it under the cap.
      const a = await agentWith({ server: proxy.url.replace("http", "ws"), extra: { log_cap: "64MiB", heartbeat: "60s" }, steps: [{ name: "loud", run: "head -c 40000000 /dev/zero | tr '\\0' x; touch finished" }] });
      await hello();
      proxy.pauseReading();
      fake.latest()!.send(jobMessage("slow-reader"));
      await eventually("the step to finish while nothing is read", () => existsSync(join(a.workdir, "finished")), 20_000);
      await eventually("the step-end line", () => a.lines.includes("[job slow-reader] step loud succeeded (exit 0)"), 20_000);
      expect(fake.jobEnd("slow-reader")).toBeUndefined();
      proxy.resumeReading();
      expect(await jobEnd("slow-reader", 30_000)).toMatchObject({ status: "succeeded" });
      const events = fake.events.get("slow-reader")!;
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(fake.output("slow-reader", "loud")).toBe("x".repeat(40_000_000));
    } finally {
      await proxy.close();
    }
  });

  it("stays of use with more than 1000 unfinished jobs in its spool: hello lists the newest 1000, it is welcomed and runs a new job", async () => {
    const dir = testDir();
    const ids = writeUnfinishedJobs(join(dir, "state"), MAX_UNFINISHED + 5);
    const a = await agentWith({ dir });
    const h = await hello();
    expect(h.unfinished.map((u) => u.jobId)).toEqual(ids.slice(5));
    expect(fake.invalid).toEqual([]);
    await eventually("welcomed", () => a.lines.some((l) => l.startsWith("welcomed by the worker")));
    for (const id of ids.slice(0, 5)) expect(a.lines).toContain(`warning: [job ${id}] dropped from the spool before the worker acknowledged it: more than ${MAX_UNFINISHED} unfinished jobs; its log on the worker may be incomplete`);
    fake.latest()!.send(jobMessage("fresh1"));
    expect(await jobEnd("fresh1", 30_000)).toEqual({ kind: "job-end", status: "succeeded" });
    expect(fake.jobEnd(ids.at(-1)!)).toEqual({ kind: "job-end", status: "succeeded" });
  });

  it("re-sends events the worker did not store from ackedSeq + 1 after reconnecting", async () => {
    const a = await agentWith({ steps: [{ name: "count", run: "for i in $(seq 1 40); do echo line $i; sleep 0.02; done" }] });
    await hello();
    fake.latest()!.send(jobMessage("r1"));
    await eventually("some events stored", () => (fake.events.get("r1")?.length ?? 0) >= 3);
    // Events in flight are lost: the worker stops storing and acking, then the connection drops.
    fake.responsive = false;
    await new Promise((r) => setTimeout(r, 150));
    const stored = fake.ackedSeq("r1");
    fake.latest()!.ws.terminate();
    fake.responsive = true;
    expect(await jobEnd("r1")).toMatchObject({ status: "succeeded" });
    const events = fake.events.get("r1")!;
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(fake.output("r1", "count")).toBe(Array.from({ length: 40 }, (_, i) => `line ${i + 1}\n`).join(""));
    const second = fake.sockets[1]!;
    const h = second.messages.find((m) => m.type === "hello");
    expect(h).toMatchObject({ unfinished: [{ jobId: "r1" }] });
    expect(second.messages.find((m) => m.type === "event")).toMatchObject({ seq: stored + 1 });
    await eventually("the job's spool to be removed once job-end is acked", () => !existsSync(join(a.config.stateDir, "jobs", "r1")));
  });
});

// A job frame is only a request: the agent's own config decides whether it may run (issue 8).
describe("a job the config does not allow", () => {
  const refused = async (jobId: string, frame: Parameters<typeof jobMessage>[1], pipeline: Record<string, unknown> = {}) => {
    const a = await agentWith({ pipeline, steps: [{ name: "touch", run: "touch ran" }] });
    await hello();
    fake.latest()!.send(jobMessage(jobId, frame));
    expect(await jobEnd(jobId)).toEqual({ kind: "job-end", status: "failed" });
    expect(fake.accepted).toContain(jobId);
    expect(kinds(jobId).filter((k) => k !== "output")).toEqual(["job-end"]); // no step-start: nothing ran
    expect(existsSync(join(a.workdir, "ran"))).toBe(false);
    return fake.output(jobId, null);
  };

  it("is refused when the repo is not the pipeline's, naming both", async () => {
    expect(await refused("r1", { repo: "attacker/other" })).toMatch(/not run: repo "attacker\/other" is not this pipeline's repo \(configured: owner\/app/);
  });

  it("is refused when the event is not in the pipeline's events", async () => {
    expect(await refused("e1", { event: "release" })).toMatch(/not run: event "release" is not in this pipeline's events \(configured: push\)/);
  });

  it("is refused when the branch matches none of the pipeline's branches", async () => {
    expect(await refused("b1", { ref: "refs/heads/unreviewed-branch" })).toMatch(/not run: branch "unreviewed-branch" does not match this pipeline's branches \(configured: main, x\*\)/);
  });

  it("is refused when a later ! pattern excludes the branch", async () => {
    const out = await refused("n1", { ref: "refs/heads/release/1.2-alpha" }, { branches: ["release/**", "!release/**-alpha"] });
    expect(out).toMatch(/not run: branch "release\/1.2-alpha" does not match this pipeline's branches \(configured: release\/\*\*, !release\/\*\*-alpha\)/);
  });

  it("names every mismatch at once", async () => {
    const out = await refused("all1", { repo: "attacker/other", event: "release", ref: "refs/heads/unreviewed-branch" });
    expect(out.split("\n").filter((l) => l.includes("not run:"))).toHaveLength(3);
  });

  it("runs when the repo differs only in case (GitHub's names are case-insensitive) and a ! pattern leaves the branch in", async () => {
    await agentWith({ pipeline: { branches: ["release/**", "!release/**-alpha"] }, steps: [{ name: "touch", run: "touch ran" }] });
    await hello();
    fake.latest()!.send(jobMessage("ok1", { repo: "Owner/App", ref: "refs/heads/release/1.2" }));
    expect(await jobEnd("ok1")).toEqual({ kind: "job-end", status: "succeeded" });
    expect(kinds("ok1")).toEqual(["start:touch", "touch:succeeded", "job-end"]);
  });
});

// A compromised worker must not forge the agent's log lines (issue 8).
describe("peer text in the agent's log", () => {
  const forged = "\n[job x] finished: succeeded";

  it("logs a worker's error frame as one line, its newline escaped", async () => {
    const a = await agentWith({});
    await hello();
    fake.latest()!.send({ type: "error", code: "oops\r", message: `bad${forged}` });
    const line = await eventually("the error's log line", () => a.lines.find((l) => l.includes("the worker reported an error")));
    expect(line).toBe("warning: the worker reported an error: oops\\r: bad\\n[job x] finished: succeeded");
    expect(a.lines.filter((l) => l.includes("finished: succeeded"))).toEqual([line]);
  });

  it("escapes control characters of a frame that does not parse", async () => {
    const a = await agentWith({});
    await hello();
    fake.latest()!.send(`{"type":"job\u0085[job x] finished: succeeded"}`);
    const line = await eventually("the bad frame's log line", () => a.lines.find((l) => l.includes("bad frame from the worker")));
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(line).toContain("\\u0085[job x]");
  });

  it("escapes the worker's close reason", async () => {
    const a = await agentWith({});
    await hello();
    fake.latest()!.ws.close(4001, `bye${forged}`);
    const line = await eventually("the close's log line", () => a.lines.find((l) => l.includes("disconnected (code 4001")));
    expect(line).toContain("bye\\n[job x] finished: succeeded");
    expect(line).not.toContain("\n");
  });
});

describe("stopping", () => {
  it("waits at most its 3 s for acks however the wall clock moves: a clock stepped back an hour mid-wait does not hold the stop", async () => {
    const a = await agentWith({ steps: [{ name: "one", run: "echo first" }] });
    await hello();
    fake.acking = false; // nothing is ever acked: the stop's wait for acks can only end at its limit
    fake.latest()!.send(jobMessage("j1"));
    await eventually("job-end sent", () => fake.jobEnd("j1"));
    const realNow = Date.now;
    const stopping = a.agent.stop();
    running.splice(running.indexOf(a), 1);
    await new Promise((r) => setTimeout(r, 200));
    Date.now = () => realNow() - 3_600_000; // an NTP step back, while the stop waits for acks
    try {
      const outcome = await Promise.race([stopping.then(() => "stopped"), new Promise((r) => setTimeout(r, 15_000, "still waiting"))]);
      expect(outcome).toBe("stopped");
    } finally {
      Date.now = realNow;
      await stopping;
    }
  }, 30_000);
});
