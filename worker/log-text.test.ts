import { describe, expect, it } from "vitest";
import { logText } from "./log-text.ts";

describe("logText", () => {
  it("quotes peer text and escapes every control character, so it stays on one log line", () => {
    expect(logText("plain")).toBe('"plain"');
    const forged = "ok\n[agent web-1] job succeeded\r\u001b[2K\u0000\u007f\u0085\u2028\u2029end";
    const out = logText(forged);
    expect(out).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
    expect(out).toBe('"ok\\n[agent web-1] job succeeded\\r\\u001b[2K\\u0000\\u007f\\u0085\\u2028\\u2029end"');
    expect(JSON.parse(out)).toBe(forged);
  });
});
