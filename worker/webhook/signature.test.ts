import { describe, expect, it } from "vitest";
import { hmacHex } from "../../testing/workerd/worker-support.ts";
import { parseSecrets, readSecrets, verifySignature } from "./signature.ts";

const SECRET = "It's a Secret to Everybody";
const body = new TextEncoder().encode("Hello, World!");
const GITHUB_VECTOR = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

function check(sha256: string | null, opts: { sha1?: string | null; secrets?: string[]; allowSha1?: boolean } = {}) {
  return verifySignature({ sha256, sha1: opts.sha1 ?? null }, body, opts.secrets ?? [SECRET], opts.allowSha1 ?? false);
}

describe("verifySignature", () => {
  it("accepts GitHub's documented test vector", async () => {
    expect(await check(GITHUB_VECTOR)).toEqual({ ok: true, algorithm: "sha256" });
  });

  it("refuses the vector under a different secret", async () => {
    expect((await check(GITHUB_VECTOR, { secrets: ["other"] })).ok).toBe(false);
  });

  it("accepts a signature made with any of several secrets (rotation)", async () => {
    expect(await check(GITHUB_VECTOR, { secrets: ["old-secret", SECRET] })).toEqual({ ok: true, algorithm: "sha256" });
  });

  it.each([
    ["empty", ""],
    ["prefix only", "sha256="],
    ["non-hex", `sha256=${"z".repeat(64)}`],
    ["odd length", `sha256=${"a".repeat(63)}`],
    ["uppercase hex", GITHUB_VECTOR.toUpperCase().replace("SHA256=", "sha256=")],
    ["several '='", `sha256=${"a".repeat(32)}=${"b".repeat(31)}`],
    ["wrong algorithm name", GITHUB_VECTOR.replace("sha256", "sha512")],
    ["trailing space", `${GITHUB_VECTOR} `],
    ["too long", `${GITHUB_VECTOR}00`],
  ])("returns a refusal, never throws, for a malformed header (%s)", async (_, header) => {
    const result = await check(header);
    expect(result.ok).toBe(false);
  });

  it("refuses sha1 unless allowed, and accepts it when allowed and sha256 is absent", async () => {
    const sha1 = `sha1=${await hmacHex("SHA-1", SECRET, body)}`;
    expect((await check(null, { sha1 })).ok).toBe(false);
    expect(await check(null, { sha1, allowSha1: true })).toEqual({ ok: true, algorithm: "sha1" });
    expect((await check(null, { sha1: "sha1=xyz", allowSha1: true })).ok).toBe(false);
  });

  it("does not fall back to sha1 when a (wrong) sha256 header is present", async () => {
    const sha1 = `sha1=${await hmacHex("SHA-1", SECRET, body)}`;
    expect((await check(`sha256=${"0".repeat(64)}`, { sha1, allowSha1: true })).ok).toBe(false);
  });
});

describe("parseSecrets", () => {
  it("splits on commas, trims and drops empties", () => {
    expect(parseSecrets(" a ,b,, c ")).toEqual(["a", "b", "c"]);
    expect(parseSecrets(undefined)).toEqual([]);
    expect(parseSecrets(" , ")).toEqual([]);
  });

  it("splits a value with a newline on newlines only, so a secret may contain a comma", () => {
    expect(parseSecrets(" a ,b\n\nc,, \n")).toEqual(["a ,b", "c,,"]);
    expect(parseSecrets("one,secret\n")).toEqual(["one,secret"]);
    expect(parseSecrets(" \n ")).toEqual([]);
  });
});

describe("readSecrets", () => {
  it("accepts secrets of at least 16 bytes, counting UTF-8 bytes", () => {
    expect(readSecrets(`${SECRET}\n${"é".repeat(8)}`, "S")).toEqual({ ok: true, secrets: [SECRET, "é".repeat(8)] });
  });

  it.each([
    ["missing", undefined, "S is not set"],
    ["one secret of 15 bytes", `${"é".repeat(7)}x`, "S: secret 1 of 1 is shorter than 16 bytes"],
    ["a short second secret", `${SECRET},abc`, "S: secret 2 of 2 is shorter than 16 bytes"],
  ])("names the problem when %s, without the secret", (_what, value, problem) => {
    const result = readSecrets(value, "S");
    expect(result.ok).toBe(false);
    const text = result.ok ? "" : result.problem;
    expect(text).toContain(problem);
    for (const piece of (value ?? "").split(",")) if (piece) expect(text).not.toContain(piece);
  });
});
