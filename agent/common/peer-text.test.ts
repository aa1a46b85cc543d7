import { describe, expect, it } from "vitest";
import { peerText } from "./peer-text.ts";

describe("peerText", () => {
  it("escapes C0 and C1 controls, DEL and line separators like JSON, leaving other text alone", () => {
    expect(peerText("a\nb\r\tc\u0000d\u001be\u007ff\u0085g\u009fh\u2028i\u2029j")).toBe("a\\nb\\r\\tc\\u0000d\\u001be\\u007ff\\u0085g\\u009fh\\u2028i\\u2029j");
    expect(peerText('path C:\\x "quoted" é ✓ 😀')).toBe('path C:\\x "quoted" é ✓ 😀');
  });

  it("cuts long text, saying how much was left out, never half a surrogate pair", () => {
    expect(peerText("x".repeat(5000))).toBe(`${"x".repeat(1000)}… (4000 more characters)`);
    expect(peerText("ab😀cd", 3)).toBe("ab… (4 more characters)");
    expect(peerText("abc", 3)).toBe("abc");
  });
});
