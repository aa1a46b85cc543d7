import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { uniqueName } from "../../testing/workerd/worker-support.ts";
import { armAfterDelivery, UNSENT_GRACE_MS } from "./alarm.ts";
import { alarmSettings } from "./deadline-settings.ts";

const settings = alarmSettings({});
const NOW = 1_900_000_000_000;
const facts = (o: Partial<{ reporting: boolean; severalHosts: boolean; agents: string[] }> = {}) => ({ reporting: false, severalHosts: false, agents: ["web-1"], ...o });

/** A fresh DO's storage: its alarm cleared, `web-1` connected (idle) or not, and one finished job (a retention deadline). */
async function withStorage<T>(connected: boolean, fn: (storage: DurableObjectStorage) => Promise<T>): Promise<T> {
  return runInDurableObject(env.TARGET.getByName(uniqueName()), async (_, state) => {
    const sql = state.storage.sql;
    await state.storage.deleteAlarm();
    sql.exec(
      "INSERT INTO agents (name, version, pipelines, connected, conn_id, connected_at, last_seen_at, disconnected_at) VALUES ('web-1', 't', '[]', ?, 'c', ?, ?, ?)",
      connected ? 1 : 0, NOW - 1000, NOW - 1000, connected ? null : NOW - 1000,
    );
    sql.exec(
      `INSERT INTO jobs (id, agent, pipeline, delivery, hook_id, event, repo, ref, sha, before, pusher, status, created_at, finished_at)
       VALUES ('old', 'web-1', 'app', 'd', '1', 'push', 'o/r', 'refs/heads/main', ?, ?, 'me', 'succeeded', ?, ?)`,
      "b".repeat(40), "a".repeat(40), NOW - 1000, NOW - 1000,
    );
    return fn(state.storage);
  });
}

describe("armAfterDelivery: the alarm after a push made jobs", () => {
  it("derives it in full when reports were queued or a deployment spans several hosts", async () => {
    for (const f of [facts({ reporting: true }), facts({ severalHosts: true })]) {
      const { how, alarm } = await withStorage(true, async (storage) => ({ how: await armAfterDelivery(storage, settings, f, NOW), alarm: await storage.getAlarm() }));
      expect(how).toBe("derived");
      expect(alarm).toBe(NOW - 1000 + settings.retentionMs); // the finished job's retention: no dispatch net here
    }
  });

  it("sets only the dispatch net for an idle connected agent, and keeps an alarm due sooner", async () => {
    const net = await withStorage(true, async (storage) => ({ how: await armAfterDelivery(storage, settings, facts(), NOW), alarm: await storage.getAlarm() }));
    expect(net).toEqual({ how: "net", alarm: NOW + UNSENT_GRACE_MS });
    const sooner = await withStorage(true, async (storage) => {
      await storage.setAlarm(NOW + 500);
      return { how: await armAfterDelivery(storage, settings, facts(), NOW), alarm: await storage.getAlarm() };
    });
    expect(sooner).toEqual({ how: "net", alarm: NOW + 500 });
  });

  it("keeps an alarm due before retention for an offline agent's job, and derives one when there is none", async () => {
    const kept = await withStorage(false, async (storage) => {
      await storage.setAlarm(NOW + 60_000);
      return { how: await armAfterDelivery(storage, settings, facts(), NOW), alarm: await storage.getAlarm() };
    });
    expect(kept).toEqual({ how: "kept", alarm: NOW + 60_000 });
    const none = await withStorage(false, async (storage) => ({ how: await armAfterDelivery(storage, settings, facts(), NOW), alarm: await storage.getAlarm() }));
    expect(none).toEqual({ how: "derived", alarm: NOW - 1000 + settings.retentionMs });
  });
});
