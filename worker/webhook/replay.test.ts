import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { disconnected, helloAgent, jobOf, postWebhook, pushPayload, SHA_B, uniqueName } from "../../testing/workerd/worker-support.ts";

// The signature covers the body only: X-GitHub-Delivery and X-GitHub-Hook-ID can be anything a
// replayer likes. So the body itself is a dedupe key, and a push older than RETENTION_DAYS is stale.
const DAY_S = 86_400;
const nowS = () => Math.floor(Date.now() / 1000);
const jobCount = async (target: string) => (await env.TARGET.getByName(target).listJobs(50)).length;

describe("POST /webhook: a captured body replayed", () => {
  it("answers a replay under a fresh delivery GUID with the first answer and creates no job; a redelivery (same GUID) too", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const body = JSON.stringify(pushPayload({ repository: { full_name: "owner/OldManInfo_Flask", pushed_at: nowS() } }));
    const first = await postWebhook(target, body, { delivery: "guid-1" });
    expect(first.status).toBe(202);
    const firstBody = await first.json();
    const redelivery = await postWebhook(target, body, { delivery: "guid-1" });
    const replay = await postWebhook(target, body, { delivery: "guid-2", hookId: "777" });
    expect([redelivery.status, replay.status]).toEqual([202, 202]);
    expect(await redelivery.json()).toEqual(firstBody);
    expect(await replay.json()).toEqual(firstBody);
    expect(await jobCount(target)).toBe(1);
    agent.close();
  });

  it("does not let a replayed older push supersede a newer queued one", async () => {
    const target = uniqueName();
    await disconnected(target, await helloAgent(target, "web-1"));
    const old = JSON.stringify(pushPayload({ after: SHA_B }));
    const first = await postWebhook(target, old);
    const newer = await postWebhook(target, JSON.stringify(pushPayload({ before: SHA_B, after: "c".repeat(40) })));
    const firstBody = (await first.json()) as { jobs: { id: string }[] };
    const newerBody = (await newer.json()) as { jobs: { id: string }[] };
    const replay = await postWebhook(target, old);
    expect(replay.status).toBe(first.status);
    expect(await replay.json()).toEqual(firstBody);
    expect((await jobOf(target, newerBody.jobs[0]!.id)).status).toBe("queued");
    expect((await jobOf(target, firstBody.jobs[0]!.id)).status).toBe("superseded");
    expect(await jobCount(target)).toBe(2);
  });

  it.each([
    ["a Unix time in seconds", (s: number) => s],
    ["an ISO string", (s: number) => new Date(s * 1000).toISOString()],
  ])("ignores a push whose repository.pushed_at (%s) is older than RETENTION_DAYS, and creates no job", async (_what, form) => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const pushedAt = nowS() - 31 * DAY_S;
    const res = await postWebhook(target, JSON.stringify(pushPayload({ repository: { full_name: "owner/OldManInfo_Flask", pushed_at: form(pushedAt) } })), {
      delivery: "stale-1",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      delivery: "stale-1",
      jobs: [],
      ignored: `stale delivery: pushed_at ${new Date(pushedAt * 1000).toISOString()} is older than RETENTION_DAYS (30 days)`,
    });
    expect(await jobCount(target)).toBe(0);
    agent.close();
  });

  it("takes the age limit from RETENTION_DAYS; a redelivery of a push accepted before still gets its first answer", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const body = JSON.stringify(pushPayload({ repository: { full_name: "owner/OldManInfo_Flask", pushed_at: nowS() - 8 * DAY_S } }));
    const first = await postWebhook(target, body, { delivery: "week-old" });
    expect(first.status).toBe(202);
    const firstBody = await first.json();
    const weekly = { ...env, RETENTION_DAYS: "7" };
    const again = await postWebhook(target, body, { delivery: "week-old" }, weekly);
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual(firstBody);
    const other = JSON.stringify(pushPayload({ after: "d".repeat(40), repository: { full_name: "owner/OldManInfo_Flask", pushed_at: nowS() - 8 * DAY_S } }));
    const stale = await postWebhook(target, other, {}, weekly);
    expect(stale.status).toBe(200);
    expect(((await stale.json()) as { ignored: string }).ignored).toMatch(/^stale delivery: .* older than RETENTION_DAYS \(7 days\)$/);
    // Missing or not a time: not judged stale (the body hash still stops a replay while its record lives).
    for (const [i, pushedAt] of [undefined, "last tuesday", true].entries()) {
      const undated = JSON.stringify(pushPayload({ after: String(i).repeat(40), repository: { full_name: "owner/OldManInfo_Flask", pushed_at: pushedAt } }));
      expect((await postWebhook(target, undated, {}, weekly)).status).toBe(202);
    }
    expect(await jobCount(target)).toBe(4);
    agent.close();
  });
});
