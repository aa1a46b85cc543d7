import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, cookieSignedWith, loginForm, ORIGIN, request, signIn, tampered } from "../../testing/workerd/login-session.ts";
import { loginHtml, pageHtml } from "./page.ts";
import { MAX_LOGIN_BYTES, PAGE_PATHS, WRONG_TOKEN } from "./route.ts";

const HOUR = 3600_000;
const PAGES = ["/", "/setup", "/targets/default", "/targets/default/deployments/d-1", "/targets/default/jobs/j-1"];

function expectPageHeaders(res: Response): void {
  expect(res.headers.get("Content-Security-Policy")).toBe(
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  );
  expect(res.headers.get("X-Frame-Options")).toBe("DENY");
  expect(res.headers.get("Cache-Control")).toBe("no-store");
  expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
  expect(res.headers.get("Referrer-Policy")).toBe("same-origin");
  // hono/secure-headers' defaults, which the hand-written headers did not set.
  expect(res.headers.get("Strict-Transport-Security")).toBe("max-age=15552000; includeSubDomains");
  expect(res.headers.get("Cross-Origin-Opener-Policy")).toBe("same-origin");
  expect(res.headers.get("Cross-Origin-Resource-Policy")).toBe("same-origin");
}

/** The attributes of a Set-Cookie header, split and trimmed. */
const attributes = (res: Response) => (res.headers.get("Set-Cookie") ?? "").split(";").map((s) => s.trim());

describe("pages without a session", () => {
  it("covers every page URL (the four stable ones and /setup)", () => {
    expect(PAGE_PATHS).toHaveLength(PAGES.length);
  });

  it.each(PAGES)("redirects %s to /login with the page as next", async (path) => {
    const res = await request(`${path}?x=1`);
    expect(res.status).toBe(303);
    expect(res.headers.get("Location")).toBe(`/login?next=${encodeURIComponent(`${path}?x=1`)}`);
    expectPageHeaders(res);
  });

  it("redirects through the worker's own fetch handler too", async () => {
    const res = await exports.default.fetch("http://x/", { redirect: "manual" });
    expect(res.status).toBe(303);
    expect(res.headers.get("Location")).toBe("/login?next=%2F");
  });

  it("answers a link followed from another site (cookie withheld by SameSite=Strict) with a same-site hop to /login", async () => {
    const res = await request("/targets/default/jobs/j-1", { headers: { "Sec-Fetch-Site": "cross-site" } });
    expect(res.status).toBe(200);
    expectPageHeaders(res);
    expect(res.headers.get("Set-Cookie")).toBeNull();
    const html = await res.text();
    expect(html).toContain('<meta http-equiv="refresh" content="0; url=/login?next=%2Ftargets%2Fdefault%2Fjobs%2Fj-1">');
    expect(html).not.toContain("<script");
    // With the cookie (a browser sends it on the hop, a same-site navigation) the page itself.
    const withCookie = await request("/targets/default/jobs/j-1", { headers: { "Sec-Fetch-Site": "cross-site", Cookie: await signIn() } });
    expect(await withCookie.text()).toBe(pageHtml());
  });

  it.each([
    ["tampered", async () => tampered(await signIn())],
    ["expired (signed 13 hours ago)", () => cookieSignedWith(ADMIN_TOKEN, Date.now() - 13 * HOUR)],
    ["signed with another ADMIN_TOKEN", () => cookieSignedWith("an-older-admin-token-0123456789abcdef")],
  ])("treats a %s cookie as no session", async (_what, cookie) => {
    const res = await request("/targets/default", { headers: { Cookie: await cookie() } });
    expect(res.status).toBe(303);
    expect(res.headers.get("Location")).toBe("/login?next=%2Ftargets%2Fdefault");
  });
});

describe("pages with a session", () => {
  it.each(PAGES)("serves %s as the page shell with the strict headers", async (path) => {
    const res = await request(path, { headers: { Cookie: await signIn() } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/html; charset=utf-8");
    expectPageHeaders(res);
    expect(await res.text()).toBe(pageHtml());
  });

  it("answers HEAD like GET, without a body", async () => {
    const res = await request("/", { method: "HEAD", headers: { Cookie: await signIn() } });
    expect(res.status).toBe(200);
    expectPageHeaders(res);
  });

  it("serves the assets without a session, and no page headers leak onto the API", async () => {
    expect((await request("/assets/app.js")).status).toBe(200);
    const api = await request("/api/targets/default/jobs", { headers: { Cookie: await signIn() } });
    expect(api.status).toBe(200);
    expect(api.headers.get("Content-Security-Policy")).toBeNull();
  });
});

describe("GET /login", () => {
  it("shows the sign-in form with a safe next", async () => {
    const res = await request(`/login?next=${encodeURIComponent("/targets/a/jobs/b")}`);
    expect(res.status).toBe(200);
    expectPageHeaders(res);
    expect(await res.text()).toBe(loginHtml({ next: "/targets/a/jobs/b", error: null }));
    const evil = await request(`/login?next=${encodeURIComponent("//evil.example")}`);
    expect(await evil.text()).toBe(loginHtml({ next: "/", error: null }));
  });

  it("sends a signed-in browser straight on to next", async () => {
    const res = await request("/login?next=%2Ftargets%2Fa", { headers: { Cookie: await signIn() } });
    expect(res.status).toBe(303);
    expect(res.headers.get("Location")).toBe("/targets/a");
  });
});

describe("POST /login", () => {
  it("sets the session cookie (HttpOnly, SameSite=Strict, Path=/, 12 h, Secure) and redirects to next", async () => {
    const res = await request("/login", loginForm({ token: ADMIN_TOKEN, next: "/targets/a/deployments/d?tab=log" }));
    expect(res.status).toBe(303);
    expect(res.headers.get("Location")).toBe("/targets/a/deployments/d?tab=log");
    expectPageHeaders(res);
    const [pair, ...rest] = attributes(res);
    // hono/cookie's signed value (its MAC is base64, URL-encoded) and its order of attributes.
    expect(pair).toMatch(/^hookrelay_session=v3\.[A-Za-z0-9_-]+\.[A-Za-z0-9%]+$/);
    expect(rest.sort()).toEqual(["HttpOnly", "Max-Age=43200", "Path=/", "SameSite=Strict", "Secure"]);
    // The cookie it set opens the pages.
    expect((await request("/", { headers: { Cookie: pair! } })).status).toBe(200);
  });

  it.each(["http://localhost:8787", "http://127.0.0.1:8787", "http://[::1]:8787"])("leaves Secure off on loopback (%s) only", async (origin) => {
    const res = await request(`${origin}/login`, loginForm({ token: ADMIN_TOKEN, next: "/" }));
    expect(res.status).toBe(303);
    expect(attributes(res).slice(1).sort()).toEqual(["HttpOnly", "Max-Age=43200", "Path=/", "SameSite=Strict"]);
  });

  it("keeps Secure on plain http to a non-loopback host", async () => {
    const res = await request("http://hookrelay.example/login", loginForm({ token: ADMIN_TOKEN, next: "/" }));
    expect(attributes(res)).toContain("Secure");
  });

  it.each(["//evil.example", "https://evil.example", "/\\evil", "/\t/evil.example", "\\\\evil.example", "javascript:alert(1)", "evil", "/login", ""])(
    "refuses next %j as an open redirect: goes to /",
    async (next) => {
      const res = await request("/login", loginForm({ token: ADMIN_TOKEN, next }));
      expect(res.status).toBe(303);
      expect(res.headers.get("Location")).toBe("/");
    },
  );

  it("goes to / without next", async () => {
    const res = await request("/login", loginForm({ token: ADMIN_TOKEN }));
    expect(res.headers.get("Location")).toBe("/");
  });

  it("answers a wrong token with 401, the form again and the error, and no cookie", async () => {
    const res = await request("/login", loginForm({ token: `${ADMIN_TOKEN}x`, next: "/targets/a" }));
    expect(res.status).toBe(401);
    expectPageHeaders(res);
    expect(res.headers.get("Set-Cookie")).toBeNull();
    expect(await res.text()).toBe(loginHtml({ next: "/targets/a", error: WRONG_TOKEN }));
  });

  it.each([
    ["a JSON body", { "Content-Type": "application/json" }, JSON.stringify({ token: ADMIN_TOKEN }), 415],
    ["no token field", {}, "next=%2F", 400],
    ["two token fields", {}, `token=${ADMIN_TOKEN}&token=${ADMIN_TOKEN}`, 400],
    ["two next fields", {}, `token=${ADMIN_TOKEN}&next=%2F&next=%2Fa`, 400],
    ["bytes that are not UTF-8", {}, new Uint8Array([0x74, 0x6f, 0x6b, 0x65, 0x6e, 0x3d, 0xff, 0xfe]), 400],
    ["a body over the cap", {}, `token=${"a".repeat(MAX_LOGIN_BYTES)}`, 413],
    // hono/body-limit runs before the handler: the size is judged before the content type.
    ["a JSON body over the cap", { "Content-Type": "application/json" }, JSON.stringify({ token: "a".repeat(MAX_LOGIN_BYTES) }), 413],
  ])("refuses %s without a cookie", async (_what, headers, body, status) => {
    const res = await request("/login", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers }, body });
    expect(res.status).toBe(status);
    expect(res.headers.get("Set-Cookie")).toBeNull();
    expectPageHeaders(res);
  });

  it("refuses a streamed body over the cap that declares no length", async () => {
    const chunk = new TextEncoder().encode("a".repeat(4096));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 4) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await request("/login", { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body });
    expect(res.status).toBe(413);
  });
});

describe("POST /logout", () => {
  it("clears the cookie and redirects to /login", async () => {
    const res = await request("/logout", { method: "POST", headers: { Cookie: await signIn(), Origin: ORIGIN } });
    expect(res.status).toBe(303);
    expect(res.headers.get("Location")).toBe("/login");
    expectPageHeaders(res);
    const [pair, ...rest] = attributes(res);
    expect(pair).toBe("hookrelay_session=");
    expect(rest.sort()).toEqual(["HttpOnly", "Max-Age=0", "Path=/", "SameSite=Strict", "Secure"]);
  });

  it("refuses another origin's form", async () => {
    const res = await request("/logout", { method: "POST", headers: { Cookie: await signIn(), Origin: "https://evil.example" } });
    expect(res.status).toBe(403);
    expect(res.headers.get("Set-Cookie")).toBeNull();
  });
});

describe("a missing ADMIN_TOKEN fails closed", () => {
  it.each([
    ["GET /", "/", {}],
    ["GET /login", "/login", {}],
    ["POST /login", "/login", loginForm({ token: "", next: "/" })],
  ])("answers %s with 500 naming it", async (_what, path, init) => {
    const res = await request(path, init, { ...env, ADMIN_TOKEN: "  " });
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("ADMIN_TOKEN");
    expect(res.headers.get("Set-Cookie")).toBeNull();
  });
});
