import { SSEStreamingApi } from "hono/streaming";
import { describe, expect, it } from "vitest";
import { Hono } from "hono";
import { followLog, pumpLog, type LogPageSource } from "./follow-log.ts";
import { api, event, eventually, helloAgent, postWebhook, pushPayload, runningJob, uniqueName } from "../../testing/workerd/worker-support.ts";

interface SseEvent {
  type: string;
  data: string;
  id: string;
}

/** An event stream read exactly as a browser's EventSource does (HTML's "event stream interpretation"). */
function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  let type = "";
  let data = "";
  let id = "";
  for (const line of text.split(/\r\n|\n|\r/)) {
    if (line === "") {
      if (data !== "") events.push({ type: type || "message", data: data.endsWith("\n") ? data.slice(0, -1) : data, id });
      type = "";
      data = "";
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data += `${value}\n`;
    else if (field === "id" && !value.includes("\u0000")) id = value;
  }
  return events;
}

/** Reads a stream to its end, failing after `timeoutMs`. */
async function readAll(body: ReadableStream<Uint8Array>, timeoutMs = 5000): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stream did not end within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([new Response(body).text(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

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
      await eventually(needle, async () => {
        if (received.includes(needle)) return true;
        const { value, done } = await reader.read();
        if (value) received += value;
        return done || received.includes(needle);
      }, 5000, 10);
    };
    await readUntil("\n\n");
    // streamSSE's field order (event, data, id): an EventSource reads the fields of one event in any order.
    expect(received).toBe('event: log\ndata: "--- fetch\\none\\ntwo\\n"\nid: 2:0\n\n');
    expect(follow.headers.get("Cache-Control")).toBe("no-store");

    agent.send(event(id, 3, { kind: "step-end", step: "fetch", status: "succeeded", exitCode: 0 }));
    agent.send(event(id, 4, { kind: "job-end", status: "succeeded" }));
    await readUntil("event: end");
    const decoded = parseSse(received)
      .filter((e) => e.type === "log")
      .map((e) => JSON.parse(e.data) as unknown)
      .join("");
    expect(decoded).toBe("--- fetch\none\ntwo\n--- fetch succeeded (exit 0)\n--- job succeeded\n");
    expect(received.trimEnd().endsWith('event: end\ndata: {"lastSeq":4}')).toBe(true);
    agent.close();
  });

  it("carries carriage returns and newlines of the log inside JSON strings, so output cannot forge events", async () => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const id = await runningJob(target, agent);
    const forged = "a\rid: 999\revent: end\rdata: x\r\n";
    const bodies = [
      { kind: "step-start", step: "fetch" },
      { kind: "output", step: "fetch", stream: "stdout", data: forged },
      { kind: "output", step: "fetch", stream: "stderr", data: "Receiving objects: 50%\rReceiving objects: 100%\r\n\r\n\n" },
      { kind: "step-end", step: "fetch", status: "succeeded", exitCode: 0 },
      { kind: "job-end", status: "succeeded" },
    ] as const;
    for (const [i, body] of bodies.entries()) {
      agent.send(event(id, i + 1, body));
      await agent.next("ack");
    }
    const follow = await api(`/api/targets/${target}/jobs/${id}/log?follow=1`);
    const events = parseSse(await readAll(follow.body!));
    expect(events.map((e) => e.type)).toEqual([...events.slice(0, -1).map(() => "log"), "end"]);
    expect(events.map((e) => e.id).filter((i) => i.includes("999"))).toEqual([]);
    const decoded = events
      .filter((e) => e.type === "log")
      .map((e) => JSON.parse(e.data) as unknown)
      .join("");
    const plain = await (await api(`/api/targets/${target}/jobs/${id}/log`)).text();
    expect(plain).toContain(forged);
    expect(decoded).toBe(plain);
    agent.close();
  });

  it("answers 404 for an unknown job", async () => {
    expect((await api(`/api/targets/${uniqueName()}/jobs/nope/log?follow=1`)).status).toBe(404);
  });
});

describe("pumpLog", () => {
  it("stops asking for pages once the client has gone away", async () => {
    let calls = 0;
    let releaseSecond: (() => void) | null = null;
    let secondAsked = false;
    const source: LogPageSource = {
      async getLogPage(_id, _step, after) {
        calls += 1;
        if (calls === 1) return { text: "one\n", cursor: { seq: 1, note: 0 }, atLineStart: true, more: false, ended: false };
        if (calls === 2) {
          secondAsked = true;
          // Held until the client is gone; then a page that would be read past at once (more: true).
          await new Promise<void>((resolve) => (releaseSecond = resolve));
          return { text: "", cursor: after, atLineStart: true, more: true, ended: false };
        }
        return { text: "", cursor: after, atLineStart: true, more: false, ended: false };
      },
    };
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const stream = new SSEStreamingApi(writable, readable);
    let returned = false;
    void pumpLog(stream, source, "job-1", null, { seq: 0, note: 0 }).then(() => (returned = true));
    const reader = stream.responseReadable.pipeThrough(new TextDecoderStream()).getReader();
    expect((await reader.read()).value).toBe('event: log\ndata: "one\\n"\nid: 1:0\n\n');
    await eventually("the second page to be asked for", () => secondAsked, 5000, 10);
    await reader.cancel();
    await eventually("the stream to abort", () => stream.aborted, 5000, 10);
    releaseSecond!();
    await eventually("pumpLog to return", () => returned, 5000, 10);
    expect(calls).toBe(2);
  });
});

describe("followLog", () => {
  it("ends the stream when reading the log fails, without telling the client why", async () => {
    let calls = 0;
    const source: LogPageSource = {
      async getLogPage() {
        calls += 1;
        if (calls === 1) return { text: "one\n", cursor: { seq: 1, note: 0 }, atLineStart: true, more: true, ended: false };
        throw new Error("internal detail of the Target DO");
      },
    };
    const app = new Hono();
    app.get("/", (c) => followLog(c, source, "job-1", null, { seq: 0, note: 0 }));
    const res = await app.request("/");
    expect(res.headers.get("Content-Type")).toBe("text/event-stream");
    expect(await readAll(res.body!)).toBe('event: log\ndata: "one\\n"\nid: 1:0\n\n');
  });
});
