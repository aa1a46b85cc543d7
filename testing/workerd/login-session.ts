/** Helpers for tests of the session cookie (inside workerd): a real sign-in through the app. */
import { env } from "cloudflare:workers";
import { app } from "../../worker/app.ts";
import { sessionSetCookie } from "../../worker/http/login-session.ts";

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";
export const ORIGIN = "https://hookrelay.example";

export function request(url: string, init: RequestInit = {}, testEnv: Env = env): Promise<Response> {
  return Promise.resolve(app.request(url.startsWith("/") ? `${ORIGIN}${url}` : url, init, testEnv));
}

export function loginForm(fields: Record<string, string>): RequestInit {
  return { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: ORIGIN }, body: new URLSearchParams(fields).toString() };
}

/** Signs in with the admin token through POST /login; the `Cookie` header value it earned. */
export async function signIn(origin = ORIGIN, testEnv: Env = env): Promise<string> {
  const res = await request(`${origin}/login`, loginForm({ token: testEnv.ADMIN_TOKEN, next: "/" }), testEnv);
  const setCookie = res.headers.get("Set-Cookie");
  if (res.status !== 303 || setCookie === null) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
  return setCookie.split(";")[0]!;
}

/** A cookie built with the module's own signer (generation 0): `nowMs` in the past makes an expired one. */
export async function cookieSignedWith(adminToken: string, nowMs: number = Date.now()): Promise<string> {
  return (await sessionSetCookie(adminToken, { gen: 0 }, ORIGIN, nowMs)).split(";")[0]!;
}

/** The signed-in cookie with its payload changed by one character. */
export function tampered(cookie: string): string {
  const [name, value] = cookie.split("=") as [string, string];
  const parts = value.split(".");
  parts[1] = (parts[1]![0] === "A" ? "B" : "A") + parts[1]!.slice(1);
  return `${name}=${parts.join(".")}`;
}
