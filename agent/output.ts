/**
 * A step's output on its way to events: decoded as UTF-8 per stream (a streaming TextDecoder, so a
 * character split across reads stays whole), batched (flush at 32 KiB or after 50 ms), and held to
 * the job's log cap: past the head (the cap minus the tail's room) the middle is dropped, and at the
 * step's end the last part (≤ 1 MiB, or a quarter of the cap) is emitted after a marker line saying
 * how many bytes were left out. Memory stays bounded by the batch plus that tail (one buffer).
 * Secret values are masked first, on the raw bytes of each stream (mask.ts), so neither the head,
 * the tail, a batch nor the spool ever holds one.
 */
import type { OutputStream } from "../shared/protocol.ts";
import type { Masker, MaskStream } from "./mask.ts";
import { formatSize } from "./units.ts";

export type EmitOutput = (stream: OutputStream, data: string) => Promise<void>;

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

/** Past the head, output is kept as raw bytes (no decoding) and only the last tailMax are decoded at the end. */
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

  /** The bytes held, oldest first, one fresh piece per run; empties the ring. */
  take(): Piece[] {
    const out: Piece[] = [];
    const buf = this.buf;
    if (buf) {
      let pos = (this.end - this.size + this.max) % this.max;
      for (const run of this.runs) {
        const bytes = Buffer.allocUnsafe(run.bytes);
        const first = Math.min(run.bytes, this.max - pos);
        buf.copy(bytes, 0, pos, pos + first);
        if (first < run.bytes) buf.copy(bytes, first, 0, run.bytes - first);
        pos = (pos + run.bytes) % this.max;
        out.push({ stream: run.stream, bytes });
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
  private readonly decoders = { stdout: new TextDecoder("utf-8"), stderr: new TextDecoder("utf-8") };
  private pendingStream: OutputStream = "stdout";
  private pending = "";
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
    this.flushBytes = options.flushBytes ?? 32 * 1024;
    this.flushMs = options.flushMs ?? 50;
    this.tail = new TailRing(this.budget.tailMax);
    this.masks = options.masker ? { stdout: options.masker.stream(), stderr: options.masker.stream() } : null;
  }

  /** Feed raw bytes read from the step; resolves when it is fine to read more. */
  async write(stream: OutputStream, chunk: Uint8Array): Promise<void> {
    if (this.masks) for (const part of this.masks[stream].push(chunk)) this.accept(stream, part);
    else this.accept(stream, chunk);
    if (this.pending.length >= this.flushBytes) this.flush();
    await this.chain;
    if (this.failure) throw this.failure;
  }

  /** Masked bytes into the head, or past the cap into the tail. */
  private accept(stream: OutputStream, chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const room = this.budget.headMax - this.budget.used;
    if (room >= chunk.length) {
      this.budget.used += chunk.length;
      this.toHead(stream, this.decoders[stream].decode(chunk, { stream: true }));
    } else {
      // Cut at a character boundary at or after the cap (≤ 3 bytes over), so neither part splits one.
      let cut = Math.max(0, room);
      while (cut < chunk.length && cut - Math.max(0, room) < 3 && (chunk[cut]! & 0xc0) === 0x80) cut++;
      if (cut > 0) {
        this.budget.used += cut;
        this.toHead(stream, this.decoders[stream].decode(chunk.subarray(0, cut), { stream: true }));
      }
      if (cut < chunk.length) this.toTail(stream, chunk.subarray(cut));
    }
  }

  /** A line from the agent itself about this step (e.g. a timeout); not counted against the cap. */
  async note(line: string): Promise<void> {
    this.flush();
    this.enqueue("stderr", `${this.lastEndedWithNewline ? "" : "\n"}${line}\n`);
    await this.chain;
  }

  /** End of the step: flush what is left, then the tail with its marker. */
  async finish(): Promise<void> {
    // Bytes held back as the possible start of a secret, and not one after all.
    if (this.masks) for (const stream of ["stdout", "stderr"] as const) for (const part of this.masks[stream].end()) this.accept(stream, part);
    for (const stream of ["stdout", "stderr"] as const) {
      const rest = this.decoders[stream].decode();
      if (rest) this.overflowBytes > 0 || this.budget.used >= this.budget.headMax ? this.toTail(stream, Buffer.from(rest)) : this.toHead(stream, rest);
    }
    this.flush();
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
          `${this.lastEndedWithNewline ? "" : "\n"}[hookrelay] … ${omitted} bytes of output omitted (log cap ${formatSize(this.budget.cap)}); the last ${tailBytes} bytes follow …\n`,
        );
      }
      const decoders = { stdout: new TextDecoder("utf-8"), stderr: new TextDecoder("utf-8") };
      let run: { stream: OutputStream; text: string } | undefined;
      for (const p of pieces) {
        const text = decoders[p.stream].decode(p.bytes, { stream: true });
        if (run && run.stream === p.stream) run.text += text;
        else {
          if (run) this.enqueue(run.stream, run.text);
          run = { stream: p.stream, text };
        }
      }
      if (run) {
        run.text += decoders[run.stream].decode();
        this.enqueue(run.stream, run.text);
      }
    }
    await this.chain;
    if (this.failure) throw this.failure;
  }

  private toHead(stream: OutputStream, text: string): void {
    if (!text) return;
    if (stream !== this.pendingStream) this.flush();
    this.pendingStream = stream;
    this.pending += text;
    if (this.timer === undefined) {
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

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.pending) return;
    const data = this.pending;
    this.pending = "";
    this.enqueue(this.pendingStream, data);
  }

  private enqueue(stream: OutputStream, data: string): void {
    this.lastEndedWithNewline = data.endsWith("\n");
    this.chain = this.chain.then(
      () => (this.failure ? undefined : this.emit(stream, data)),
    ).catch((e: unknown) => {
      this.failure ??= e;
    });
  }
}
