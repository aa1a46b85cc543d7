import { describe, expect, it } from "vitest";
import { errorCode, errorDetail, errorMessage } from "./errors.ts";

describe("errors", () => {
  it("reads the message of an Error and of anything else thrown", () => {
    expect(errorMessage(new TypeError("bad"))).toBe("bad");
    expect(errorMessage("plain")).toBe("plain");
    expect(errorMessage(undefined)).toBe("undefined");
  });

  it("gives the stack when there is one", () => {
    expect(errorDetail(new Error("boom"))).toMatch(/^Error: boom\n\s+at /);
    expect(errorDetail(42)).toBe("42");
  });

  it("reads a system error's code, and nothing from values without one", () => {
    expect(errorCode(Object.assign(new Error("x"), { code: "ENOENT" }))).toBe("ENOENT");
    expect(errorCode(new Error("x"))).toBeUndefined();
    expect(errorCode({ code: 3 })).toBeUndefined();
    expect(errorCode(null)).toBeUndefined();
  });
});
