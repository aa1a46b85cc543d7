import { describe, expect, it } from "vitest";
import { readCappedBody } from "./body.ts";

// Guards for the one-buffer reader: whatever Content-Length says, the bytes read are the bytes sent.
function request(chunks: string[], contentLength?: number): Request {
  const encoder = new TextEncoder();
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[i++];
      if (chunk === undefined) controller.close();
      else controller.enqueue(encoder.encode(chunk));
    },
  });
  const headers: Record<string, string> = contentLength === undefined ? {} : { "Content-Length": String(contentLength) };
  return new Request("http://x/", { method: "POST", headers, body });
}

const text = async (r: Request, max = 100) => {
  const result = await readCappedBody(r, max);
  return result.ok ? new TextDecoder().decode(result.bytes) : result.reason;
};

describe("readCappedBody", () => {
  it.each([
    ["exact", 9],
    ["larger than sent", 50],
    ["smaller than sent", 3],
    ["absent", undefined],
  ])("returns every byte sent when Content-Length is %s", async (_what, length) => {
    expect(await text(request(["abc", "def", "ghi"], length))).toBe("abcdefghi");
  });

  it("grows past its first buffer when there is no Content-Length", async () => {
    const chunk = "x".repeat(40 * 1024);
    expect((await text(request([chunk, chunk, chunk, chunk]), 1024 * 1024)).length).toBe(160 * 1024);
  });

  it("refuses a body past the cap even when Content-Length understates it", async () => {
    expect(await text(request(["x".repeat(60), "y".repeat(60)], 10))).toBe("body larger than 100 bytes");
  });
});
