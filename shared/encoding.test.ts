import { describe, expect, it } from "vitest";
import { fromBase64, fromBase64url, fromHex, toBase64url, toHex } from "./encoding.ts";

const ascii = (text: string) => new TextEncoder().encode(text);

describe("base64url", () => {
  it("writes the RFC 4648 vectors without padding, with - and _", () => {
    expect(toBase64url(ascii(""))).toBe("");
    expect(toBase64url(ascii("f"))).toBe("Zg");
    expect(toBase64url(ascii("fo"))).toBe("Zm8");
    expect(toBase64url(ascii("foo"))).toBe("Zm9v");
    expect(toBase64url(ascii("foobar"))).toBe("Zm9vYmFy");
    expect(toBase64url(new Uint8Array([0xfb, 0xff]))).toBe("-_8");
  });

  it("reads back what it writes", () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(fromBase64url(toBase64url(bytes))).toEqual(bytes);
    expect(fromBase64url("-_8")).toEqual(new Uint8Array([0xfb, 0xff]));
    expect(fromBase64url("Zm9vYmFy")).toEqual(ascii("foobar"));
  });

  it("answers null for empty text, padding, standard-alphabet characters and impossible lengths", () => {
    expect(fromBase64url("")).toBeNull();
    expect(fromBase64url("Zg==")).toBeNull();
    expect(fromBase64url("+/8")).toBeNull();
    expect(fromBase64url("a.b")).toBeNull();
    expect(fromBase64url("Zm9vY")).toBeNull();
  });
});

describe("base64", () => {
  it("reads standard base64 with padding", () => {
    expect(fromBase64("Zm9vYg==")).toEqual(ascii("foob"));
    expect(fromBase64("+/8=")).toEqual(new Uint8Array([0xfb, 0xff]));
  });

  it("throws on text that is not base64", () => {
    expect(() => fromBase64("Zm9vY")).toThrow();
  });
});

describe("hex", () => {
  it("writes two lowercase digits a byte", () => {
    expect(toHex(new Uint8Array([]))).toBe("");
    expect(toHex(new Uint8Array([0, 1, 0x0f, 0x10, 0xab, 0xff]))).toBe("00010f10abff");
  });

  it("reads either case back", () => {
    expect(fromHex("00010f10abff")).toEqual(new Uint8Array([0, 1, 0x0f, 0x10, 0xab, 0xff]));
    expect(fromHex("ABFF")).toEqual(new Uint8Array([0xab, 0xff]));
    expect(fromHex("")).toEqual(new Uint8Array([]));
  });

  it("throws on an odd length or a non-hex digit", () => {
    expect(() => fromHex("abc")).toThrow(TypeError);
    expect(() => fromHex("zz")).toThrow(TypeError);
    expect(() => fromHex("0x")).toThrow(TypeError);
  });
});
