import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../../dev/eventually.ts";
import { type FakeWorker, jobMessage, startFakeWorker } from "../../testing/fake-worker.ts";
import { startTestAgent, type TestAgent, type TestAgentOptions } from "../../testing/test-agent.ts";

let fake: FakeWorker;
const running: TestAgent[] = [];
const strays: number[] = [];

beforeEach(async () => {
  fake = await startFakeWorker();
});
afterEach(async () => {
  for (const a of running.splice(0)) await a.stop();
  await fake.close();
  for (const pid of strays.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone, as it should be
    }
  }
});

async function agentWith(o: Omit<TestAgentOptions, "server">): Promise<TestAgent> {
  const a = await startTestAgent({ server: fake.url, ...o });
  running.push(a);
  await eventually("hello", () => fake.latest()?.messages.some((m) => m.type === "hello"));
  return a;
}

/** Alive and not a zombie (a reaped-later zombie is dead for our purpose). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

function grandchildPid(a: TestAgent): number {
  const pid = Number(readFileSync(join(a.workdir, "grandchild.pid"), "utf8"));
  strays.push(pid);
  return pid;
}

// bash ignores TERM, and so does the background sleep it starts (ignored signals are inherited).
const STUBBORN = "trap '' TERM; sleep 60 & echo $! > grandchild.pid; echo started; wait";

const stepEnd = (jobId: string, step: string) =>
  fake.events.get(jobId)?.find((e) => e.body.kind === "step-end" && e.body.step === step)?.body;

describe("process groups", () => {
  it("kills the whole group, grandchildren included, when a step times out, then runs on_failure", async () => {
    const a = await agentWith({
      steps: [{ name: "stuck", run: STUBBORN, timeout: "300ms" }, { name: "after", run: "touch after" }],
      onFailure: [{ name: "rollback", run: "echo rolled back" }],
      extra: { kill_grace: "200ms" },
    });
    fake.latest()!.send(jobMessage("t1"));
    expect(await eventually("job-end", () => fake.jobEnd("t1"))).toEqual({ kind: "job-end", status: "timed_out" });
    const pid = grandchildPid(a);
    expect(alive(pid)).toBe(false);
    expect(stepEnd("t1", "stuck")).toMatchObject({ status: "timed_out", exitCode: null });
    expect(stepEnd("t1", "after")).toMatchObject({ status: "skipped" });
    expect(fake.output("t1", "stuck")).toMatch(/\[hookrelay\] step stuck timed out after 300ms: SIGTERM to the step's processes, SIGKILL after 200ms/);
    expect(fake.output("t1", "rollback")).toBe("rolled back\n");
    expect(existsSync(join(a.workdir, "after"))).toBe(false);
  });

  it("enforces the pipeline's whole-job timeout across steps", async () => {
    const a = await agentWith({
      pipeline: { timeout: "400ms" },
      steps: [{ name: "quick", run: "true" }, { name: "slow", run: "sleep 60 & echo $! > grandchild.pid; wait" }],
      onFailure: [{ name: "rollback", run: "echo rolled back" }],
    });
    fake.latest()!.send(jobMessage("t2"));
    expect(await eventually("job-end", () => fake.jobEnd("t2"))).toMatchObject({ status: "timed_out" });
    expect(alive(grandchildPid(a))).toBe(false);
    expect(stepEnd("t2", "quick")).toMatchObject({ status: "succeeded" });
    expect(stepEnd("t2", "slow")).toMatchObject({ status: "timed_out" });
    expect(fake.output("t2", "slow")).toMatch(/job timed out after 400ms/);
    expect(fake.output("t2", "rollback")).toBe("rolled back\n");
  });

  it("sends SIGTERM first, so a step that handles it ends cleanly within the grace", async () => {
    await agentWith({ steps: [{ name: "polite", run: "trap 'echo got TERM; exit 0' TERM; echo started; sleep 60 & wait", timeout: "200ms" }], extra: { kill_grace: "20s" } });
    fake.latest()!.send(jobMessage("t3"));
    expect(await eventually("job-end", () => fake.jobEnd("t3"))).toMatchObject({ status: "timed_out" });
    expect(fake.output("t3", "polite")).toContain("got TERM\n");
    // Exit code 0 from the trap does not make a timed-out step a success.
    expect(stepEnd("t3", "polite")).toMatchObject({ status: "timed_out", exitCode: 0 });
  });

  it("SIGKILLs a step that ignores SIGTERM once the grace is over", async () => {
    const a = await agentWith({ steps: [{ name: "stubborn", run: STUBBORN }], extra: { kill_grace: "300ms" } });
    fake.latest()!.send(jobMessage("t4"));
    await eventually("the step to start", () => fake.output("t4", "stubborn").includes("started"));
    const pid = grandchildPid(a);
    fake.latest()!.send({ type: "cancel", jobId: "t4" });
    expect(await eventually("job-end", () => fake.jobEnd("t4"))).toEqual({ kind: "job-end", status: "canceled" });
    expect(alive(pid)).toBe(false);
    expect(stepEnd("t4", "stubborn")).toMatchObject({ status: "canceled", exitCode: null });
  });

  it("finishes a step when bash exits even if a background process still holds its output", async () => {
    const a = await agentWith({ steps: [{ name: "bg", run: "sleep 30 & echo $! > grandchild.pid; echo done" }, { name: "next", run: "echo next" }] });
    fake.latest()!.send(jobMessage("t5"));
    expect(await eventually("job-end", () => fake.jobEnd("t5"))).toMatchObject({ status: "succeeded" });
    expect(fake.output("t5", "bg")).toBe("done\n");
    expect(fake.output("t5", "next")).toBe("next\n");
    grandchildPid(a); // killed in afterEach
  });

  it("fails a step whose workdir vanished, with a line saying so", async () => {
    const a = await agentWith({});
    const { rmSync } = await import("node:fs");
    rmSync(a.workdir, { recursive: true });
    fake.latest()!.send(jobMessage("t6"));
    expect(await eventually("job-end", () => fake.jobEnd("t6"))).toMatchObject({ status: "failed" });
    expect(fake.output("t6", null)).toMatch(/workdir .* does not exist/);
  });
});
