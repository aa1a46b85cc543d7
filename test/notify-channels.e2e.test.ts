/**
 * End to end, issue 23 item 2: a notification being retried stays with the URL it was queued for.
 * The real worker (wrangler dev) is restarted on the same storage with NOTIFY_URLS reordered; the
 * pending retry must reach its own receiver and never the other one (channels are keyed by a hash of
 * the URL, not by its position in the list).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, waitForAgent, waitForDeployment } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { startWorker, type WorkerProcess } from "../dev/worker-process.ts";
import { type NotifyReceiver, startNotifyReceiver } from "../testing/notify-receiver.ts";
import { push } from "../testing/push.ts";

const TARGET = "chat";
const REPO = "acme/chat";
const secret = `whsec_${randomBytes(32).toString("base64")}`;

let teamA: NotifyReceiver;
let teamB: NotifyReceiver;
let worker: WorkerProcess | undefined;
let agent: AgentProcess | undefined;

beforeAll(async () => {
  teamA = await startNotifyReceiver({ secret });
  teamB = await startNotifyReceiver({ secret });
});

afterAll(async () => {
  await agent?.stop();
  await worker?.stop();
  await teamA?.close();
  await teamB?.close();
});

const start = (urls: string[], from?: WorkerProcess) =>
  startWorker({
    vars: { REPORT_RETRY_SECONDS: "1" },
    secrets: { NOTIFY_URLS: urls.join(","), NOTIFY_SECRET: secret },
    ...(from ? { persistTo: from.persistTo, port: from.port } : {}),
  });

const about = (r: NotifyReceiver, id: string) => r.received.filter((n) => n.body.includes(id));

describe("a pending notification after NOTIFY_URLS changes", () => {
  it("is retried to the URL it was queued for, never to the one that took its place in the list", async () => {
    const a = teamA.standardUrl("hooks/team-a");
    const b = teamB.standardUrl("hooks/team-b");
    teamA.failNext(1000, { status: 500 });
    worker = await start([a, b]);
    agent = await startAgent({
      server: worker.url, target: TARGET, name: "web-1",
      pipelines: [{ name: "app", repo: REPO, branches: ["main"], workdir: mkdtempSync(join(tmpdir(), "hookrelay-chat-")), timeout: "1m", steps: [{ name: "ok", run: "true" }] }],
    });
    await waitForAgent(worker.url, TARGET, "web-1");
    const res = await push(worker.url, TARGET, REPO, "c".repeat(40));
    expect(res.status).toBe(202);
    const id: string = res.body.deployments[0].id;
    expect((await waitForDeployment(worker.url, TARGET, id)).status).toBe("succeeded");
    await eventually("team B told, team A's notification retrying", async () => {
      const d = (await api(worker!.url, `/api/targets/${TARGET}/deployments/${id}`)).body;
      const retrying = d.reports.some((r: any) => r.state === "retrying");
      return retrying && about(teamB, id).some((n) => n.status === 200) && about(teamA, id).length > 0 ? true : undefined;
    }, 30_000, 100);

    // The worker redeployed with the list reordered: index 0 is now team B's URL.
    await worker.stop();
    teamA.stopFailing();
    worker = await start([b, a], worker);
    await eventually("the retry delivered somewhere", async () => (about(teamA, id).some((n) => n.status === 200) || about(teamB, id).length > 1 ? true : undefined), 30_000, 100);
    expect(about(teamB, id)).toHaveLength(1);
    expect(about(teamA, id).filter((n) => n.status === 200)).toHaveLength(1);
    const delivered = about(teamA, id).find((n) => n.status === 200)!;
    expect(delivered.problems).toEqual([]);
    expect(delivered.event).toMatchObject({ type: "deployment.succeeded", data: { deployment: id } });
  }, 120_000);
});
