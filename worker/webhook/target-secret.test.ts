import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../app.ts";
import { ADMIN, api, helloAgent, hmacHex, jobsOf, postWebhook, pushPayload, SECRET, targetSecret, uniqueName } from "../../testing/workerd/worker-support.ts";

// The signature covers the body, not the URL: with one secret for every target, a delivery captured
// on one target would deploy its sha on any other. Each target has its own secret, derived.
describe("POST /webhook/:target: a signature opens one target", () => {
  it("refuses (401) a delivery captured on default and replayed byte for byte to another target with a fresh GUID; that target's own deliveries work", async () => {
    const other = uniqueName("other");
    const agent = await helloAgent(other, "web-1");
    const body = JSON.stringify(pushPayload({ after: "c".repeat(40) }));
    // Captured on default, signed with the configured secret as a single-target hook is.
    const captured = await postWebhook(null, body, { signWith: SECRET, delivery: crypto.randomUUID() });
    expect(captured.status).toBe(200);
    const replayed = await postWebhook(other, body, { signWith: SECRET, delivery: crypto.randomUUID() });
    expect(replayed.status).toBe(401);
    expect(await replayed.json()).toEqual({ error: "invalid signature" });
    expect(await jobsOf(other)).toEqual([]);

    const own = await postWebhook(other, JSON.stringify(pushPayload()), { signWith: await targetSecret(SECRET, other) });
    expect(own.status).toBe(202);
    expect(await jobsOf(other)).toHaveLength(1);
    agent.close();
  });

  it("refuses a delivery signed for one target on another, and on default", async () => {
    const [a, b] = [uniqueName("a"), uniqueName("b")];
    const signedForA = await targetSecret(SECRET, a);
    expect((await postWebhook(a, JSON.stringify(pushPayload()), { signWith: signedForA })).status).toBe(200);
    expect((await postWebhook(b, JSON.stringify(pushPayload()), { signWith: signedForA })).status).toBe(401);
    expect((await postWebhook(null, JSON.stringify(pushPayload()), { signWith: signedForA })).status).toBe(401);
  });

  it("verifies default (/webhook and /webhook/default) with the configured secret, as before, and with its derived one", async () => {
    for (const target of [null, "default"]) {
      expect((await postWebhook(target, JSON.stringify(pushPayload()), { signWith: SECRET })).status).toBe(200);
      expect((await postWebhook(target, JSON.stringify(pushPayload()), { signWith: await hmacHex("SHA-256", SECRET, "hookrelay-target:default") })).status).toBe(200);
    }
  });

  it("derives from every configured secret, so rotation still works for each target", async () => {
    const target = uniqueName();
    const rotated = { ...env, GITHUB_WEBHOOK_SECRET: "new-secret-0123456789, old-secret-0123456789" };
    const send = async (configured: string) =>
      (await postWebhook(target, JSON.stringify(pushPayload()), { signWith: await targetSecret(configured, target) }, rotated)).status;
    expect([await send("new-secret-0123456789"), await send("old-secret-0123456789"), await send(SECRET)]).toEqual([200, 200, 401]);
  });
});

describe("GET /api/targets/:target/webhook-secret", () => {
  it("answers the target's derived secret (from the first configured secret) behind the admin token", async () => {
    const target = uniqueName();
    const path = `/api/targets/${target}/webhook-secret`;
    expect((await app.request(path, {}, env)).status).toBe(401);
    expect((await app.request(path, { headers: { Authorization: "Bearer not-the-admin-token" } }, env)).status).toBe(401);
    const res = await api(path);
    expect(res.status).toBe(200);
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(await res.json()).toEqual({ target, secret: await hmacHex("SHA-256", SECRET, `hookrelay-target:${target}`) });

    const rotated = await app.request(path, { headers: ADMIN }, { ...env, GITHUB_WEBHOOK_SECRET: `new-secret-0123456789\n${SECRET}` });
    expect(await rotated.json()).toEqual({ target, secret: await hmacHex("SHA-256", "new-secret-0123456789", `hookrelay-target:${target}`) });
  });

  it("answers 500 naming GITHUB_WEBHOOK_SECRET when it is not set (fail closed), 404 for a bad target name", async () => {
    const res = await app.request(`/api/targets/t/webhook-secret`, { headers: ADMIN }, { ...env, GITHUB_WEBHOOK_SECRET: "" });
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("GITHUB_WEBHOOK_SECRET");
    expect((await api(`/api/targets/-bad-/webhook-secret`)).status).toBe(404);
  });
});
