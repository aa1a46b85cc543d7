import { describe, expect, it } from "vitest";
import { MAX_FRAME_BYTES, parseAgentMessage } from "../shared/protocol.ts";
import { utf8Length } from "../shared/utf8.ts";
import { splitEscaped, splitOutput } from "./frames.ts";

describe("frames", () => {
  it("splits output so every event frame stays within MAX_FRAME_BYTES, however it escapes", () => {
    const nasty = "\u0001".repeat(40_000) + "😀".repeat(20_000) + '"\\'.repeat(20_000);
    const pieces = splitOutput("job-1", "step", "stdout", nasty);
    expect(pieces.join("")).toBe(nasty);
    for (const data of pieces) {
      const frame = JSON.stringify({ type: "event", jobId: "job-1", seq: 123456789, at: Date.now(), body: { kind: "output", step: "step", stream: "stdout", data } });
      expect(utf8Length(frame)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
      expect(parseAgentMessage(frame).ok).toBe(true);
    }
  });

  it("fills pieces nearly to the budget and loses nothing, for random mixes of text", () => {
    const alphabet = ["a", "Z", " ", "\n", "\t", '"', "\\", "\u0001", "é", "中", "😀", "\ud800", "\udfff"];
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 50; round++) {
      const text = Array.from({ length: 2000 + rand(3000) }, () => alphabet[rand(alphabet.length)]).join("");
      const max = 50 + rand(500);
      const pieces = splitEscaped(text, max);
      expect(pieces.join("")).toBe(text);
      for (const [i, piece] of pieces.entries()) {
        expect(Buffer.byteLength(JSON.stringify(piece)) - 2).toBeLessThanOrEqual(max);
        const next = pieces[i + 1];
        if (next !== undefined) {
          // Nearly full: adding the next character would have gone over (or split a surrogate pair).
          const grown = piece + next.slice(0, /[\ud800-\udbff]/.test(next[0]!) ? 2 : 1);
          expect(Buffer.byteLength(JSON.stringify(grown)) - 2 > max || /[\ud800-\udbff]$/.test(piece + next[0]!)).toBe(true);
        }
      }
    }
  });

  it("never cuts a surrogate pair", () => {
    const pieces = splitEscaped("a😀😀😀", 5);
    expect(pieces).toEqual(["a😀", "😀", "😀"]);
  });
});
