import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, appendFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type JobEventBody, MAX_UNFINISHED } from "../../shared/protocol.ts";
import { memoryLogger } from "../common/logger.ts";
import { readFrame } from "./job-log.ts";
import { Spool } from "./spool.ts";
import { eventually } from "../../dev/eventually.ts";
import { type LockRacer, startLockRacer } from "../../testing/lock-racer.ts";
import { writeUnfinishedJobs } from "../../testing/spool-files.ts";
import { testDir } from "../../testing/test-agent.ts";

const line = (data: string): JobEventBody => ({ kind: "output", step: "s", stream: "stdout", data });

/** Half a record, as a crash mid-append leaves it: a length, and fewer bytes than it says. */
const tornRecord = () => Buffer.concat([Buffer.from([0, 0, 0, 200]), Buffer.from('{"type":"event","jobId":"j","se')]);
const bodyOf = (frame: string | Uint8Array) => readFrame(frame)!.event.body;
const textOf = (body: JobEventBody) => (body.kind === "output" ? Buffer.from(body.data).toString("utf8") : null);

/** A frame of job "j" as an agent before protocol 3 spooled it: JSON, one a line. */
const oldFrame = (seq: number, body: JobEventBody) => JSON.stringify({ type: "event", jobId: "j", seq, at: 1, body });

/** A state_dir such an agent left: job "j" accepted, `events-1.log` holding `lines`. */
function olderAgentStateDir(lines: string): string {
  const dir = testDir();
  mkdirSync(join(dir, "jobs", "j"), { recursive: true });
  writeFileSync(join(dir, "accepted"), "j\n");
  writeFileSync(join(dir, "jobs", "j", "events-1.log"), lines);
  return dir;
}

async function collect(spool: Spool, jobId: string, from: number, to = Infinity): Promise<number[]> {
  const seqs: number[] = [];
  for await (const f of spool.read(jobId, from, to)) seqs.push(f.seq);
  return seqs;
}

describe("spool", () => {
  it("remembers accepted jobs across a restart", async () => {
    const dir = testDir();
    const a = await Spool.open(dir, memoryLogger());
    await a.accept("job-1");
    expect(readFileSync(join(dir, "accepted"), "utf8")).toBe("job-1\n");
    await a.close();
    const b = await Spool.open(dir, memoryLogger());
    expect(b.isAccepted("job-1")).toBe(true);
    expect(b.isAccepted("job-2")).toBe(false);
    await b.close();
  });

  it("counts a job accepted only once its id is on disk: a failed write leaves no trace, a later try succeeds", async () => {
    const dir = testDir();
    const log = memoryLogger();
    const spool = await Spool.open(dir, log);
    mkdirSync(join(dir, "accepted")); // the id cannot be written down (as on a full disk)
    await expect(spool.accept("j1")).rejects.toThrow(/EISDIR/);
    expect(spool.isAccepted("j1")).toBe(false);
    expect(spool.hasJob("j1")).toBe(false);
    expect(spool.unfinished()).toEqual([]);
    expect(existsSync(join(dir, "jobs", "j1"))).toBe(false);
    await expect(spool.accept("j1")).rejects.toThrow(/EISDIR/);
    expect(spool.isAccepted("j1")).toBe(false);
    rmdirSync(join(dir, "accepted"));
    // The job's directory cannot be made.
    writeFileSync(join(dir, "jobs", "j2"), "");
    await expect(spool.accept("j2")).rejects.toThrow();
    expect(spool.isAccepted("j2")).toBe(false);
    await spool.accept("j1");
    expect(spool.isAccepted("j1")).toBe(true);
    expect(spool.unfinished()).toEqual([{ jobId: "j1", lastSeq: 0 }]);
    await spool.close();
    expect(readFileSync(join(dir, "accepted"), "utf8")).toBe("j1\n");
    const again = await Spool.open(dir, memoryLogger());
    expect(again.isAccepted("j1")).toBe(true);
    expect(again.isAccepted("j2")).toBe(false);
    await again.close();
  });

  it("writes an output frame into a buffer given back by release, and never into one not given back", async () => {
    const spool = await Spool.open(testDir(), memoryLogger());
    await spool.accept("j");
    const out = (fill: number) => ({ kind: "output", step: "s", stream: "stdout", data: Buffer.alloc(30_000, fill) }) as JobEventBody;
    const first = await spool.append("j", out(0x61));
    const kept = await spool.append("j", out(0x62));
    const keptCopy = Buffer.from(kept.frame as Uint8Array);
    first.release!();
    first.release!(); // twice: given back once
    const third = await spool.append("j", out(0x63));
    const fourth = await spool.append("j", out(0x64));
    // The third reuses the first's buffer; the fourth gets a new one (given back once only); the kept one is as it was.
    expect((third.frame as Uint8Array).buffer).toBe((first.frame as Uint8Array).buffer);
    expect((fourth.frame as Uint8Array).buffer).not.toBe((first.frame as Uint8Array).buffer);
    expect(Buffer.from(kept.frame as Uint8Array).equals(keptCopy)).toBe(true);
    // What was written to disk is each event's own bytes.
    const read: string[] = [];
    for await (const f of spool.read("j", 1, 4)) read.push(textOf(bodyOf(f.frame))!.slice(0, 1) + textOf(bodyOf(f.frame))!.length);
    expect(read).toEqual(["a30000", "b30000", "c30000", "d30000"]);
    await spool.close();
  });

  it("numbers events from 1, reads them back from any seq across segments, and drops acked segments", async () => {
    const dir = testDir();
    const spool = await Spool.open(dir, memoryLogger(), { segmentBytes: 300 });
    await spool.accept("j");
    for (let i = 1; i <= 20; i++) expect((await spool.append("j", line(`event ${i}\n`))).seq).toBe(i);
    const jobDir = join(dir, "jobs", "j");
    const segments = () => readdirSync(jobDir).filter((f) => f.startsWith("events-"));
    expect(segments().length).toBeGreaterThan(3);
    expect(await collect(spool, "j", 7)).toEqual(Array.from({ length: 14 }, (_, i) => i + 7));
    expect(await collect(spool, "j", 3, 5)).toEqual([3, 4, 5]);
    const before = segments().length;
    await spool.ack("j", 15);
    expect(segments().length).toBeLessThan(before);
    expect(await collect(spool, "j", 16)).toEqual([16, 17, 18, 19, 20]);
    expect(spool.unfinished()).toEqual([{ jobId: "j", lastSeq: 20 }]);
    await spool.append("j", { kind: "job-end", status: "succeeded" });
    await spool.ack("j", 21);
    expect(existsSync(jobDir)).toBe(false);
    expect(spool.unfinished()).toEqual([]);
    expect(spool.isAccepted("j")).toBe(true);
    await spool.close();
  });

  it("ends a job left unfinished by a previous run as interrupted, once, and cuts a torn last line", async () => {
    const dir = testDir();
    const a = await Spool.open(dir, memoryLogger());
    await a.accept("j");
    await a.append("j", { kind: "step-start", step: "s" });
    await a.append("j", line("partial output\n"));
    // Simulate a crash: no close (no unlock either), and half a record at the end of the log.
    appendFileSync(join(dir, "jobs", "j", "events-1.frames"), tornRecord());
    await a.close();
    writeFileSync(join(dir, "agent.lock"), "999999999\n"); // what a dead agent leaves

    const b = await Spool.open(dir, memoryLogger());
    expect(b.unfinished()).toEqual([{ jobId: "j", lastSeq: 2 }]);
    expect(await b.recoverInterrupted()).toEqual(["j"]);
    const frames: (string | Uint8Array)[] = [];
    for await (const f of b.read("j", 1, Infinity)) frames.push(f.frame);
    expect(frames.map((f) => bodyOf(f).kind)).toEqual(["step-start", "output", "output", "job-end"]);
    // Output as binary frames, the rest as JSON text.
    expect(frames.map((f) => typeof f)).toEqual(["string", "object", "object", "string"]);
    expect(textOf(bodyOf(frames[1]!))).toBe("partial output\n");
    expect(bodyOf(frames[2]!)).toMatchObject({ step: null });
    expect(textOf(bodyOf(frames[2]!))).toMatch(/agent stopped while this job was running/);
    expect(bodyOf(frames[3]!)).toEqual({ kind: "job-end", status: "interrupted" });
    await b.close();

    const c = await Spool.open(dir, memoryLogger());
    expect(await c.recoverInterrupted()).toEqual([]);
    expect(c.unfinished()).toEqual([{ jobId: "j", lastSeq: 4 }]);
    await c.close();
  });

  it("reads and re-sends what an agent before protocol 3 spooled (a JSON frame a line), then spools on in records", async () => {
    // The old agent was stopped mid-line (its last line torn), its worker having acked nothing.
    const dir = olderAgentStateDir(`${oldFrame(1, { kind: "step-start", step: "s" })}\n${oldFrame(2, line("old output ✓\n"))}\n{"type":"event","jobId":"j","seq":3,"at"`);
    const spool = await Spool.open(dir, memoryLogger());
    expect(spool.unfinished()).toEqual([{ jobId: "j", lastSeq: 2 }]);
    expect((await spool.append("j", { kind: "output", step: "s", stream: "stdout", data: Buffer.from("new output ✓\n") })).seq).toBe(3);
    await spool.append("j", { kind: "job-end", status: "succeeded" });
    expect(readdirSync(join(dir, "jobs", "j")).filter((f) => f.startsWith("events-")).sort()).toEqual(["events-1.log", "events-3.frames"]);
    const frames: (string | Uint8Array)[] = [];
    for await (const f of spool.read("j", 1, Infinity)) frames.push(f.frame);
    expect(frames.map((f) => typeof f)).toEqual(["string", "string", "object", "string"]);
    expect(frames.map((f) => textOf(bodyOf(f)))).toEqual([null, "old output ✓\n", "new output ✓\n", null]);
    await spool.close();
    // And once more after a restart: both segments load, the newest decides the last seq.
    const again = await Spool.open(dir, memoryLogger());
    expect(again.unfinished()).toEqual([{ jobId: "j", lastSeq: 4 }]);
    expect(again.hasEnded("j")).toBe(true);
    await again.close();
  });

  it("drops the empty segment an older agent's crash left, and numbers on from the seqs before it, once", async () => {
    const dir = olderAgentStateDir(`${oldFrame(1, { kind: "step-start", step: "s" })}\n${oldFrame(2, line("old\n"))}\n`);
    writeFileSync(join(dir, "jobs", "j", "events-3.log"), "");
    const a = await Spool.open(dir, memoryLogger());
    expect(a.unfinished()).toEqual([{ jobId: "j", lastSeq: 2 }]);
    expect(existsSync(join(dir, "jobs", "j", "events-3.log"))).toBe(false);
    expect((await a.append("j", line("new\n"))).seq).toBe(3);
    expect((await a.append("j", { kind: "job-end", status: "succeeded" })).seq).toBe(4);
    await a.close();
    // Whatever order the directory lists them in, the seqs stay 1…4, each once.
    writeFileSync(join(dir, "jobs", "j", "events-3.log"), "");
    for (let round = 0; round < 2; round++) {
      const b = await Spool.open(dir, memoryLogger());
      expect(b.unfinished()).toEqual([{ jobId: "j", lastSeq: 4 }]);
      expect(b.hasEnded("j")).toBe(true);
      expect(await b.recoverInterrupted()).toEqual([]);
      expect(await collect(b, "j", 1)).toEqual([1, 2, 3, 4]);
      await b.close();
    }
  });

  it("says so when a record's length is corrupt, and re-sends what comes before it", async () => {
    const dir = testDir();
    const log = memoryLogger();
    const a = await Spool.open(dir, log);
    await a.accept("j");
    for (let i = 1; i <= 3; i++) await a.append("j", line(`event ${i}\n`));
    appendFileSync(join(dir, "jobs", "j", "events-1.frames"), Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8]));
    expect(await collect(a, "j", 1)).toEqual([1, 2, 3]);
    expect(log.lines.filter((l) => l.includes("corrupt record"))).toHaveLength(1);
    expect(log.lines.find((l) => l.includes("corrupt record"))).toMatch(/^warning: \[job j\] spool: a corrupt record at byte \d+ of \S+events-1\.frames: the rest of that segment is skipped$/);
    await a.close();
  });

  it("keeps counting after a crash while writing the first line of a new segment", async () => {
    const dir = testDir();
    const a = await Spool.open(dir, memoryLogger(), { segmentBytes: 300 });
    await a.accept("j");
    let last = 0;
    for (let i = 0; i < 3; i++) last = (await a.append("j", line(`event ${last + 1}\n`))).seq;
    // Fill up to a segment boundary, ack a little, then crash with half of the next segment's first line written.
    const segs = () => readdirSync(join(dir, "jobs", "j")).filter((f) => f.startsWith("events-")).length;
    const before = segs();
    while (segs() === before) last = (await a.append("j", line(`event ${last + 1}\n`))).seq;
    const newest = `events-${last}.frames`;
    await a.ack("j", 2);
    await a.close();
    writeFileSync(join(dir, "jobs", "j", newest), tornRecord());
    writeFileSync(join(dir, "agent.lock"), "999999999\n");

    const b = await Spool.open(dir, memoryLogger(), { segmentBytes: 300 });
    expect(b.unfinished()).toEqual([{ jobId: "j", lastSeq: last - 1 }]);
    await b.recoverInterrupted();
    const seqs = await collect(b, "j", 3);
    expect(seqs).toEqual(Array.from({ length: last + 1 - 3 + 1 }, (_, i) => i + 3)); // 3 … last+1, each once
    await b.close();
  });

  it("never keeps more than 1000 unfinished jobs: the oldest go, on open and on accept, each with a warning", async () => {
    const dir = testDir();
    // A worker that never acked: 1005 jobs wait for it; the oldest was cut short by a crash.
    const ids = writeUnfinishedJobs(dir, MAX_UNFINISHED + 5, { unended: 1 });
    const log = memoryLogger();
    const spool = await Spool.open(dir, log);
    const listed = () => spool.unfinished().map((u) => u.jobId);
    expect(listed()).toHaveLength(MAX_UNFINISHED);
    expect(listed()).toEqual(ids.slice(5));
    const warning = (id: string) => `warning: [job ${id}] dropped from the spool before the worker acknowledged it: more than ${MAX_UNFINISHED} unfinished jobs; its log on the worker may be incomplete`;
    expect(log.lines.filter((l) => l.includes("dropped from the spool"))).toEqual(ids.slice(0, 5).map(warning));
    for (const id of ids.slice(0, 5)) expect(existsSync(join(dir, "jobs", id))).toBe(false);
    expect(await spool.recoverInterrupted()).toEqual([]);
    await spool.accept("new-job");
    expect(listed()).toHaveLength(MAX_UNFINISHED);
    expect(listed().at(-1)).toBe("new-job");
    expect(listed()).not.toContain(ids[5]);
    expect(log.lines.at(-1)).toBe(warning(ids[5]!));
    await spool.close();
  });

  it("keeps only the most recent accepted ids", async () => {
    const dir = testDir();
    const a = await Spool.open(dir, memoryLogger());
    for (let i = 0; i < 2100; i++) {
      await a.accept(`id-${i}`);
      await a.append(`id-${i}`, { kind: "job-end", status: "succeeded" });
      await a.ack(`id-${i}`, 1);
    }
    await a.close();
    expect(readFileSync(join(dir, "accepted"), "utf8").split("\n").length).toBeLessThanOrEqual(2001);
    const b = await Spool.open(dir, memoryLogger());
    expect(b.isAccepted("id-2099")).toBe(true);
    expect(b.isAccepted("id-1100")).toBe(true);
    expect(b.isAccepted("id-0")).toBe(false);
    await b.close();
  });

  it("refuses a state_dir this process already has open", async () => {
    const dir = testDir();
    const a = await Spool.open(dir, memoryLogger());
    await expect(Spool.open(dir, memoryLogger())).rejects.toThrow(/already in use by this process/);
    await a.close();
    const b = await Spool.open(dir, memoryLogger());
    await b.close();
  });

  it("lets exactly one of two agents starting at the same moment have the state_dir, also right after a holder was SIGKILLed", async () => {
    const dir = testDir();
    const results = (r: LockRacer) => /^(won|lost .*)$/m.exec(r.output())?.[1];
    for (let round = 1; round <= 6; round++) {
      const racers = [startLockRacer(dir), startLockRacer(dir)];
      try {
        await eventually("both racers ready", () => racers.every((r) => r.output().includes("ready\n")));
        for (const r of racers) r.go();
        const outcomes = await eventually("both outcomes", () => (racers.every((r) => results(r)) ? racers.map((r) => results(r)!) : undefined));
        expect(outcomes.filter((o) => o === "won"), `round ${round}: ${outcomes.join(" | ")}`).toHaveLength(1);
        expect(outcomes.find((o) => o !== "won")).toMatch(/^lost state_dir \S+ is in use by another agent \((pid \d+ from the lock file|its pid not yet in the lock file)/);
      } finally {
        // The winner dies holding the lock (power loss, the OOM killer): the next round starts at once.
        for (const r of racers) r.child.kill("SIGKILL");
        await Promise.all(racers.map((r) => r.exited));
      }
    }
    const spool = await Spool.open(dir, memoryLogger());
    expect(readFileSync(join(dir, "agent.lock"), "utf8")).toBe(`${process.pid}\n`);
    await spool.close();
  });

  it("is not kept out by a lock file naming a live process that holds no lock (a recycled pid, an older agent's agent.pid)", async () => {
    const dir = testDir();
    // Looks like an agent by its name, and lives: the pid a crashed agent left behind, now someone else's.
    const other = spawn("bash", ["-c", "exec -a hookrelay-agent sleep 30"], { stdio: "ignore" });
    try {
      await eventually("the other process to run", () => other.pid !== undefined && readFileSync(`/proc/${other.pid}/cmdline`, "utf8").includes("hookrelay-agent"));
      writeFileSync(join(dir, "agent.lock"), `${other.pid}\n`);
      writeFileSync(join(dir, "agent.pid"), `${other.pid}\n`);
      const spool = await Spool.open(dir, memoryLogger());
      expect(readFileSync(join(dir, "agent.lock"), "utf8")).toBe(`${process.pid}\n`);
      await spool.close();
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("says clearly that it needs flock(1) when util-linux's flock is not there", async () => {
    const racer = startLockRacer(testDir(), { ...process.env, PATH: "/nonexistent" });
    try {
      await eventually("ready", () => racer.output().includes("ready\n"));
      racer.go();
      await eventually("its outcome", () => /^(won|lost .*)$/m.test(racer.output()));
      expect(racer.output()).toMatch(/^lost state_dir \S+: cannot lock \S+agent\.lock: the agent needs flock\(1\) from util-linux/m);
    } finally {
      racer.child.kill("SIGKILL");
      await racer.exited;
    }
  });

  it("says clearly when the state_dir cannot be created", async () => {
    const dir = testDir();
    writeFileSync(join(dir, "file"), "");
    await expect(Spool.open(join(dir, "file", "state"), memoryLogger())).rejects.toThrow(/state_dir .*file\/state is not writable: ENOTDIR/);
  });
});
