import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { uniqueName } from "../../testing/workerd/worker-support.ts";
import { ADMIN_TOKEN, cookieSignedWith, ORIGIN, request, signIn, tampered } from "../../testing/workerd/login-session.ts";

const BEARER = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const HOUR = 3600_000;

/** POST …/agents {name}: a state-changing API call that answers 201 once past the door. */
function register(headers: Record<string, string>, target = uniqueName()): Promise<Response> {
  return request(`/api/targets/${target}/agents`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ name: "web-1" }),
  });
}

describe("the admin API accepts the bearer token or the session cookie", () => {
  it("opens GET with the cookie from /login, and refuses it without one", async () => {
    const cookie = await signIn();
    const target = uniqueName();
    expect((await request(`/api/targets/${target}/jobs`, { headers: { Cookie: cookie } })).status).toBe(200);
    const none = await request(`/api/targets/${target}/jobs`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: "missing or invalid bearer token" });
  });

  it.each([
    ["tampered", async () => tampered(await signIn())],
    ["expired (signed 13 hours ago)", () => cookieSignedWith(ADMIN_TOKEN, Date.now() - 13 * HOUR)],
    ["signed with another ADMIN_TOKEN", () => cookieSignedWith("an-older-admin-token-0123456789abcdef")],
    ["garbage", async () => "hookrelay_session=v1.%%%.!!!; =;;"],
  ])("refuses a %s cookie with 401", async (_what, cookie) => {
    const res = await request(`/api/targets/${uniqueName()}/jobs`, { headers: { Cookie: await cookie() } });
    expect(res.status).toBe(401);
  });

  // One refusal for every malformed header (Hono's bearerAuth would answer some of these 400).
  it.each(["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", `Bearer ${ADMIN_TOKEN} extra`, "Bearer nope!", `Token ${ADMIN_TOKEN}`])(
    "refuses the Authorization header %j with the same 401 and challenge",
    async (authorization) => {
      const res = await request(`/api/targets/${uniqueName()}/jobs`, { headers: { Authorization: authorization } });
      expect(res.status).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toBe('Bearer realm="hookrelay"');
      expect(res.headers.get("Cache-Control")).toBe("no-store");
      expect(await res.json()).toEqual({ error: "missing or invalid bearer token" });
    },
  );

  it("takes the token with any case of the scheme and extra spaces", async () => {
    for (const authorization of [`bearer ${ADMIN_TOKEN}`, `BEARER   ${ADMIN_TOKEN}`]) {
      expect((await request(`/api/targets/${uniqueName()}/jobs`, { headers: { Authorization: authorization } })).status).toBe(200);
    }
  });

  it("refuses a wrong bearer token even alongside a valid cookie", async () => {
    const res = await request(`/api/targets/${uniqueName()}/jobs`, { headers: { Cookie: await signIn(), Authorization: "Bearer nope" } });
    expect(res.status).toBe(401);
  });
});

describe("a state-changing call with the cookie must come from this origin (CSRF)", () => {
  it("answers 403 without Origin", async () => {
    const res = await register({ Cookie: await signIn() });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: "cross-origin request refused" });
  });

  it.each(["https://evil.example", "http://hookrelay.example", "https://hookrelay.example:8443", "null"])("answers 403 with Origin %s", async (origin) => {
    const res = await register({ Cookie: await signIn(), Origin: origin });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: "cross-origin request refused" });
  });

  it("passes with this origin", async () => {
    const res = await register({ Cookie: await signIn(), Origin: ORIGIN });
    expect(res.status).toBe(201);
  });

  it("passes a bearer call without Origin", async () => {
    expect((await register(BEARER)).status).toBe(201);
  });

  it("lets GET through without Origin (reading changes nothing)", async () => {
    const res = await request(`/api/targets/${uniqueName()}/agents`, { headers: { Cookie: await signIn() } });
    expect(res.status).toBe(200);
  });
});

describe("a missing ADMIN_TOKEN fails closed", () => {
  it("answers 500 naming it, for bearer and cookie alike", async () => {
    const cookie = await signIn();
    for (const headers of [BEARER, { Cookie: cookie }, {}] as Record<string, string>[]) {
      const res = await request(`/api/targets/${uniqueName()}/jobs`, { headers }, { ...env, ADMIN_TOKEN: "" });
      expect(res.status).toBe(500);
      expect(await res.text()).toContain("ADMIN_TOKEN");
    }
  });
});
