import { env } from "cloudflare:workers";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import { app, createApp } from "./app.ts";

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

describe("errors", () => {
  it("answers an HTTPException with its own response, and anything else with a plain 500", async () => {
    const own = createApp();
    own.get("/refused", () => {
      throw new HTTPException(413, { res: new Response("too big", { status: 413 }) });
    });
    own.get("/broken", () => {
      throw new Error("a stack that must not reach the client");
    });
    const refused = await own.request("/refused", {}, env);
    expect(refused.status).toBe(413);
    expect(await refused.text()).toBe("too big");
    const broken = await own.request("/broken", {}, env);
    expect(broken.status).toBe(500);
    expect(await broken.text()).toBe("internal error");
  });
});
