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
  /** The shortest pattern's length: the window the search slides (Wu–Manber on hashed byte triples). */
  private readonly window: number;
  /** shift[h]: how far the window may move when its last three bytes hash to h (0: a candidate). */
  private readonly shift = new Uint8Array(1 << HASH_BITS);
  /** candidates[h]: the patterns whose window ends in a triple hashing to h (when shift is 0), longest first. */
  private readonly candidates = new Map<number, number[]>();
  /**
   * prefixEnds[b]: (pattern, k) for each prefix shorter than the window whose last byte is b — a read that
   * ends in byte b can only be holding back the start of one of these (pattern i, k bytes of it).
   * Longest prefix first, so the first that matches is the earliest position to hold from.
   */
  private readonly prefixEnds: (number[] | undefined)[] = new Array(256);

  /** null when there is nothing to mask. */
  static forValues(values: Iterable<string>): Masker | null {
    const patterns = secretPatterns(values);
    return patterns.length === 0 ? null : new Masker(patterns);
  }

  private constructor(patterns: Buffer[]) {
    this.patterns = patterns;
    this.maxLength = patterns.reduce((n, p) => Math.max(n, p.length), 0);
    // Every pattern is ≥ 4 bytes (secretPatterns); the window is capped so shifts fit a byte.
    const w = Math.min(255, patterns.reduce((n, p) => Math.min(n, p.length), Infinity));
    this.window = w;
    this.shift.fill(w - 2);
    for (const [i, p] of patterns.entries()) {
      for (let j = 2; j < w; j++) {
        const h = hash3(p[j - 2]!, p[j - 1]!, p[j]!);
        this.shift[h] = Math.min(this.shift[h]!, w - 1 - j);
      }
      const last = hash3(p[w - 3]!, p[w - 2]!, p[w - 1]!);
      const list = this.candidates.get(last);
      if (list) list.push(i);
      else this.candidates.set(last, [i]);
      // Shorter than the window only: a held start of w bytes or more fills a window, and the search holds it.
      for (let k = 1; k < w; k++) (this.prefixEnds[p[k - 1]!] ??= []).push(i, k);
    }
    // Pairs sorted by prefix length, longest first.
    for (const [b, flat] of this.prefixEnds.entries()) {
      if (!flat) continue;
      const pairs: [number, number][] = [];
      for (let x = 0; x < flat.length; x += 2) pairs.push([flat[x]!, flat[x + 1]!]);
      pairs.sort((u, v) => v[1] - u[1]);
      this.prefixEnds[b] = pairs.flat();
    }
  }

  /** A stream's masking state: feed it the bytes in order, then `end()`. */
  stream(): MaskStream {
    return new MaskStream(this);
  }

  /** The whole input at once (e.g. a line the agent has in full). */
  maskAll(bytes: Uint8Array): Buffer {
    const s = this.stream();
    return Buffer.concat([...s.push(bytes), ...s.end()]);
  }

  maskText(text: string): string {
    return this.maskAll(Buffer.from(text, "utf8")).toString("utf8");
  }

  /**
   * Masks `buf` from `from`; returns where the bytes still undecided begin (buf.length when none):
   * unless `final`, a tail that is a proper prefix of some pattern longer than what remains is held.
   * Leftmost first, the longest at one position, then on after it — as masking the whole stream would.
   * With `stopAt`, it decides only the positions before it (the caller has made sure at least the
   * longest pattern's length of bytes follows them) and returns where it stopped, ≥ stopAt.
   */
  scan(buf: Buffer, from: number, final: boolean, out: Buffer[], stopAt = Infinity): number {
    const w = this.window;
    const shift = this.shift;
    let pos = from; // bytes before pos are decided and in `out`
    let end = from + w - 1; // the window's last byte
    while (end < buf.length) {
      if (end - w + 1 >= stopAt) break;
      const h = hash3(buf[end - 2]!, buf[end - 1]!, buf[end]!);
      const step = shift[h]!;
      if (step > 0) {
        end += step;
        continue;
      }
      const start = end - w + 1;
      const found = this.at(buf, start, this.candidates.get(h)!, final);
      if (found === HELD) return this.hold(buf, pos, start, out);
      if (found >= 0) {
        if (start > pos) out.push(buf.subarray(pos, start));
        out.push(MASK_BYTES);
        pos = start + this.patterns[found]!.length;
        end = pos + w - 1;
      } else end += 1;
    }
    if (stopAt !== Infinity) return this.hold(buf, pos, Math.max(pos, stopAt), out);
    // Past the last whole window no pattern fits: only the start of one, to hold for the next read.
    // Only prefixes ending in the read's last byte can be that start: a few candidates, not every position.
    if (!final && buf.length > pos) {
      const ends = this.prefixEnds[buf[buf.length - 1]!];
      if (ends) {
        for (let x = 0; x < ends.length; x += 2) {
          const p = this.patterns[ends[x]!]!;
          const k = ends[x + 1]!;
          const j = buf.length - k;
          if (j < pos) continue;
          let m = 0;
          while (m < k && buf[j + m] === p[m]) m++;
          if (m === k) return this.hold(buf, pos, j, out);
        }
      }
    }
    if (buf.length > pos) out.push(buf.subarray(pos));
    return buf.length;
  }

  private hold(buf: Buffer, pos: number, from: number, out: Buffer[]): number {
    if (from > pos) out.push(buf.subarray(pos, from));
    return from;
  }

  /**
   * Which of `list` (longest first) occurs at `start`: its index; HELD when a longer one than any
   * found runs into the end of `buf` matching so far (the next read decides; never when `final`:
   * nothing more comes); NONE otherwise.
   */
  private at(buf: Buffer, start: number, list: readonly number[], final: boolean): number {
    const rest = buf.length - start;
    let held = false;
    for (const i of list) {
      const p = this.patterns[i]!;
      if (final && p.length > rest) continue;
      const n = Math.min(p.length, rest);
      let k = 0;
      while (k < n && buf[start + k] === p[k]) k++;
      if (k < n) continue;
      if (p.length > rest) held = true;
      else return held ? HELD : i;
    }
    return held ? HELD : NONE;
  }
}

const HELD = -2;
const NONE = -1;
const HASH_BITS = 16;

/** Three bytes → HASH_BITS bits (a multiplicative hash: the table stays 64 KiB whatever the patterns). */
function hash3(a: number, b: number, c: number): number {
  return Math.imul((a << 16) | (b << 8) | c, 0x9e3779b1) >>> (32 - HASH_BITS);
}

/**
 * One stream's masking: `push` returns the bytes now decided (masked), `end` the rest — as parts,
 * mostly views of the bytes read: a read is never copied whole.
 */
export class MaskStream {
  private readonly masker: Masker;
  private carry: Buffer | null = null;

  constructor(masker: Masker) {
    this.masker = masker;
  }

  push(chunk: Uint8Array): Buffer[] {
    const input = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out: Buffer[] = [];
    const carry = this.carry;
    const longest = this.masker.maxLength;
    let buf = input;
    let from = 0;
    if (carry && input.length < 2 * longest) buf = Buffer.concat([carry, input]);
    else if (carry) {
      // Not a copy of the whole read: the held bytes and enough after them to decide every position in them.
      const bridge = Buffer.concat([carry, input.subarray(0, longest)]);
      from = this.masker.scan(bridge, 0, false, out, carry.length) - carry.length;
    }
    const keep = this.masker.scan(buf, from, false, out);
    // A copy: the held bytes are few, and must not pin the whole read buffer.
    this.carry = keep < buf.length ? Buffer.from(buf.subarray(keep)) : null;
    return out;
  }

  /** Bytes held back so far (e.g. to know whether the stream ended mid-value). */
  get pending(): number {
    return this.carry?.length ?? 0;
  }

  end(): Buffer[] {
    if (!this.carry) return [];
    const out: Buffer[] = [];
    this.masker.scan(this.carry, 0, true, out);
    this.carry = null;
    return out;
  }
}
