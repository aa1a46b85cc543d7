import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "./app.ts";

describe("GET /healthz and unknown routes", () => {
  it("answers healthz with ok", async () => {
    const res = await app.request("/healthz", {}, env);
    expect(await res.json()).toEqual({ ok: true });
  });

  it("answers 404 JSON for anything else", async () => {
    const res = await app.request("/nope", {}, env);
    expect(res.status).toBe(404);
    expect(res.headers.get("Content-Type")).toContain("application/json");
  });
});
