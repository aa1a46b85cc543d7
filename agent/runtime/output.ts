/**
 * A step's output on its way to events, as bytes (protocol 3 carries them raw): batched per stream
 * (flush at 32 KiB or after 50 ms), each event ending on a character boundary (an incomplete UTF-8
 * sequence at a batch's end waits for the rest of it: frames.ts), and held to the job's log cap:
 * past the head (the cap minus the tail's room) the middle is dropped, and at the step's end the last
 * part (≤ 1 MiB, or a quarter of the cap) is emitted after a marker line saying how many bytes were
 * left out. Memory stays bounded by the batch plus that tail (one buffer); batch buffers are reused
 * once emitted (EmitOutput), so a step's output leaves no trail of dead ones behind.
 * Secret values are masked first, on the raw bytes of each stream (mask.ts), so neither the head,
 * the tail, a batch nor the spool ever holds one.
 */
import type { OutputStream } from "../../shared/protocol.ts";
import type { Masker, MaskStream } from "./mask.ts";
import { incompleteTail } from "./frames.ts";
import { formatSize } from "../common/units.ts";
import { BufferPool } from "./buffer-pool.ts";

/**
 * Hands a batch on. `data` is only the emitter's until the promise it returns settles: its buffer is
 * then reused for a later batch, so an emitter copies what it keeps (the spool writes it into a frame).
 */
export type EmitOutput = (stream: OutputStream, data: Uint8Array) => Promise<void>;

const NO_BYTES = new Uint8Array(0);
const DEFAULT_FLUSH_BYTES = 32 * 1024;
/**
 * Batch buffers (of the default size) from one step for the next: taken afresh per step, they were
 * freed by the thousand between jobs and left glibc's main heap cut into holes it keeps (a long-lived
 * agent, 150 mixed jobs, 6 rounds each in turn: `[heap]` 7.9 MB median against 9.2, RssAnon 21.2
 * against 22.2; docs/performance.md "A long-lived agent"). A step has at most three in flight.
 */
const BATCHES = new BufferPool(DEFAULT_FLUSH_BYTES + 3, 3);

/**
 * The job-wide byte budget, shared by its steps: a head of `cap - tailMax` bytes, so that a step
 * flooding past it still stores at most `cap` bytes (head + its tail) plus the marker line.
 */
export class LogBudget {
  readonly cap: number;
  readonly tailMax: number;
  readonly headMax: number;
  used = 0;
  constructor(cap: number) {
    this.cap = cap;
    this.tailMax = Math.max(1, Math.min(1024 * 1024, Math.floor(cap / 4)));
    this.headMax = cap - this.tailMax;
  }
}

/** Past the head, output is kept as raw bytes in the tail ring; at the end only its last tailMax bytes are sent, cut to whole characters (the worker decodes, the agent never does). */
interface Piece {
  stream: OutputStream;
  bytes: Uint8Array;
}

/**
 * The last `max` bytes past the head, copied into one buffer allocated at the first byte past the
 * head: the reads they come from are overwritten by the next read (process-group.ts), and a copy
 * per read would be the allocation churn that buffer avoids. Runs of one stream keep their order.
 */
class TailRing {
  private buf: Buffer | null = null;
  /** Where the next byte goes. */
  private end = 0;
  /** Bytes held (≤ max). */
  size = 0;
  private runs: { stream: OutputStream; bytes: number }[] = [];
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  push(stream: OutputStream, data: Uint8Array): void {
    const max = this.max;
    const buf = (this.buf ??= Buffer.allocUnsafe(max));
    let src = data;
    if (src.length >= max) {
      src = src.subarray(src.length - max);
      this.runs = [];
      this.size = 0;
    }
    const first = Math.min(src.length, max - this.end);
    buf.set(src.subarray(0, first), this.end);
    if (first < src.length) buf.set(src.subarray(first), 0);
    this.end = (this.end + src.length) % max;
    const last = this.runs.at(-1);
    if (last && last.stream === stream) last.bytes += src.length;
    else this.runs.push({ stream, bytes: src.length });
    this.size += src.length;
    // The oldest bytes were overwritten: drop them from the oldest runs.
    let excess = this.size - max;
    while (excess > 0) {
      const run = this.runs[0]!;
      const k = Math.min(run.bytes, excess);
      run.bytes -= k;
      excess -= k;
      this.size -= k;
      if (run.bytes === 0) this.runs.shift();
    }
  }

  /**
   * The bytes held, oldest first, as views of the ring (nothing is written to it after this): a piece
   * per run, two where a run wraps round the ring's end. Empties the ring.
   */
  take(): Piece[] {
    const out: Piece[] = [];
    const buf = this.buf;
    if (buf) {
      let pos = (this.end - this.size + this.max) % this.max;
      for (const run of this.runs) {
        const first = Math.min(run.bytes, this.max - pos);
        out.push({ stream: run.stream, bytes: buf.subarray(pos, pos + first) });
        if (first < run.bytes) out.push({ stream: run.stream, bytes: buf.subarray(0, run.bytes - first) });
        pos = (pos + run.bytes) % this.max;
      }
    }
    this.buf = null;
    this.end = 0;
    this.size = 0;
    this.runs = [];
    return out;
  }
}

export interface StepOutputOptions {
  budget: LogBudget;
  emit: EmitOutput;
  flushBytes?: number;
  flushMs?: number;
  /** Secret values to mask as `***` (null: none). */
  masker?: Masker | null;
}

export class StepOutput {
  private readonly budget: LogBudget;
  private readonly emit: EmitOutput;
  private readonly flushBytes: number;
  private readonly flushMs: number;
  private pendingStream: OutputStream = "stdout";
  /** The batch being filled (flushBytes + 3 long) and how much of it is. */
  private batch: Buffer | null = null;
  private batchLength = 0;
  /** Batch buffers whose emit has settled, for the next batches (a step has at most a few in flight). */
  private readonly spare: Buffer[] = [];
  /** Per stream, the start of a character whose rest has not been read yet (≤ 3 bytes): the next batch of that stream begins with it. */
  private readonly carry: Record<OutputStream, Uint8Array> = { stdout: NO_BYTES, stderr: NO_BYTES };
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Emits run one after another in this chain; awaiting it is the back-pressure. */
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;
  private readonly tail: TailRing;
  private overflowBytes = 0;
  private lastEndedWithNewline = true;
  private readonly masks: { stdout: MaskStream; stderr: MaskStream } | null;

  constructor(options: StepOutputOptions) {
    this.budget = options.budget;
    this.emit = options.emit;
    this.flushBytes = options.flushBytes ?? DEFAULT_FLUSH_BYTES;
    this.flushMs = options.flushMs ?? 50;
    this.tail = new TailRing(this.budget.tailMax);
    this.masks = options.masker ? { stdout: options.masker.stream(), stderr: options.masker.stream() } : null;
  }

  /** Feed raw bytes read from the step; resolves when it is fine to read more. */
  async write(stream: OutputStream, chunk: Uint8Array): Promise<void> {
    if (this.masks) for (const part of this.masks[stream].push(chunk)) this.accept(stream, part);
    else this.accept(stream, chunk);
    await this.chain;
    if (this.failure) throw this.failure;
  }

  /** Masked bytes into the head, or past the cap into the tail. */
  private accept(stream: OutputStream, chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const room = this.budget.headMax - this.budget.used;
    if (room >= chunk.length) {
      this.budget.used += chunk.length;
      this.toHead(stream, chunk);
    } else {
      // Cut at a character boundary at or after the cap (≤ 3 bytes over), so neither part splits one.
      let cut = Math.max(0, room);
      while (cut < chunk.length && cut - Math.max(0, room) < 3 && (chunk[cut]! & 0xc0) === 0x80) cut++;
      if (cut > 0) {
        this.budget.used += cut;
        this.toHead(stream, chunk.subarray(0, cut));
      }
      if (cut < chunk.length) this.toTail(stream, chunk.subarray(cut));
    }
  }

  /** A line from the agent itself about this step (e.g. a timeout); not counted against the cap. */
  async note(line: string): Promise<void> {
    this.flush();
    this.enqueue("stderr", Buffer.from(`${this.lastEndedWithNewline ? "" : "\n"}${line}\n`));
    await this.chain;
  }

  /** End of the step: flush what is left, then the tail with its marker. */
  async finish(): Promise<void> {
    // Bytes held back as the possible start of a secret, and not one after all.
    if (this.masks) for (const stream of ["stdout", "stderr"] as const) for (const part of this.masks[stream].end()) this.accept(stream, part);
    this.flush();
    // A character the step never finished: its bytes as they are (read as U+FFFD), still in the head.
    for (const stream of ["stdout", "stderr"] as const) {
      const rest = this.carry[stream];
      this.carry[stream] = NO_BYTES;
      if (rest.length > 0) this.enqueue(stream, rest);
    }
    if (this.tail.size > 0) {
      // The ring holds the last tailMax bytes at most: start them on a character boundary.
      let tailBytes = this.tail.size;
      const pieces = this.tail.take();
      const first = pieces[0]!;
      let cut = 0;
      while (cut < first.bytes.length && (first.bytes[cut]! & 0xc0) === 0x80) cut++;
      first.bytes = first.bytes.subarray(cut);
      tailBytes -= cut;
      const omitted = this.overflowBytes - tailBytes;
      if (omitted > 0) {
        this.enqueue(
          "stderr",
          Buffer.from(`${this.lastEndedWithNewline ? "" : "\n"}[hookrelay] … ${omitted} bytes of output omitted (log cap ${formatSize(this.budget.cap)}); the last ${tailBytes} bytes follow …\n`),
        );
      }
      // Each run whole characters too: a character split between two runs of a stream (the other
      // stream's run between them) goes with the later one.
      const held: Record<OutputStream, Uint8Array> = { stdout: NO_BYTES, stderr: NO_BYTES };
      for (const p of pieces) {
        const bytes = held[p.stream].length > 0 ? Buffer.concat([held[p.stream], p.bytes]) : p.bytes;
        const k = incompleteTail(bytes);
        held[p.stream] = bytes.subarray(bytes.length - k);
        this.enqueue(p.stream, bytes.subarray(0, bytes.length - k));
      }
      for (const stream of ["stdout", "stderr"] as const) this.enqueue(stream, held[stream]);
    }
    await this.chain;
    // Every emit has settled: the step's batch buffers serve the next step (the pool keeps only its size).
    for (const batch of this.spare.splice(0)) BATCHES.give(batch);
    if (this.failure) throw this.failure;
  }

  /** Head bytes into the batch (copied: `bytes` may be the reader's buffer, overwritten by the next read). */
  private toHead(stream: OutputStream, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (stream !== this.pendingStream) this.flush();
    this.pendingStream = stream;
    let from = 0;
    while (from < bytes.length) {
      if (this.batch === null) {
        this.batch = this.spare.pop() ?? (this.flushBytes === DEFAULT_FLUSH_BYTES ? BATCHES.take() : Buffer.allocUnsafe(this.flushBytes + 3));
        const carried = this.carry[stream];
        this.batch.set(carried, 0);
        this.batchLength = carried.length;
        this.carry[stream] = NO_BYTES;
      }
      const n = Math.min(bytes.length - from, this.flushBytes + 3 - this.batchLength);
      this.batch.set(bytes.subarray(from, from + n), this.batchLength);
      this.batchLength += n;
      from += n;
      if (this.batchLength >= this.flushBytes) this.flush();
    }
    if (this.timer === undefined && this.batch !== null) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.flushMs);
    }
  }

  private toTail(stream: OutputStream, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.overflowBytes += bytes.length;
    this.tail.push(stream, bytes);
  }

  /** The batch out, but for the start of a character it ends with (the next batch of the stream begins with that). */
  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.batch;
    if (batch === null) return;
    this.batch = null;
    const filled = batch.subarray(0, this.batchLength);
    const k = incompleteTail(filled);
    if (k > 0) this.carry[this.pendingStream] = Buffer.from(filled.subarray(filled.length - k));
    this.enqueue(this.pendingStream, filled.subarray(0, filled.length - k), batch);
  }

  /** `batch`: the buffer `data` is in, reused once its emit has settled (never while an emit may read it). */
  private enqueue(stream: OutputStream, data: Uint8Array, batch?: Buffer): void {
    if (data.length === 0) {
      if (batch) this.spare.push(batch);
      return;
    }
    this.lastEndedWithNewline = data[data.length - 1] === 0x0a;
    this.chain = this.chain
      .then(() => (this.failure ? undefined : this.emit(stream, data)))
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .then(() => {
        if (batch) this.spare.push(batch);
      });
  }
}
