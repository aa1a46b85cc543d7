/**
 * A protocol-level agent for fleet tests and the fleet benchmark (bench/fleet.ts): many of them in one
 * process stand in for many servers on one target. Each speaks protocol 3 as the real agent does — on
 * the agent's own Connection (agent/runtime/connection.ts: its heartbeat `ping`s, its reconnect backoff
 * with jitter, its handling of 401 and of a replaced connection), with its own registered token — and
 * runs no commands: a job is `accepted`, then for each declared step `step-start`, the step's output
 * (binary frames, as the agent sends it), `step-end`, and at last `job-end`, each event with its seq.
 * Events are kept until the worker acks them; a reconnect's hello lists the jobs not acked to the end,
 * and `resume` re-sends from the worker's acked seq, as the agent's spool does (here in memory).
 *
 * Each job writes down when its first step started and its last step ended (wall-clock ns, comparable
 * with `date +%s%N` in a real agent's step) and what it printed, so a benchmark reads boundaries and
 * checks that every host's stored log is whole.
 */
import { encodeOutputFrame, type JobEventBody, parseWorkerMessage, PROTOCOL_VERSION, type PipelineDecl, type WorkerMessage } from "../shared/protocol.ts";
import { Connection, type Link } from "../agent/runtime/connection.ts";
import { type BackoffOptions, DEFAULT_BACKOFF } from "../agent/runtime/backoff.ts";
import { DEFAULTS } from "../agent/common/config.ts";
import { memoryLogger } from "../agent/common/logger.ts";
import { AGENT_VERSION } from "../agent/common/version.ts";

export interface FleetAgentOptions {
  /** The worker's http(s) URL (the socket goes to its ws(s) twin). */
  server: string;
  target: string;
  name: string;
  /** This agent's own token (POST /api/targets/:t/agents). */
  token: string;
  /** What hello declares: the same declaration a real agent of the fleet sends (job-server.ts pipelineDecls). */
  pipelines: PipelineDecl[];
  /** How long each step "runs" (ms) between its step-start and its step-end. Default 20. */
  stepMs?: number;
  /** The output of a step on this host (default: `outputOf`). */
  output?: (host: string, step: string) => string;
  /** Default: the agent's (30 s). */
  heartbeatMs?: number;
  /** Default: the agent's (DEFAULT_BACKOFF: 0.5 s doubling to 30 s, jittered). */
  backoff?: BackoffOptions;
}

/** What a step prints on a host unless told otherwise: a few lines naming both, so a log mixed up between hosts shows. */
export function outputOf(host: string, step: string): string {
  return Array.from({ length: 5 }, (_, i) => `${host} ${step} line ${i + 1}\n`).join("");
}

/** One job as this agent ran it: when its first step started and its last ended (ns), and what each step printed. */
export interface FleetJob {
  jobId: string;
  pipeline: string;
  startNs: bigint | null;
  endNs: bigint | null;
  status: "running" | "succeeded" | "failed";
  output: Map<string, string>;
  /** The highest seq the worker acked, and the seq of this job's last event once written. */
  ackedSeq: number;
  lastSeq: number | null;
}

interface Frame {
  seq: number;
  data: string | Uint8Array;
}

export function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

const encoder = new TextEncoder();

export class FleetAgent {
  readonly name: string;
  readonly jobs = new Map<string, FleetJob>();
  /** Hellos the worker welcomed (one per connection it took), and when the last one came (performance.now()). */
  welcomes = 0;
  welcomedAt: number | null = null;
  /** Error frames from the worker, as `code: message`. */
  readonly errors: string[] = [];
  private readonly o: FleetAgentOptions;
  private readonly connection: Connection;
  private readonly log = memoryLogger();
  private link: Link | null = null;
  private welcomed = false;
  private busy: string | null = null;
  /** Per job, the events the worker has not acked yet. */
  private readonly unacked = new Map<string, Frame[]>();

  constructor(o: FleetAgentOptions) {
    this.o = o;
    this.name = o.name;
    this.connection = new Connection({
      server: o.server.replace(/^http/, "ws"),
      target: o.target,
      agent: o.name,
      token: o.token,
      heartbeatMs: o.heartbeatMs ?? DEFAULTS.heartbeatMs,
      backoff: o.backoff ?? DEFAULT_BACKOFF,
      log: this.log,
      onOpen: (link) => this.onOpen(link),
      onFrame: (text, link) => this.onFrame(text, link),
      onClose: (link) => {
        if (this.link === link) {
          this.link = null;
          this.welcomed = false;
        }
      },
    });
  }

  /** Whether the worker welcomed this agent on its current connection. */
  get connected(): boolean {
    return this.welcomed && this.link?.isOpen === true;
  }

  /** Connection attempts so far (the first one included). */
  get attempts(): number {
    return this.connection.attempts;
  }

  /** The Connection's own log lines (reconnects, refusals), for a failure's message. */
  get logLines(): string[] {
    return this.log.lines;
  }

  start(): this {
    this.connection.start();
    return this;
  }

  stop(): Promise<void> {
    return this.connection.stop();
  }

  /** Whether every job this agent took has ended and the worker acked its end. */
  get settled(): boolean {
    return [...this.jobs.values()].every((j) => j.status !== "running" && j.lastSeq !== null && j.ackedSeq >= j.lastSeq);
  }

  private send(link: Link, message: unknown): void {
    void link.send(JSON.stringify(message));
  }

  private onOpen(link: Link): void {
    this.link = link;
    this.welcomed = false;
    const unfinished = [...this.jobs.values()]
      .filter((j) => this.unacked.has(j.jobId))
      .map((j) => ({ jobId: j.jobId, lastSeq: this.frames(j.jobId).at(-1)?.seq ?? j.ackedSeq }));
    this.send(link, { type: "hello", protocol: PROTOCOL_VERSION, agent: this.name, version: AGENT_VERSION, pipelines: this.o.pipelines, unfinished });
  }

  private frames(jobId: string): Frame[] {
    return this.unacked.get(jobId) ?? [];
  }

  private onFrame(text: string, link: Link): void {
    const parsed = parseWorkerMessage(text);
    if (!parsed.ok) {
      this.errors.push(`bad frame from the worker: ${parsed.error}`);
      this.send(link, { type: "error", code: "bad-frame", message: parsed.error.slice(0, 4000) });
      return;
    }
    this.handle(parsed.message, link);
  }

  private handle(m: WorkerMessage, link: Link): void {
    switch (m.type) {
      case "welcome":
        this.welcomes++;
        this.welcomedAt = performance.now();
        this.welcomed = true;
        return;
      case "job":
        return this.onJob(m.jobId, m.pipeline, link);
      case "ack":
        return this.ack(m.jobId, m.seq);
      case "resume":
        return this.resume(m.jobId, m.ackedSeq, link);
      case "cancel":
        // Its jobs are short and never canceled by the fleet bench; a cancel is recorded as an error.
        this.errors.push(`cancel: job ${m.jobId}`);
        return;
      case "error":
        this.errors.push(`${m.code}: ${m.message}`);
        return;
    }
  }

  private ack(jobId: string, seq: number): void {
    const job = this.jobs.get(jobId);
    if (job) job.ackedSeq = Math.max(job.ackedSeq, seq);
    if (!this.unacked.has(jobId)) return;
    if (job && job.lastSeq !== null && seq >= job.lastSeq) this.unacked.delete(jobId); // its end is stored: nothing left to send
    else this.unacked.set(jobId, this.frames(jobId).filter((f) => f.seq > seq));
  }

  private resume(jobId: string, ackedSeq: number, link: Link): void {
    this.ack(jobId, ackedSeq);
    for (const f of this.frames(jobId)) void link.send(f.data);
  }

  private onJob(jobId: string, pipeline: string, link: Link): void {
    if (this.jobs.has(jobId)) {
      // A copy the worker re-sent: answer accepted again, never run twice (as the agent does).
      this.send(link, { type: "accepted", jobId });
      return;
    }
    if (this.busy !== null) return; // not accepted: the worker sends it again once this agent is idle
    const job: FleetJob = { jobId, pipeline, startNs: null, endNs: null, status: "running", output: new Map(), ackedSeq: 0, lastSeq: null };
    this.jobs.set(jobId, job);
    this.unacked.set(jobId, []);
    this.busy = jobId;
    this.send(link, { type: "accepted", jobId });
    void this.run(job).finally(() => {
      this.busy = null;
    });
  }

  /** Each declared step: step-start, its output, step-end; then job-end. Events go on the connection of the moment. */
  private async run(job: FleetJob): Promise<void> {
    const decl = this.o.pipelines.find((p) => p.name === job.pipeline);
    let seq = 0;
    const emit = (body: JobEventBody) => {
      seq++;
      const data =
        body.kind === "output"
          ? encodeOutputFrame({ jobId: job.jobId, seq, at: Date.now(), step: body.step, stream: body.stream }, typeof body.data === "string" ? encoder.encode(body.data) : body.data)
          : JSON.stringify({ type: "event", jobId: job.jobId, seq, at: Date.now(), body });
      this.frames(job.jobId).push({ seq, data });
      if (this.link?.isOpen && this.welcomed) void this.link.send(data);
    };
    if (!decl) {
      emit({ kind: "output", step: null, stream: "stderr", data: `[hookrelay] pipeline ${job.pipeline} is not in this agent's config\n` });
      job.lastSeq = seq + 1;
      job.status = "failed";
      emit({ kind: "job-end", status: "failed" });
      return;
    }
    const stepMs = this.o.stepMs ?? 20;
    for (const [i, step] of decl.steps.entries()) {
      if (i === 0) job.startNs = nowNs();
      emit({ kind: "step-start", step });
      const text = (this.o.output ?? outputOf)(this.name, step);
      job.output.set(step, text);
      if (text.length > 0) emit({ kind: "output", step, stream: "stdout", data: text });
      await new Promise((resolve) => setTimeout(resolve, stepMs));
      emit({ kind: "step-end", step, status: "succeeded", exitCode: 0 });
      if (i === decl.steps.length - 1) job.endNs = nowNs();
    }
    job.lastSeq = seq + 1;
    job.status = "succeeded";
    emit({ kind: "job-end", status: "succeeded" });
  }
}
