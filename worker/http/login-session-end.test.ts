import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { uniqueName } from "../../testing/workerd/worker-support.ts";
import { ORIGIN, request, signIn } from "../../testing/workerd/login-session.ts";

// A session ends on the server, not only in the browser: a copied cookie stops working at logout.
const jobs = (cookie: string, testEnv: Env = env) => request(`/api/targets/${uniqueName()}/jobs`, { headers: { Cookie: cookie } }, testEnv);
const post = (path: string, headers: Record<string, string>, testEnv: Env = env) => request(path, { method: "POST", headers: { Origin: ORIGIN, ...headers } }, testEnv);

describe("POST /logout ends the session on the server", () => {
  it("after logout the same cookie gets 401 on /api and the pages send it to /login; another session stays", async () => {
    const cookie = await signIn();
    const other = await signIn();
    expect((await jobs(cookie)).status).toBe(200);
    const out = await post("/logout", { Cookie: cookie });
    expect(out.status).toBe(303);
    expect(out.headers.get("Location")).toBe("/login");
    expect((await jobs(cookie)).status).toBe(401);
    const page = await request("/", { headers: { Cookie: cookie } });
    expect(page.status).toBe(303);
    expect(page.headers.get("Location")).toBe("/login?next=%2F");
    expect((await jobs(other)).status).toBe(200);
  });
});

describe("signing out everywhere ends every session (the bearer token stays)", () => {
  // Its own admin token: the state belongs to a token, so this cannot end other tests' sessions.
  const ownEnv = { ...env, ADMIN_TOKEN: `everywhere-${crypto.randomUUID()}` };
  const bearer = { Authorization: `Bearer ${ownEnv.ADMIN_TOKEN}` };

  it("POST /api/sessions/sign-out-everywhere: another session's cookie gets 401 too; signing in again works", async () => {
    const mine = await signIn(ORIGIN, ownEnv);
    const theirs = await signIn(ORIGIN, ownEnv);
    expect((await jobs(theirs, ownEnv)).status).toBe(200);
    const res = await post("/api/sessions/sign-out-everywhere", { Cookie: mine }, ownEnv);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ signedOut: "everywhere" });
    expect((await jobs(mine, ownEnv)).status).toBe(401);
    expect((await jobs(theirs, ownEnv)).status).toBe(401);
    expect((await request(`/api/targets/${uniqueName()}/jobs`, { headers: bearer }, ownEnv)).status).toBe(200);
    expect((await jobs(await signIn(ORIGIN, ownEnv), ownEnv)).status).toBe(200);
  });

  it("takes the bearer token too, and refuses a call without a session or token, or from another origin", async () => {
    const theirs = await signIn(ORIGIN, ownEnv);
    expect((await request("/api/sessions/sign-out-everywhere", { method: "POST" }, ownEnv)).status).toBe(401);
    expect((await post("/api/sessions/sign-out-everywhere", { Cookie: theirs, Origin: "https://evil.example" }, ownEnv)).status).toBe(403);
    expect((await jobs(theirs, ownEnv)).status).toBe(200);
    expect((await request("/api/sessions/sign-out-everywhere", { method: "POST", headers: bearer }, ownEnv)).status).toBe(200);
    expect((await jobs(theirs, ownEnv)).status).toBe(401);
  });

  it("the dashboard's button (POST /logout/everywhere) does the same and goes to /login", async () => {
    const mine = await signIn(ORIGIN, ownEnv);
    const theirs = await signIn(ORIGIN, ownEnv);
    const res = await post("/logout/everywhere", { Cookie: mine }, ownEnv);
    expect(res.status).toBe(303);
    expect(res.headers.get("Location")).toBe("/login");
    expect(res.headers.get("Set-Cookie")).toMatch(/^hookrelay_session=;/);
    expect((await jobs(theirs, ownEnv)).status).toBe(401);
  });

  it("the button without a session, or from another site, ends nothing", async () => {
    const theirs = await signIn(ORIGIN, ownEnv);
    expect((await post("/logout/everywhere", {}, ownEnv)).status).toBe(303);
    expect((await post("/logout/everywhere", { Cookie: theirs, Origin: "https://evil.example" }, ownEnv)).status).toBe(403);
    expect((await jobs(theirs, ownEnv)).status).toBe(200);
  });
});
