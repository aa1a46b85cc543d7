import { describe, expect, it } from "vitest";
import { seededRandom as rng } from "../../testing/redeliver.ts";
import { Masker, secretPatterns } from "./mask.ts";

/** The obvious masking of a whole input, written independently of Masker.scan: at each byte, the longest value starting there. */
function naiveMask(input: Buffer, patterns: readonly Buffer[]): Buffer {
  const out: number[] = [];
  let i = 0;
  while (i < input.length) {
    let best: Buffer | undefined;
    for (const p of patterns) {
      if (p.length <= input.length - i && input.compare(p, 0, p.length, i, i + p.length) === 0 && (!best || p.length > best.length)) best = p;
    }
    if (best) {
      out.push(0x2a, 0x2a, 0x2a);
      i += best.length;
    } else out.push(input[i++]!);
  }
  return Buffer.from(out);
}

const text = (parts: Buffer[]) => Buffer.concat(parts).toString();

function masked(masker: Masker, chunks: Uint8Array[]): Buffer {
  const s = masker.stream();
  const parts = chunks.flatMap((c) => s.push(c));
  return Buffer.concat([...parts, ...s.end()]);
}


describe("Masker", () => {
  const m = Masker.forValues(["hunter22", "s3cr3t-token"])!;

  it("masks every occurrence, in any place of the output", () => {
    expect(m.maskText("pw=hunter22; again hunter22\nhunter22")).toBe("pw=***; again ***\n***");
    expect(m.maskText("s3cr3t-tokenhunter22")).toBe("******");
    expect(m.maskText("nothing here")).toBe("nothing here");
  });

  it("holds back a value split across reads, and only as many bytes as could still complete it", () => {
    const s = m.stream();
    expect(text(s.push(Buffer.from("abc hun")))).toBe("abc ");
    expect(s.pending).toBe(3);
    expect(text(s.push(Buffer.from("te")))).toBe("");
    expect(text(s.push(Buffer.from("r22 and h")))).toBe("*** and ");
    // "hx" cannot start a value: released at once.
    expect(text(s.push(Buffer.from("x")))).toBe("hx");
    expect(text(s.push(Buffer.from("hunt")))).toBe("");
    // The stream ends mid-value: the bytes are not a secret, so they are output as they are.
    expect(text(s.end())).toBe("hunt");
  });

  it("masks a value byte by byte", () => {
    const bytes = Buffer.from("[s3cr3t-token]");
    expect(masked(m, [...bytes].map((b) => Buffer.from([b]))).toString()).toBe("[***]");
  });

  it("masks the longest value at a position, and a value inside a longer one once", () => {
    const nested = Masker.forValues(["abcd", "abcdefgh", "efgh"])!;
    expect(nested.maskText("abcdefgh abcdXefgh")).toBe("*** ***X***");
    expect(masked(nested, [Buffer.from("abcd"), Buffer.from("efgh")]).toString()).toBe("***");
  });

  it("masks a multi-line value line by line, and the whole value as lines", () => {
    const pem = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END KEY-----\n";
    const k = Masker.forValues([pem.trimEnd()])!;
    expect(k.maskText("line: MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n")).toBe("line: ***\n");
    expect(k.maskText(pem)).toBe("***\n***\n***\n");
    expect(k.maskText(pem.replaceAll("\n", "\r\n"))).toBe("***\r\n***\r\n***\r\n");
  });

  it("leaves encodings of a value alone: values are masked, not encodings", () => {
    expect(m.maskText(Buffer.from("hunter22").toString("base64"))).toBe("aHVudGVyMjI=");
  });

  it("does not make patterns of lines shorter than 4 characters, and none at all for nothing", () => {
    expect(secretPatterns(["abcdef\nxy\n"]).map(String)).toEqual(["abcdef"]);
    expect(secretPatterns(["ab\u00e9\u00e9"]).map(String)).toEqual(["ab\u00e9\u00e9"]);
    expect(Masker.forValues([])).toBeNull();
  });

  it("masks multi-byte UTF-8 values split inside a character", () => {
    const u = Masker.forValues(["pässwörd"])!;
    const bytes = Buffer.from("x pässwörd y");
    expect(masked(u, [bytes.subarray(0, 4), bytes.subarray(4, 9), bytes.subarray(9)]).toString()).toBe("x *** y");
  });
});

describe("Masker fuzz: masking in chunks equals masking the whole stream", () => {
  // Seeded: each case is reproducible from its seed, printed on failure.
  const cases = 1500;
  it(`holds for ${cases} random secrets, surroundings and chunk boundaries`, () => {
    for (let seed = 1; seed <= cases; seed++) {
      const r = rng(seed);
      const int = (n: number) => Math.floor(r() * n);
      // A small alphabet makes values overlap, nest and nearly match each other and the surroundings.
      const alphabet = ["a", "b", "c", "\n", "é", "\u0000", "\u{1F511}", "=", " "];
      const word = (min: number, max: number) => Array.from({ length: min + int(max - min + 1) }, () => alphabet[int(alphabet.length)]).join("");
      const values = Array.from({ length: 1 + int(4) }, () => word(4, 12));
      const masker = Masker.forValues(values);
      if (!masker) continue; // every value was short lines only
      const pieces: string[] = [];
      for (let i = int(120); i >= 0; i--) pieces.push(r() < 0.4 ? values[int(values.length)]! : word(0, 6));
      const input = Buffer.from(pieces.join(""));
      const chunks: Buffer[] = [];
      for (let at = 0; at < input.length; ) {
        // Single bytes, small reads, and reads longer than twice the longest value (the held bytes bridged, not copied).
        const kind = r();
        const size = kind < 0.3 ? 1 : kind < 0.7 ? 1 + int(24) : 50 + int(250);
        chunks.push(input.subarray(at, at + size));
        at += size;
      }
      const expected = naiveMask(input, masker.patterns);
      const got = masked(masker, chunks);
      if (!got.equals(expected)) {
        throw new Error(`seed ${seed}: values ${JSON.stringify(values)}, input ${JSON.stringify(input.toString())}, chunks ${chunks.map((c) => c.length).join(",")}: got ${JSON.stringify(got.toString())}, expected ${JSON.stringify(expected.toString())}`);
      }
      expect(masker.maskAll(input).equals(expected)).toBe(true);
    }
  });
});
