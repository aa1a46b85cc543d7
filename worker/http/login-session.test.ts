import { describe, expect, it } from "vitest";
import { SESSION_TTL_SECONDS, sessionClearCookie, sessionSetCookie, verifySession } from "./login-session.ts";

const TOKEN = "test-admin-token-0123456789abcdef";
const HOUR = 3600_000;
const URL = "https://hookrelay.example/login";

/** The `name=value` pair of a Set-Cookie header: what the browser sends back as `Cookie`. */
const pair = (setCookie: string) => setCookie.split(";")[0]!;
/** A new session's cookie pair, signed at `nowMs`. */
const signed = async (token = TOKEN, nowMs = Date.now(), gen = 0) => pair(await sessionSetCookie(token, { gen }, URL, nowMs));

/** The cookie with one character of its `part` (1 claims, 2 MAC) changed. */
function tamper(cookie: string, part: 1 | 2): string {
  const parts = cookie.split(".");
  const text = parts[part]!;
  parts[part] = (text[0] === "A" ? "B" : "A") + text.slice(1);
  return parts.join(".");
}

describe("session cookies", () => {
  it("verifies a cookie it signed, until it expires 12 hours later", async () => {
    const now = Date.now();
    const cookie = await signed(TOKEN, now, 3);
    // Hono's signed cookie: the value, a dot, the base64 HMAC (URL-encoded: %2B, %2F, %3D).
    expect(cookie).toMatch(/^hookrelay_session=v3\.[A-Za-z0-9_-]+\.[A-Za-z0-9%]+$/);
    const claims = {
      sid: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      gen: 3,
      iat: Math.floor(now / 1000),
      exp: Math.floor(now / 1000) + SESSION_TTL_SECONDS,
    };
    expect(JSON.parse(atob(cookie.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")))).toEqual(claims);
    expect(await verifySession(TOKEN, cookie, now)).toEqual(claims);
    expect(await verifySession(TOKEN, cookie, now + 12 * HOUR - 1000)).toEqual(claims);
    expect(await verifySession(TOKEN, cookie, now + 12 * HOUR)).toBeNull();
  });

  it("gives each session its own id", async () => {
    const [a, b] = await Promise.all([signed(), signed()]);
    expect((await verifySession(TOKEN, a))?.sid).not.toBe((await verifySession(TOKEN, b))?.sid);
  });

  it("refuses a cookie signed 13 hours ago (expired)", async () => {
    expect(await verifySession(TOKEN, await signed(TOKEN, Date.now() - 13 * HOUR))).toBeNull();
  });

  it("refuses a tampered payload or MAC", async () => {
    const cookie = await signed();
    expect(await verifySession(TOKEN, tamper(cookie, 1))).toBeNull();
    expect(await verifySession(TOKEN, tamper(cookie, 2))).toBeNull();
    // A payload with a later expiry, carrying the genuine MAC of the old one.
    const [, , mac] = cookie.split(".");
    const longer = btoa(JSON.stringify({ sid: "A".repeat(22), gen: 0, iat: Math.floor(Date.now() / 1000), exp: 9_999_999_999 })).replace(/=+$/, "");
    expect(await verifySession(TOKEN, `hookrelay_session=v3.${longer}.${mac}`)).toBeNull();
  });

  it("refuses a cookie signed with another admin token (rotating the token ends every session)", async () => {
    expect(await verifySession(TOKEN, await signed(`${TOKEN}-old`))).toBeNull();
  });

  it("refuses the v2 cookies signed before Hono's format (sign in again)", async () => {
    expect(await verifySession(TOKEN, "hookrelay_session=v2.eyJzaWQiOiJBQUFBQUFBQUFBQUFBQUFBQUFBQUFBIiwiZ2VuIjowLCJpYXQiOjAsImV4cCI6MX0.AAAA")).toBeNull();
  });

  it.each([
    "",
    "v1",
    "v1..",
    "v1.a.b.c",
    "v1.eyJpYXQiOjB9.AAAA",
    "v2.eyJpYXQiOjB9.AAAA",
    "v3.eyJpYXQiOjB9.AAAA",
    `v3.eyJpYXQiOjB9.${"A".repeat(43)}=`,
    "v1.!!!.@@@",
    "v1.%E0%A4%A.AAAA",
    "v1.e30.AAAA",
    "v1.😀.😀",
    `v2.${"A".repeat(5000)}.AAAA`,
  ])("refuses the malformed value %j without throwing", async (value) => {
    await expect(verifySession(TOKEN, `hookrelay_session=${value}`)).resolves.toBeNull();
  });
});

describe("reading the Cookie header", () => {
  it("finds the session among other cookies, quoted or not", async () => {
    const cookie = await signed();
    const [, value] = cookie.split("=") as [string, string];
    for (const header of [`a=1; ${cookie}; b=2`, `hookrelay_session="${value}"`]) expect(await verifySession(TOKEN, header)).not.toBeNull();
  });

  it.each([null, undefined, "", ";;;", "=", "hookrelay_session", "xhookrelay_session=1", "%ZZ=%ZZ; ===", "\u0000\uffff"])(
    "finds none, without throwing, in %j",
    async (header) => {
      await expect(verifySession(TOKEN, header)).resolves.toBeNull();
    },
  );
});

describe("Set-Cookie", () => {
  it("is HttpOnly, SameSite=Strict, Path=/, Max-Age 12 h, Secure except on loopback", async () => {
    // Hono writes the attributes in its own order; which ones are there is what counts.
    const attrs = (header: string) => header.split(";").map((s) => s.trim()).slice(1).sort();
    for (const url of ["https://hookrelay.example/login", "http://hookrelay.example/login", "http://10.0.0.1/login"]) {
      expect(attrs(await sessionSetCookie(TOKEN, { gen: 0 }, url))).toEqual(["HttpOnly", "Max-Age=43200", "Path=/", "SameSite=Strict", "Secure"]);
    }
    for (const url of ["http://localhost:8787/login", "http://127.0.0.1:8787/login", "http://[::1]:8787/login"]) {
      expect(attrs(await sessionSetCookie(TOKEN, { gen: 0 }, url))).toEqual(["HttpOnly", "Max-Age=43200", "Path=/", "SameSite=Strict"]);
    }
    const clear = sessionClearCookie("https://hookrelay.example/logout");
    expect(pair(clear)).toBe("hookrelay_session=");
    expect(attrs(clear)).toEqual(["HttpOnly", "Max-Age=0", "Path=/", "SameSite=Strict", "Secure"]);
  });
});
