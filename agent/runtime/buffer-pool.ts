/**
 * A few buffers of one size, handed out and given back: a step's output flows through the agent by
 * the megabyte in batches and frames of at most a few tens of KiB, and a fresh buffer for each left
 * behind, after a 50 MB step, megabytes of dead ones that V8 had not yet collected (nothing allocates
 * once the agent is idle, so nothing collects them) and the C allocator's heap cut up by them. Reused,
 * the same few serve every step. Only a buffer nobody uses any more may be given back (once): a
 * buffer never given back is simply collected as any other.
 */
export class BufferPool {
  readonly bytes: number;
  private readonly keep: number;
  private readonly free: Buffer[] = [];

  /** Buffers of `bytes`; at most `keep` kept for reuse (the rest are left to the collector). */
  constructor(bytes: number, keep: number) {
    this.bytes = bytes;
    this.keep = keep;
  }

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bytes);
  }

  give(buf: Buffer): void {
    if (buf.length === this.bytes && this.free.length < this.keep && !this.free.includes(buf)) this.free.push(buf);
  }

  /** How many are kept now (tests). */
  get kept(): number {
    return this.free.length;
  }
}
