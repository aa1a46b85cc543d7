import { describe, expect, it } from "vitest";
import type { OutputStream } from "../../shared/protocol.ts";
import { LogBudget, StepOutput } from "./output.ts";
import { seededRandom } from "../../testing/redeliver.ts";

/** As the worker's log decodes: a byte-order mark is kept wherever it is. */
const decode = (b: Uint8Array) => new TextDecoder("utf-8", { ignoreBOM: true }).decode(b);

/** Each event's bytes decoded on their own, as the worker's log reads them: a character split between two events shows as U+FFFD. */
function collector() {
  const got: { stream: OutputStream; data: string }[] = [];
  const bytes: { stream: OutputStream; data: Uint8Array }[] = [];
  return {
    got,
    bytes,
    // A copy: the batch's buffer is reused once emit has settled.
    emit: async (stream: OutputStream, data: Uint8Array) => {
      bytes.push({ stream, data: Buffer.from(data) });
      got.push({ stream, data: decode(data) });
    },
  };
}
const text = (got: { data: string }[]) => got.map((g) => g.data).join("");

describe("step output", () => {
  it("never splits a UTF-8 character across reads", async () => {
    const c = collector();
    const out = new StepOutput({ budget: new LogBudget(1024 * 1024), emit: c.emit });
    const bytes = Buffer.from("héllo wörld ✓ 😀\n");
    for (let i = 0; i < bytes.length; i++) await out.write("stdout", bytes.subarray(i, i + 1));
    await out.finish();
    expect(text(c.got)).toBe("héllo wörld ✓ 😀\n");
  });

  it("batches small writes and keeps the streams apart", async () => {
    const c = collector();
    const out = new StepOutput({ budget: new LogBudget(1024 * 1024), emit: c.emit });
    for (let i = 0; i < 100; i++) await out.write("stdout", Buffer.from(`line ${i}\n`));
    await out.write("stderr", Buffer.from("oops\n"));
    await out.finish();
    expect(c.got.length).toBeLessThan(5);
    expect(c.got.at(-1)).toEqual({ stream: "stderr", data: "oops\n" });
    expect(text(c.got.filter((g) => g.stream === "stdout"))).toBe(Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(""));
  });

  it("keeps the head and the last part past the log cap, with a marker counting what was left out", async () => {
    const c = collector();
    const cap = 4096; // tail = a quarter of the cap
    const out = new StepOutput({ budget: new LogBudget(cap), emit: c.emit });
    const all = Array.from({ length: 2000 }, (_, i) => `line ${String(i).padStart(5, "0")}\n`).join(""); // 12 bytes a line
    const bytes = Buffer.from(all);
    for (let i = 0; i < bytes.length; i += 1000) await out.write("stdout", bytes.subarray(i, i + 1000));
    await out.finish();
    const got = text(c.got);
    const omitted = bytes.length - cap; // head (3/4 of the cap) + tail (1/4) = the cap
    const marker = `[hookrelay] … ${omitted} bytes of output omitted (log cap 4KiB); the last ${cap / 4} bytes follow …\n`;
    // The head ends mid-line, so the marker starts on a line of its own.
    expect(got).toBe(`${all.slice(0, cap - cap / 4)}\n${marker}${all.slice(-cap / 4)}`);
  });

  it("cuts at the cap on a character boundary", async () => {
    const c = collector();
    const out = new StepOutput({ budget: new LogBudget(1024), emit: c.emit });
    await out.write("stdout", Buffer.from("é".repeat(2000))); // 2 bytes each: the cap falls between characters or inside one
    await out.finish();
    expect(text(c.got)).not.toContain("\ufffd");
    expect(text(c.got)).toMatch(/^(é)+\n\[hookrelay\] … \d+ bytes of output omitted.*\n(é)+$/);
  });

  it("applies the cap across a job's steps", async () => {
    const budget = new LogBudget(2048);
    const first = collector();
    const a = new StepOutput({ budget, emit: first.emit });
    await a.write("stdout", Buffer.from("a".repeat(1500)));
    await a.finish();
    const second = collector();
    const b = new StepOutput({ budget, emit: second.emit });
    await b.write("stdout", Buffer.from("b".repeat(3000)));
    await b.finish();
    expect(text(first.got)).toBe("a".repeat(1500));
    expect(text(second.got)).toBe(`${"b".repeat(36)}\n[hookrelay] … ${3000 - 36 - 512} bytes of output omitted (log cap 2KiB); the last 512 bytes follow …\n${"b".repeat(512)}`);
  });
  it("keeps head and tail exact when every read lands in one buffer that the next read overwrites", async () => {
    const random = seededRandom(7);
    // Reads split anywhere, even inside a character; the same reads for both runs.
    const reads: { stream: OutputStream; bytes: Buffer }[] = [];
    for (let i = 0; i < 400; i++) {
      const stream: OutputStream = random() < 0.3 ? "stderr" : "stdout";
      const bytes = Buffer.from(`${stream} ${i} ${"é✓abc".repeat(Math.floor(random() * 60))}\n`);
      for (let at = 0; at < bytes.length; ) {
        const n = Math.min(bytes.length - at, 1 + Math.floor(random() * 300));
        reads.push({ stream, bytes: bytes.subarray(at, at + n) });
        at += n;
      }
    }
    const run = async (shared: boolean) => {
      const c = collector();
      const out = new StepOutput({ budget: new LogBudget(16 * 1024), emit: c.emit, flushBytes: 512 });
      const buffer = Buffer.alloc(64 * 1024);
      for (const r of reads) {
        if (shared) {
          r.bytes.copy(buffer);
          const done = out.write(r.stream, buffer.subarray(0, r.bytes.length));
          buffer.fill(0x58, 0, r.bytes.length); // the next read lands here
          await done;
        } else await out.write(r.stream, Buffer.from(r.bytes));
      }
      await out.finish();
      return c.got;
    };
    const fresh = await run(false);
    const reused = await run(true);
    expect(text(fresh)).toContain("bytes of output omitted");
    expect(text(fresh)).not.toContain("X");
    for (const stream of ["stdout", "stderr"] as const) expect(text(reused.filter((g) => g.stream === stream))).toBe(text(fresh.filter((g) => g.stream === stream)));
    expect(text(reused)).toBe(text(fresh));
  });

  it("reuses a batch's buffer only once its emit has settled: an emitter that reads late still gets its bytes (50 MB past a 1 MiB cap, seeded)", async () => {
    // As the spool does: the bytes are read after an await, while the step's next reads are already in.
    const random = seededRandom(5);
    const line = Buffer.from("hookrelay benchmark output line 0123456789abcdef\n");
    const whole = Buffer.alloc(50 * 1024 * 1024);
    for (let at = 0; at < whole.length; at += line.length) line.copy(whole, at);
    whole[whole.length - 1] = 0x0a;
    const kept: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    const out = new StepOutput({
      budget: new LogBudget(1024 * 1024),
      emit: async (_stream, data) => {
        if (data.buffer.byteLength === 32 * 1024 + 3) buffers.add(data.buffer); // a batch's
        await new Promise((r) => setImmediate(r));
        kept.push(Buffer.from(data));
      },
    });
    const read = Buffer.alloc(64 * 1024);
    for (let at = 0; at < whole.length; ) {
      const n = Math.min(whole.length - at, 1 + Math.floor(random() * read.length));
      whole.copy(read, 0, at, at + n);
      await out.write("stdout", read.subarray(0, n));
      read.fill(0x58); // the next read lands here
      at += n;
    }
    await out.finish();
    const stored = Buffer.concat(kept);
    const marker = stored.indexOf("[hookrelay] … ");
    // The head ends mid-line: the marker's line starts with a newline of its own.
    const head = stored.subarray(0, marker - 1);
    const tail = stored.subarray(stored.indexOf("\n", marker) + 1);
    expect(head.length).toBe(1024 * 1024 - 256 * 1024);
    expect(whole[head.length - 1]).not.toBe(0x0a);
    expect(head.equals(whole.subarray(0, head.length))).toBe(true);
    expect(tail.length).toBe(256 * 1024);
    expect(tail.equals(whole.subarray(whole.length - tail.length))).toBe(true);
    // The head's 24 batches came in the few buffers a read's batches need, used again and again.
    expect(buffers.size).toBeGreaterThan(0);
    expect(buffers.size).toBeLessThanOrEqual(3);
  });

  it("emits each stream's bytes exactly, every event whole characters, for random bytes read at random cuts (seeded)", async () => {
    const random = seededRandom(11);
    // Valid characters of every length, and bytes that are no character: lone leads, stray continuations.
    const atoms = ["a", "\n", "é", "✓", "😀", "中", "\ufeff"].map((t) => Buffer.from(t));
    atoms.push(Buffer.from([0xc3]), Buffer.from([0x80]), Buffer.from([0xf0, 0x9f]), Buffer.from([0xe2, 0x9c]), Buffer.from([0xff]));
    for (let round = 0; round < 60; round++) {
      const input = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
      const c = collector();
      const out = new StepOutput({ budget: new LogBudget(64 * 1024 * 1024), emit: c.emit, flushBytes: 4 + Math.floor(random() * 200) });
      for (let i = 0; i < 300; i++) {
        const stream: OutputStream = random() < 0.3 ? "stderr" : "stdout";
        const bytes = Buffer.concat(Array.from({ length: 1 + Math.floor(random() * 40) }, () => atoms[Math.floor(random() * atoms.length)]!));
        input[stream].push(bytes);
        for (let at = 0; at < bytes.length; ) {
          const n = Math.min(bytes.length - at, 1 + Math.floor(random() * 7));
          await out.write(stream, bytes.subarray(at, at + n));
          at += n;
        }
      }
      await out.finish();
      for (const stream of ["stdout", "stderr"] as const) {
        const whole = Buffer.concat(input[stream]);
        const events = c.bytes.filter((e) => e.stream === stream);
        expect(Buffer.concat(events.map((e) => e.data)).equals(whole)).toBe(true);
        // Decoded one by one (as the worker does) = the stream decoded whole: no event ends inside a character.
        expect(events.map((e) => decode(e.data)).join("")).toBe(decode(whole));
      }
    }
  });
});

describe("step output's batch buffers", () => {
  it("serve the next step: a step's buffers are given back when it finishes, not left to the collector", async () => {
    const seen = async () => {
      const buffers = new Set<ArrayBufferLike>();
      const out = new StepOutput({ budget: new LogBudget(1024 * 1024), emit: async (_s, d) => void buffers.add(d.buffer) });
      for (let i = 0; i < 4; i++) await out.write("stdout", Buffer.alloc(40 * 1024, 0x61));
      await out.finish();
      return buffers;
    };
    const first = await seen();
    const second = await seen();
    expect([...second].some((b) => first.has(b))).toBe(true);
  });
});
