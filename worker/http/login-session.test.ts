import { describe, expect, it } from "vitest";
import { SESSION_TTL_SECONDS, sessionClearCookie, sessionCookieValue, sessionSetCookie, signSession, verifySession } from "./login-session.ts";

const TOKEN = "test-admin-token-0123456789abcdef";
const HOUR = 3600_000;

/** The value with one character of its `part` (1 payload, 2 MAC) changed. */
function tamper(value: string, part: 1 | 2): string {
  const parts = value.split(".");
  const text = parts[part]!;
  parts[part] = (text[0] === "A" ? "B" : "A") + text.slice(1);
  return parts.join(".");
}

describe("session cookie values", () => {
  it("verifies a value it signed, until it expires 12 hours later", async () => {
    const now = Date.now();
    const value = await signSession(TOKEN, { gen: 3 }, now);
    expect(value).toMatch(/^v2\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const claims = {
      sid: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      gen: 3,
      iat: Math.floor(now / 1000),
      exp: Math.floor(now / 1000) + SESSION_TTL_SECONDS,
    };
    expect(JSON.parse(atob(value.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")))).toEqual(claims);
    expect(await verifySession(TOKEN, value, now)).toEqual(claims);
    expect(await verifySession(TOKEN, value, now + 12 * HOUR - 1000)).toEqual(claims);
    expect(await verifySession(TOKEN, value, now + 12 * HOUR)).toBeNull();
  });

  it("gives each session its own id", async () => {
    const [a, b] = await Promise.all([signSession(TOKEN, { gen: 0 }), signSession(TOKEN, { gen: 0 })]);
    expect((await verifySession(TOKEN, a))?.sid).not.toBe((await verifySession(TOKEN, b))?.sid);
  });

  it("refuses a value signed 13 hours ago (expired)", async () => {
    const expired = await signSession(TOKEN, { gen: 0 }, Date.now() - 13 * HOUR);
    expect(await verifySession(TOKEN, expired)).toBeNull();
  });

  it("refuses a tampered payload or MAC", async () => {
    const value = await signSession(TOKEN, { gen: 0 });
    expect(await verifySession(TOKEN, tamper(value, 1))).toBeNull();
    expect(await verifySession(TOKEN, tamper(value, 2))).toBeNull();
    // A payload with a later expiry, carrying the genuine MAC of the old one.
    const [, , mac] = value.split(".");
    const longer = btoa(JSON.stringify({ sid: "A".repeat(22), gen: 0, iat: Math.floor(Date.now() / 1000), exp: 9_999_999_999 })).replace(/=+$/, "");
    expect(await verifySession(TOKEN, `v2.${longer}.${mac}`)).toBeNull();
  });

  it("refuses a value signed with another admin token (rotating the token ends every session)", async () => {
    expect(await verifySession(TOKEN, await signSession(`${TOKEN}-old`, { gen: 0 }))).toBeNull();
  });

  it.each([
    "",
    "v1",
    "v1..",
    "v1.a.b.c",
    "v1.eyJpYXQiOjB9.AAAA",
    "v2.eyJpYXQiOjB9.AAAA",
    "v1.!!!.@@@",
    "v1.%E0%A4%A.AAAA",
    "v1.e30.AAAA",
    "v1.😀.😀",
    `v2.${"A".repeat(5000)}.AAAA`,
  ])("refuses the malformed value %j without throwing", async (value) => {
    await expect(verifySession(TOKEN, value)).resolves.toBeNull();
  });
});

describe("reading the Cookie header", () => {
  it("finds the session among other cookies", () => {
    expect(sessionCookieValue("a=1; hookrelay_session=v1.x.y; b=2")).toBe("v1.x.y");
    expect(sessionCookieValue('hookrelay_session="v1.x.y"')).toBe("v1.x.y");
  });

  it.each([null, undefined, "", ";;;", "=", "hookrelay_session", "xhookrelay_session=1", "%ZZ=%ZZ; ===", "\u0000\uffff"])(
    "finds none, without throwing, in %j",
    (header) => {
      expect(sessionCookieValue(header)).toBeNull();
    },
  );
});

describe("Set-Cookie", () => {
  it("is HttpOnly, SameSite=Strict, Path=/, Max-Age 12 h, Secure except on loopback", () => {
    const attrs = (header: string) => header.split(";").map((s) => s.trim());
    for (const url of ["https://hookrelay.example/login", "http://hookrelay.example/login", "http://10.0.0.1/login"]) {
      expect(attrs(sessionSetCookie("v1.x.y", url))).toEqual(["hookrelay_session=v1.x.y", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200", "Secure"]);
    }
    for (const url of ["http://localhost:8787/login", "http://127.0.0.1:8787/login", "http://[::1]:8787/login"]) {
      expect(attrs(sessionSetCookie("v1.x.y", url))).toEqual(["hookrelay_session=v1.x.y", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"]);
    }
    expect(attrs(sessionClearCookie("https://hookrelay.example/logout"))).toEqual(["hookrelay_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=0", "Secure"]);
  });
});
