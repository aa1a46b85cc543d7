import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../app.ts";
import { ADMIN, postWebhook, pushPayload, SECRET, uniqueName } from "../../testing/workerd/worker-support.ts";

const request = (path: string, init: RequestInit = {}) => app.request(path, init, env);

function expectHardened(res: Response): void {
  expect(res.headers.get("Cache-Control")).toBe("no-store");
  expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
}

describe("answers of /api and /webhook are neither cached nor sniffed", () => {
  it.each([
    ["an API answer", () => request(`/api/targets/${uniqueName()}/jobs`, { headers: ADMIN }), 200],
    ["a 401 without the admin token", () => request(`/api/targets/${uniqueName()}/jobs`), 401],
    ["a 404 for an unknown job", () => request(`/api/targets/${uniqueName()}/jobs/nope`, { headers: ADMIN }), 404],
    ["a 404 for no such API route", () => request("/api/nothing-here", { headers: ADMIN }), 404],
    ["a 400 for a bad deploy request", () => request(`/api/targets/${uniqueName()}/deploy`, { method: "POST", headers: ADMIN, body: "{" }), 400],
    ["a job log (text)", () => request(`/api/targets/${uniqueName()}/jobs/nope/log`, { headers: ADMIN }), 404],
    ["a webhook ping", () => postWebhook(uniqueName(), JSON.stringify({ hook_id: 1 }), { event: "ping" }), 200],
    ["a webhook on /webhook itself", () => postWebhook(null, JSON.stringify({ hook_id: 1 }), { event: "ping" }), 200],
    ["a webhook push", () => postWebhook(uniqueName(), JSON.stringify(pushPayload())), 200],
    ["a webhook 401", () => postWebhook(uniqueName(), "{}", { secret: `not ${SECRET}` }), 401],
    ["a webhook 404 for a bad target name", () => postWebhook("..bad..", "{}"), 404],
  ])("sets Cache-Control: no-store and X-Content-Type-Options: nosniff on %s", async (_what, send, status) => {
    const res = await send();
    expect(res.status).toBe(status);
    expectHardened(res);
  });
});
