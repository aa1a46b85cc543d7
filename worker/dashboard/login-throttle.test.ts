import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, loginForm, request } from "../../testing/workerd/login-session.ts";

let n = 0;
/** A fresh documentation address (TEST-NET-3) per call: each test has its own client. */
const address = () => `203.0.113.${(n += 1)}`;

function login(token: string, from: string, testEnv: Env = env): Promise<Response> {
  const form = loginForm({ token, next: "/" });
  return request("/login", { ...form, headers: { ...(form.headers as Record<string, string>), "CF-Connecting-IP": from } }, testEnv);
}

// The login form would otherwise take guesses as fast as they come (145/s were measured).
describe("POST /login slows repeated failures per client address", () => {
  it("answers the 6th rapid wrong login from one address 429 with Retry-After, even with the right token; another address is not affected", async () => {
    const [guesser, bystander] = [address(), address()];
    for (let i = 1; i <= 5; i++) expect((await login(`wrong-${i}`, guesser)).status).toBe(401);
    const sixth = await login("wrong-6", guesser);
    expect(sixth.status).toBe(429);
    expect(Number(sixth.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(sixth.headers.get("Set-Cookie")).toBeNull();
    expect(await sixth.text()).toContain("Too many");
    expect((await login(ADMIN_TOKEN, guesser)).status).toBe(429);

    expect((await login("wrong", bystander)).status).toBe(401);
    expect((await login(ADMIN_TOKEN, bystander)).status).toBe(303);
  });

  it("counts an IPv6 /64 as one client", async () => {
    const prefix = `2001:db8:${(n += 1).toString(16)}:1`;
    for (let i = 1; i <= 5; i++) expect((await login("wrong", `${prefix}::${i}`)).status).toBe(401);
    expect((await login("wrong", `${prefix}:0:0:0:ffff`)).status).toBe(429);
    expect((await login(ADMIN_TOKEN, `2001:db8:${(n += 1).toString(16)}::1`)).status).toBe(303);
  });

  it("forgets the failures of an address that then signs in", async () => {
    const from = address();
    for (let i = 1; i <= 4; i++) expect((await login("wrong", from)).status).toBe(401);
    expect((await login(ADMIN_TOKEN, from)).status).toBe(303);
    for (let i = 1; i <= 5; i++) expect((await login("wrong", from)).status).toBe(401);
    expect((await login("wrong", from)).status).toBe(429);
  });
});
