import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loginForm, request } from "../../testing/workerd/login-session.ts";

// A short admin token is within reach of online guessing: every door that needs it fails closed.
describe("an ADMIN_TOKEN under 32 characters fails closed", () => {
  const short = { ...env, ADMIN_TOKEN: "x".repeat(31) };

  it.each([
    ["GET /api", "/api/targets/default/jobs", { headers: { Authorization: `Bearer ${"x".repeat(31)}` } }],
    ["GET /", "/", {}],
    ["GET /login", "/login", {}],
    ["POST /login", "/login", loginForm({ token: "x".repeat(31), next: "/" })],
  ])("answers %s with 500 naming ADMIN_TOKEN and why, never the token", async (_what, path, init) => {
    const res = await request(path, init, short);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).toContain("ADMIN_TOKEN");
    expect(text).toContain("shorter than 32 characters");
    expect(text).not.toContain("x".repeat(31));
    expect(res.headers.get("Set-Cookie")).toBeNull();
  });

  it("takes one of exactly 32", async () => {
    const token = "y".repeat(32);
    const res = await request("/api/targets/default/jobs", { headers: { Authorization: `Bearer ${token}` } }, { ...env, ADMIN_TOKEN: token });
    expect(res.status).toBe(200);
  });
});
