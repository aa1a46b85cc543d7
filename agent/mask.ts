/**
 * Secret masking: every occurrence of a secret's bytes in a step's output becomes `***` before the
 * output is decoded, spooled or sent. It works on raw bytes, per stream, as they come from the pipe:
 * a value split across two reads is held back (at most the longest value's length minus one byte)
 * until the next read says whether it completes, so masking a stream in chunks of any size gives
 * exactly what masking it whole gives — the leftmost occurrence wins, the longest at one position.
 * A multi-line value (a PEM key) is masked line by line: a step printing one of its lines hides it.
 * Values are masked, not encodings: base64 or URL-encoded forms of a secret pass through.
 */

export const MASK = "***";
/** Shorter values would shred the log (`***` for every "abc"), so the config refuses them and lines this short are not masked alone. */
export const MIN_SECRET_LENGTH = 4;

const MASK_BYTES = Buffer.from(MASK);

/** The patterns to mask for these values: each value, and each line of a multi-line one (≥ MIN_SECRET_LENGTH characters). */
export function secretPatterns(values: Iterable<string>): Buffer[] {
  const seen = new Set<string>();
  for (const value of values) {
    const lines = value.split(/\r?\n/);
    for (const text of lines.length > 1 ? lines : [value]) {
      if ([...text].length >= MIN_SECRET_LENGTH) seen.add(text);
    }
  }
  // Longest first: at one position the longest value wins (a value that contains another is masked whole).
  return [...seen].map((s) => Buffer.from(s, "utf8")).sort((a, b) => b.length - a.length);
}

export class Masker {
  readonly patterns: readonly Buffer[];
  readonly maxLength: number;
  /** firstByte[b]: some pattern starts with byte b (cheap rejection while looking for a held-back prefix). */
  private readonly firstByte = new Uint8Array(256);

  /** null when there is nothing to mask. */
  static forValues(values: Iterable<string>): Masker | null {
    const patterns = secretPatterns(values);
    return patterns.length === 0 ? null : new Masker(patterns);
  }

  private constructor(patterns: Buffer[]) {
    this.patterns = patterns;
    this.maxLength = patterns.reduce((n, p) => Math.max(n, p.length), 0);
    for (const p of patterns) this.firstByte[p[0]!] = 1;
  }

  /** A stream's masking state: feed it the bytes in order, then `end()`. */
  stream(): MaskStream {
    return new MaskStream(this);
  }

  /** The whole input at once (e.g. a line the agent has in full). */
  maskAll(bytes: Uint8Array): Buffer {
    const s = this.stream();
    const head = s.push(bytes);
    const rest = s.end();
    return rest.length === 0 ? head : Buffer.concat([head, rest]);
  }

  maskText(text: string): string {
    return this.maskAll(Buffer.from(text, "utf8")).toString("utf8");
  }

  /**
   * Masks `buf` from the start; returns where the bytes still undecided begin (buf.length when none):
   * unless `final`, a tail that is a proper prefix of some pattern longer than what remains is held.
   */
  scan(buf: Buffer, final: boolean, out: Buffer[]): number {
    const patterns = this.patterns;
    // next[i]: where pattern i next occurs at or after the last search (-1: nowhere; -2: not searched).
    const next = new Array<number>(patterns.length).fill(-2);
    let pos = 0;
    for (;;) {
      let at = -1;
      let which = -1;
      for (let i = 0; i < patterns.length; i++) {
        let n = next[i]!;
        if (n === -2 || (n >= 0 && n < pos)) n = next[i] = buf.indexOf(patterns[i]!, pos);
        // Patterns are longest first, so the first found at the leftmost position is the longest there.
        if (n >= 0 && (at === -1 || n < at)) {
          at = n;
          which = i;
        }
      }
      if (!final) {
        // A value that may still complete with the next read, starting before (or at) the match found.
        const held = this.heldFrom(buf, pos, at === -1 ? buf.length : at + 1);
        if (held !== -1) {
          if (held > pos) out.push(buf.subarray(pos, held));
          return held;
        }
      }
      if (at === -1) {
        if (buf.length > pos) out.push(buf.subarray(pos));
        return buf.length;
      }
      if (at > pos) out.push(buf.subarray(pos, at));
      out.push(MASK_BYTES);
      pos = at + patterns[which]!.length;
    }
  }

  /** The first j in [from, to) whose bytes to the end are a proper prefix of some pattern, or -1. */
  private heldFrom(buf: Buffer, from: number, to: number): number {
    const start = Math.max(from, buf.length - this.maxLength + 1);
    const end = Math.min(to, buf.length);
    for (let j = start; j < end; j++) {
      if (this.firstByte[buf[j]!] === 0) continue;
      const rest = buf.length - j;
      for (const p of this.patterns) {
        if (p.length > rest && buf.compare(p, 0, rest, j, buf.length) === 0) return j;
      }
    }
    return -1;
  }
}

/** One stream's masking: `push` returns the bytes now decided (masked), `end` the rest. */
export class MaskStream {
  private readonly masker: Masker;
  private carry: Buffer | null = null;

  constructor(masker: Masker) {
    this.masker = masker;
  }

  push(chunk: Uint8Array): Buffer {
    const input = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const buf = this.carry ? Buffer.concat([this.carry, input]) : input;
    const out: Buffer[] = [];
    const keep = this.masker.scan(buf, false, out);
    // A copy: the held bytes are few, and must not pin the whole read buffer.
    this.carry = keep < buf.length ? Buffer.from(buf.subarray(keep)) : null;
    return join(out);
  }

  /** Bytes held back so far (e.g. to know whether the stream ended mid-value). */
  get pending(): number {
    return this.carry?.length ?? 0;
  }

  end(): Buffer {
    if (!this.carry) return Buffer.alloc(0);
    const out: Buffer[] = [];
    this.masker.scan(this.carry, true, out);
    this.carry = null;
    return join(out);
  }
}

function join(parts: Buffer[]): Buffer {
  if (parts.length === 1) return parts[0]!;
  return parts.length === 0 ? Buffer.alloc(0) : Buffer.concat(parts);
}
