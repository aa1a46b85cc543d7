/**
 * For tests: a real WebSocket server on a free port playing the worker's (Target DO's) side of the
 * protocol — welcome, resume from what it stored, store-in-order + ack, pong — with switches to
 * misbehave (reject the token, stop answering, hold acks). Frames the agent sends are validated
 * with the shared parsers, like the real DO does; a binary output frame's bytes are kept decoded,
 * event by event, as the DO's log reads them.
 */
import type { IncomingHttpHeaders } from "node:http";
import { WebSocket, WebSocketServer } from "ws";
import { type AgentMessage, type JobEventBody, parseAgentBinaryFrame, parseAgentMessage, PROTOCOL_VERSION, type WorkerMessage } from "../shared/protocol.ts";

export interface StoredEvent {
  seq: number;
  body: JobEventBody;
}

export interface FakeAgentSocket {
  ws: WebSocket;
  headers: IncomingHttpHeaders;
  url: string;
  /** Every valid frame received on this socket, in order. */
  messages: AgentMessage[];
  /** Every frame as received: text as it was, a binary frame's bytes as UTF-8 (to search for what must not be there). */
  raw: string[];
  send(message: WorkerMessage | string): void;
}

export interface FakeWorker {
  url: string;
  /** Upgrade requests seen (accepted or rejected). */
  attempts: number;
  sockets: FakeAgentSocket[];
  /** Per job, the events stored in seq order (as the DO would). */
  events: Map<string, StoredEvent[]>;
  accepted: string[];
  invalid: string[];
  /** Answer upgrades with this HTTP status instead of accepting them. */
  rejectWith: number | null;
  /** When false, received frames get no answer at all (no pong, no ack): a dead peer. */
  responsive: boolean;
  /** When false, events are stored but not acked. */
  acking: boolean;
  /** Sent after `welcome` on each connection. */
  onHello: ((socket: FakeAgentSocket) => void) | null;
  latest(): FakeAgentSocket | undefined;
  ackedSeq(jobId: string): number;
  jobEnd(jobId: string): JobEventBody | undefined;
  /** The job's output text (step null included unless a step is given). */
  output(jobId: string, step?: string | null): string;
  close(): Promise<void>;
}

export async function startFakeWorker(): Promise<FakeWorker> {
  const fake: FakeWorker = {
    url: "",
    attempts: 0,
    sockets: [],
    events: new Map(),
    accepted: [],
    invalid: [],
    rejectWith: null,
    responsive: true,
    acking: true,
    onHello: null,
    latest: () => fake.sockets.at(-1),
    ackedSeq: (jobId) => fake.events.get(jobId)?.length ?? 0,
    jobEnd: (jobId) => fake.events.get(jobId)?.find((e) => e.body.kind === "job-end")?.body,
    output: (jobId, step) =>
      (fake.events.get(jobId) ?? [])
        .flatMap((e) => (e.body.kind === "output" && (step === undefined || e.body.step === step) ? [e.body.data] : []))
        .join(""),
    close: async () => {
      for (const s of fake.sockets) s.ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
  const wss = new WebSocketServer({
    port: 0,
    host: "127.0.0.1",
    verifyClient: (_info, done) => {
      fake.attempts++;
      if (fake.rejectWith !== null) done(false, fake.rejectWith);
      else done(true);
    },
  });
  wss.on("error", () => {});
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const address = wss.address();
  if (!address || typeof address === "string") throw new Error("fake worker: unexpected address");
  fake.url = `ws://127.0.0.1:${address.port}`;

  wss.on("connection", (ws, req) => {
    ws.on("error", () => {});
    const socket: FakeAgentSocket = {
      ws,
      headers: req.headers,
      url: req.url ?? "",
      messages: [],
      raw: [],
      send: (m) => ws.send(typeof m === "string" ? m : JSON.stringify(m)),
    };
    fake.sockets.push(socket);
    ws.on("message", (data, isBinary) => {
      if (!fake.responsive) return;
      const text = (data as Buffer).toString("utf8");
      if (!isBinary && text === "ping") return ws.send("pong");
      socket.raw.push(text);
      const parsed = isBinary ? parseAgentBinaryFrame(data as Buffer) : parseAgentMessage(text);
      if (!parsed.ok) {
        fake.invalid.push(parsed.error);
        return;
      }
      const m = parsed.message;
      if (m.type === "event" && m.body.kind === "output" && typeof m.body.data !== "string") m.body.data = new TextDecoder("utf-8", { ignoreBOM: true }).decode(m.body.data);
      socket.messages.push(m);
      switch (m.type) {
        case "hello":
          socket.send({ type: "welcome", protocol: PROTOCOL_VERSION, target: "default", agent: m.agent });
          for (const u of m.unfinished) socket.send({ type: "resume", jobId: u.jobId, ackedSeq: fake.ackedSeq(u.jobId) });
          fake.onHello?.(socket);
          return;
        case "accepted":
          fake.accepted.push(m.jobId);
          return;
        case "event": {
          const stored = fake.events.get(m.jobId) ?? [];
          fake.events.set(m.jobId, stored);
          if (m.seq === stored.length + 1) stored.push({ seq: m.seq, body: m.body });
          if (fake.acking && stored.length > 0 && m.seq <= stored.length) socket.send({ type: "ack", jobId: m.jobId, seq: stored.length });
          return;
        }
        case "error":
          return;
      }
    });
  });
  return fake;
}

export const SHA_A = "a".repeat(40);
export const SHA_B = "b".repeat(40);

export function jobMessage(jobId: string, overrides: Partial<Extract<WorkerMessage, { type: "job" }>> = {}): WorkerMessage {
  return {
    type: "job",
    jobId,
    pipeline: "app",
    delivery: `delivery-${jobId}`,
    event: "push",
    repo: "owner/app",
    ref: "refs/heads/main",
    sha: SHA_A,
    before: SHA_B,
    pusher: "octocat",
    ...overrides,
  };
}
