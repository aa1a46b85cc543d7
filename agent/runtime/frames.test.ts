import { describe, expect, it } from "vitest";
import { encodeOutputFrame, MAX_FRAME_BYTES, parseAgentBinaryFrame } from "../../shared/protocol.ts";
import { seededRandom } from "../../testing/redeliver.ts";
import { incompleteTail, MAX_OUTPUT_PIECE_BYTES, splitOutput } from "./frames.ts";

const decode = (b: Uint8Array) => new TextDecoder("utf-8", { ignoreBOM: true }).decode(b);

describe("output frames", () => {
  it("cuts output into pieces whose binary frames stay within MAX_FRAME_BYTES, with the longest job id and step name", () => {
    const data = Buffer.from("😀".repeat(40_000) + "x".repeat(70_000));
    const pieces = splitOutput(data);
    expect(pieces.length).toBeGreaterThan(3);
    expect(Buffer.concat(pieces).equals(data)).toBe(true);
    const jobId = "j".repeat(64);
    const step = "s".repeat(64);
    for (const piece of pieces) {
      expect(piece.length).toBeLessThanOrEqual(MAX_OUTPUT_PIECE_BYTES);
      const frame = encodeOutputFrame({ jobId, seq: Number.MAX_SAFE_INTEGER, at: Date.UTC(2099, 0, 1), step, stream: "stderr" }, piece);
      expect(frame.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
      const parsed = parseAgentBinaryFrame(frame);
      expect(parsed.ok).toBe(true);
      if (parsed.ok && parsed.message.type === "event" && parsed.message.body.kind === "output") {
        expect(Buffer.from(parsed.message.body.data as Uint8Array).equals(Buffer.from(piece))).toBe(true);
      }
    }
  });

  it("cuts only where decoding the pieces one by one gives the text of the whole, for random bytes (seeded)", () => {
    const random = seededRandom(5);
    const atoms = ["a", "é", "✓", "😀", "\ufeff"].map((t) => Buffer.from(t));
    atoms.push(Buffer.from([0x80]), Buffer.from([0xf0, 0x9f]), Buffer.from([0xe2]), Buffer.from([0xfe]));
    for (let round = 0; round < 300; round++) {
      const data = Buffer.concat(Array.from({ length: 1 + Math.floor(random() * 400) }, () => atoms[Math.floor(random() * atoms.length)]!));
      const max = 4 + Math.floor(random() * 40);
      const pieces = splitOutput(data, max);
      expect(Buffer.concat(pieces).equals(data)).toBe(true);
      for (const p of pieces) expect(p.length).toBeLessThanOrEqual(max);
      for (const p of pieces.slice(0, -1)) expect(p.length).toBeGreaterThan(max - 4); // at most 3 bytes short of full
      expect(pieces.map(decode).join("")).toBe(decode(data));
    }
  });

  it("holds back exactly the start of an unfinished character", () => {
    expect(incompleteTail(Buffer.from("abc"))).toBe(0);
    expect(incompleteTail(Buffer.from("é"))).toBe(0);
    expect(incompleteTail(Buffer.from("😀"))).toBe(0);
    expect(incompleteTail(Buffer.from("😀").subarray(0, 3))).toBe(3);
    expect(incompleteTail(Buffer.from("a✓").subarray(0, 3))).toBe(2);
    expect(incompleteTail(Buffer.from([0x61, 0xc3]))).toBe(1);
    expect(incompleteTail(Buffer.from([0x80, 0x80, 0x80]))).toBe(0); // no character: nothing to wait for
  });
});
