import { describe, expect, it } from "vitest";
import { api, event, eventually, helloAgent, postWebhook, pushPayload, uniqueName } from "../test-support.ts";

describe("GET …/jobs/:id/log?follow=1", () => {
  it("streams the log as server-sent events while the job runs and ends with an end event", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const res = await postWebhook(target, JSON.stringify(pushPayload()));
    const id = ((await res.json()) as { jobs: { id: string }[] }).jobs[0]!.id;
    await agent.next("job");
    agent.send({ type: "accepted", jobId: id });
    agent.send(event(id, 1, { kind: "step-start", step: "fetch" }));
    agent.send(event(id, 2, { kind: "output", step: "fetch", stream: "stdout", data: "one\ntwo\n" }));
    await agent.next("ack");
    await agent.next("ack");

    const follow = await api(`/api/targets/${target}/jobs/${id}/log?follow=1`);
    expect(follow.headers.get("Content-Type")).toContain("text/event-stream");
    const reader = follow.body!.pipeThrough(new TextDecoderStream()).getReader();
    let received = "";
    const readUntil = async (needle: string) => {
      await eventually(async () => {
        if (received.includes(needle)) return true;
        const { value, done } = await reader.read();
        if (value) received += value;
        return done || received.includes(needle);
      }, needle, 5000);
    };
    await readUntil("data: two");
    expect(received).toContain("id: 2\nevent: log\ndata: --- fetch\ndata: one\ndata: two\ndata: \n\n");

    agent.send(event(id, 3, { kind: "step-end", step: "fetch", status: "succeeded", exitCode: 0 }));
    agent.send(event(id, 4, { kind: "job-end", status: "succeeded" }));
    await readUntil("event: end");
    expect(received).toContain("data: --- job succeeded");
    expect(received.trimEnd().endsWith('event: end\ndata: {"lastSeq":4}')).toBe(true);
    agent.close();
  });

  it("answers 404 for an unknown job", async () => {
    expect((await api(`/api/targets/${uniqueName()}/jobs/nope/log?follow=1`)).status).toBe(404);
  });
});
