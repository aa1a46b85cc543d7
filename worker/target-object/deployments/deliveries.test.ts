import { describe, expect, it } from "vitest";
import {
  disconnected,
  event,
  helloAgent,
  jobOf,
  jobsOf,
  pipeline,
  postWebhook,
  push,
  pushPayload,
  statusBecomes,
  uniqueName,
} from "../../../testing/workerd/worker-support.ts";

describe("Target DO: matching and deliveries", () => {
  it("creates a job for a matching push once an agent has said hello, and sends it to the agent", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1", [pipeline({ branches: ["release/**", "master"] })]);
    const { status, body } = await push(target, { repository: { full_name: "OWNER/oldmaninfo_flask" } });
    expect(status).toBe(202);
    expect(body.jobs).toEqual([{ id: expect.any(String), agent: "web-1", pipeline: "app", status: "queued" }]);
    const job = await agent.next("job");
    expect(job).toMatchObject({ jobId: body.jobs[0]!.id, pipeline: "app", ref: "refs/heads/master", sha: "b".repeat(40), before: "a".repeat(40), pusher: "octocat", event: "push" });
    expect((await push(target, { ref: "refs/heads/release/1.2" })).status).toBe(202);
    expect((await push(target, { ref: "refs/heads/dev" })).body.ignored).toBe("no pipeline for push to refs/heads/dev of owner/OldManInfo_Flask");
    expect((await push(target, { repository: { full_name: "owner/other" } })).status).toBe(200);
    agent.close();
  });

  it("answers a duplicate delivery with the first answer and creates no second job", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const first = await push(target, {}, "dup-1");
    const again = await push(target, {}, "dup-1");
    expect(first.status).toBe(202);
    expect(again).toEqual(first);
    expect(await jobsOf(target)).toHaveLength(1);
    // Same GUID under another hook id is another delivery (GitHub shares GUIDs across hooks).
    const otherHook = await postWebhook(target, JSON.stringify(pushPayload()), { delivery: "dup-1", hookId: "999" });
    expect(otherHook.status).toBe(202);
    agent.close();
  });

  it("matches against stored pipelines while the agent is offline, and sends the job when it reconnects", async () => {
    const target = uniqueName();
    await disconnected(target, await helloAgent(target, "web-1"));
    const { status, body } = await push(target);
    expect(status).toBe(202);
    const again = await helloAgent(target, "web-1");
    expect((await again.next("job")).jobId).toBe(body.jobs[0]!.id);
    again.close();
  });

  it("supersedes an older queued job of the same agent and pipeline that was not sent yet", async () => {
    const target = uniqueName();
    await disconnected(target, await helloAgent(target, "web-1"));
    const first = await push(target);
    const second = await push(target, { after: "c".repeat(40) });
    const older = await jobOf(target, first.body.jobs[0]!.id);
    expect(older.status).toBe("superseded");
    expect(older.steps.every((s) => s.status === "skipped")).toBe(true);
    expect((await jobOf(target, second.body.jobs[0]!.id)).status).toBe("queued");
  });

  it("does not supersede a job already sent to the agent; the next one waits its turn", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const first = await push(target);
    await agent.next("job");
    const second = await push(target);
    expect((await jobOf(target, first.body.jobs[0]!.id)).status).toBe("queued");
    agent.send({ type: "accepted", jobId: first.body.jobs[0]!.id });
    await statusBecomes(target, first.body.jobs[0]!.id, "running");
    agent.send(event(first.body.jobs[0]!.id, 1, { kind: "job-end", status: "succeeded" }));
    expect((await agent.next("job")).jobId).toBe(second.body.jobs[0]!.id);
    agent.close();
  });
});
