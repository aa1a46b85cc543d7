/**
 * The agent's serving loop: it answers the worker's frames (validated here, at the edge) and runs
 * one job at a time. Getting the job's events to the worker (spool first, live or catch-up sending,
 * re-sending after a `resume`) is the outbox's.
 */
import { errorDetail, errorMessage } from "../../shared/errors.ts";
import { assertNever } from "../../shared/assert-never.ts";
import { type AgentMessage, helloProtocol, type JobEndStatus, type JobEventBody, type PipelineDecl, parseWorkerMessage, type WorkerMessage } from "../../shared/protocol.ts";
import { type BackoffOptions, DEFAULT_BACKOFF } from "./backoff.ts";
import type { AgentConfig } from "../common/config.ts";
import { Connection, type Link } from "./connection.ts";
import type { Logger } from "../common/logger.ts";
import { peerText } from "../common/peer-text.ts";
import { type RunningJob, type Stop, startJob } from "./runner.ts";
import { NO_SECRETS, type LoadedSecrets } from "./secrets.ts";
import { EventOutbox } from "./event-outbox.ts";
import { Spool } from "./spool.ts";
import { IdleCollector } from "./idle-collect.ts";
import { AGENT_VERSION } from "../common/version.ts";
import { sleep } from "../common/sleep.ts";

/** How often the end of a job that could not be spooled (a full disk) is tried again. */
export const END_RETRY_MS = 1000;

export interface AgentOptions {
  config: AgentConfig;
  token: string;
  log: Logger;
  /** Environment steps inherit (minus the token); default process.env. */
  env?: NodeJS.ProcessEnv;
  backoff?: BackoffOptions;
  healthyMs?: number;
  /** Read from the config's secret files (secrets.ts); replaced on reload by `useSecrets`. */
  secrets?: LoadedSecrets;
}

export function pipelineDecls(config: AgentConfig): PipelineDecl[] {
  return config.pipelines.map((p) => ({
    name: p.name,
    repo: p.repo,
    events: p.events,
    branches: p.branches,
    steps: p.steps.map((s) => s.name),
    onFailure: p.onFailure.map((s) => s.name),
    timeoutMs: p.timeoutMs,
    rollout: { batch: p.rollout.batch, haltOnFailure: p.rollout.haltOnFailure },
    ...(p.environment !== null ? { environment: p.environment } : {}),
    ...(p.environmentUrl !== null ? { environmentUrl: p.environmentUrl } : {}),
    ...(p.productionEnvironment !== null ? { productionEnvironment: p.productionEnvironment } : {}),
    ...(p.transientEnvironment !== null ? { transientEnvironment: p.transientEnvironment } : {}),
    // Gates, only when set: a pipeline without them declares what an older agent did.
    ...(p.tags.length > 0 ? { tags: p.tags } : {}),
    ...(p.paths !== null ? { paths: p.paths } : {}),
    ...(p.pathsIgnore !== null ? { pathsIgnore: p.pathsIgnore } : {}),
    ...(p.waitFor !== null ? { waitFor: { workflows: p.waitFor.workflows, checks: p.waitFor.checks, approval: p.waitFor.approval, timeoutMs: p.waitFor.timeoutMs } } : {}),
  }));
}

/** Answers the worker's frames and runs one job at a time. */
export class JobServer {
  readonly config: AgentConfig;
  readonly connection: Connection;
  private readonly spool: Spool;
  private readonly log: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly outbox: EventOutbox;
  /** The job being accepted or run (one at a time). */
  private busyWith: string | null = null;
  /** The spool write of the job being accepted (a re-sent copy of it waits for this). */
  private accepting: Promise<void> | null = null;
  private running: RunningJob | null = null;
  /** A cancel for the job being accepted arrived before it could start. */
  private canceledEarly: string | null = null;
  /** The job being accepted or run, from accept to its end (stopping waits for it). Never rejects. */
  private current: Promise<void> | null = null;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  /** Stop was asked again: no grace for the step's processes, no waiting for acks. */
  private hurried = false;
  /** Jobs whose end is being written again and again until the spool takes it (retryEnd). */
  private readonly endRetries = new Set<string>();
  /** Jobs whose end is being written now (endJob, retryEnd): one writer at a time, so a job ends once. */
  private readonly ending = new Set<string>();
  /** A job takes the secrets as they are when it starts. */
  private secrets: LoadedSecrets;
  /** One full collection once idle after a job (idle-collect.ts). */
  private readonly idle = new IdleCollector();

  private constructor(options: AgentOptions, spool: Spool) {
    this.config = options.config;
    this.log = options.log;
    this.env = options.env ?? process.env;
    this.secrets = options.secrets ?? NO_SECRETS;
    this.spool = spool;
    this.outbox = new EventOutbox(spool, this.log);
    this.connection = new Connection({
      server: this.config.server,
      target: this.config.target,
      agent: this.config.name,
      token: options.token,
      heartbeatMs: this.config.heartbeatMs,
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      healthyMs: options.healthyMs,
      log: this.log,
      onOpen: (link) => this.onOpen(link),
      onFrame: (text, link) => this.onFrame(text, link),
      onClose: (link) => this.outbox.disconnected(link),
    });
  }

  /** Secrets read again (on SIGHUP): the next job gets them; a running one keeps those it started with. */
  useSecrets(secrets: LoadedSecrets): void {
    this.secrets = secrets;
  }

  /** Opens (and locks) the spool, reports jobs a previous run left unfinished, and connects. */
  static async start(options: AgentOptions): Promise<JobServer> {
    const spool = await Spool.open(options.config.stateDir, options.log);
    for (const id of await spool.recoverInterrupted()) options.log.warn(`[job ${id}] interrupted by an agent restart; reported as interrupted, not re-run`);
    const agent = new JobServer(options, spool);
    const c = options.config;
    options.log.info(`hookrelay-agent ${AGENT_VERSION}: agent ${c.name}, target ${c.target}, pipelines: ${c.pipelines.map((p) => p.name).join(", ")}`);
    agent.connection.start();
    return agent;
  }

  /**
   * Stop taking jobs, interrupt the running one (SIGTERM to its step's processes, the grace, SIGKILL),
   * give the worker a moment to ack, close. Called again while stopping, it hurries: SIGKILL to the
   * step's processes now, no more waiting for acks — but the job still ends (its job-end is written)
   * before the spool closes.
   */
  stop(why = "the agent is stopping"): Promise<void> {
    if (this.stopped) {
      this.hurry();
      return this.stopped;
    }
    this.stopping = true;
    this.stopped = this.shutdown(why);
    return this.stopped;
  }

  private hurry(): void {
    this.hurried = true;
    const running = this.running;
    if (running) {
      this.log.warn(`[job ${running.jobId}] stopping now: SIGKILL to the step's processes`);
      running.hurry();
    }
  }

  private async shutdown(why: string): Promise<void> {
    const running = this.running;
    if (running) {
      this.log.info(`[job ${running.jobId}] stopping: ${why}`);
      running.stop("interrupted", `${why}; the job is interrupted`);
    }
    // Also a job still being accepted: it ends `interrupted` without running (see acceptAndRun).
    await this.current;
    // Give the worker a moment to ack what is spooled; whatever is left is re-sent after the next start.
    // On the monotonic clock: a wall clock stepped back meanwhile must not hold the stop for an hour.
    const deadline = performance.now() + 3000;
    while (!this.hurried && this.outbox.current?.isOpen && this.spool.unfinished().length > 0 && performance.now() < deadline) await sleep(50);
    this.idle.stop();
    await this.connection.stop();
    await this.spool.close();
    this.log.info("stopped");
  }

  private send(link: Link, message: AgentMessage): void {
    void link.send(JSON.stringify(message));
  }

  private onOpen(link: Link): void {
    const unfinished = this.outbox.connected(link);
    const pipelines = pipelineDecls(this.config);
    // 4 when a pipeline declares gates: a worker that does not know them refuses it rather than ignore them.
    this.send(link, { type: "hello", protocol: helloProtocol(pipelines), agent: this.config.name, version: AGENT_VERSION, pipelines, unfinished });
  }

  private onFrame(text: string, link: Link): void {
    const parsed = parseWorkerMessage(text);
    if (!parsed.ok) {
      this.log.warn(`bad frame from the worker: ${peerText(parsed.error)}`); // it may quote the frame
      this.send(link, { type: "error", code: "bad-frame", message: parsed.error.slice(0, 4000) });
      return;
    }
    this.handle(parsed.message, link).catch((e: unknown) => this.log.error(`handling ${parsed.message.type}: ${errorDetail(e)}`));
  }

  private async handle(m: WorkerMessage, link: Link): Promise<void> {
    switch (m.type) {
      case "welcome":
        this.log.info(`welcomed by the worker (target ${m.target}, agent ${m.agent})`);
        return;
      case "job":
        return this.onJob(m, link);
      case "ack":
        return this.outbox.ack(m.jobId, m.seq);
      case "resume":
        return this.outbox.resume(m.jobId, m.ackedSeq, link);
      case "cancel":
        return this.onCancel(m.jobId, link);
      case "error":
        // A refused protocol is not a passing error: nothing will run until one side is upgraded.
        if (m.code === "unsupported-protocol") this.log.error(`the worker refused this agent: ${peerText(m.message)}`);
        else this.log.warn(`the worker reported an error: ${peerText(m.code)}: ${peerText(m.message)}`);
        return;
      default:
        return assertNever(m, "worker message");
    }
  }

  private async onJob(m: Extract<WorkerMessage, { type: "job" }>, link: Link): Promise<void> {
    const tag = `[job ${m.jobId}]`;
    if (this.spool.isAccepted(m.jobId)) {
      this.log.info(`${tag} already accepted; answering accepted again (never run twice)`);
      this.send(link, { type: "accepted", jobId: m.jobId });
      this.outbox.sendIfOrphaned(m.jobId, link);
      return;
    }
    if (this.busyWith === m.jobId && this.accepting) {
      // A copy re-sent while the first is being written down: answer once it is.
      await this.accepting.catch(() => undefined);
      if (this.spool.isAccepted(m.jobId)) {
        this.send(link, { type: "accepted", jobId: m.jobId });
        this.outbox.sendIfOrphaned(m.jobId, link);
      }
      return;
    }
    if (this.stopping) return this.log.info(`${tag} not accepted: the agent is stopping`);
    if (this.busyWith !== null) return this.log.warn(`${tag} not accepted: busy with job ${this.busyWith}`);
    this.busyWith = m.jobId;
    this.idle.jobStarted();
    // Whatever happens from here on, the agent is free again afterwards, and an accepted job ends.
    const whole = (async () => {
      try {
        await this.acceptAndRun(m, link);
      } catch (e) {
        this.log.error(`${tag} the agent failed while handling this job: ${errorDetail(e)}`);
        if (this.spool.hasJob(m.jobId) && !this.spool.hasEnded(m.jobId)) await this.endJob(m.jobId, "failed", `the agent failed while running this job: ${errorMessage(e)}`);
      } finally {
        this.running = null;
        this.accepting = null;
        this.busyWith = null;
        this.canceledEarly = null;
        this.current = null;
        this.idle.jobEnded();
      }
      // Its end could not be spooled (a full disk): the worker would see it running until its deadline.
      if (this.spool.hasJob(m.jobId) && !this.spool.hasEnded(m.jobId)) void this.retryEnd(m.jobId);
    })();
    this.current = whole;
    await whole;
  }

  private async acceptAndRun(m: Extract<WorkerMessage, { type: "job" }>, link: Link): Promise<void> {
    const tag = `[job ${m.jobId}]`;
    this.accepting = this.spool.accept(m.jobId);
    try {
      await this.accepting;
    } catch (e) {
      this.log.error(`${tag} not accepted: spool: ${errorMessage(e)}`);
      return;
    }
    // On a connection opened meanwhile, hello listed this job and `resume` sets up its sending.
    this.outbox.accepted(m.jobId, link);
    this.send(link, { type: "accepted", jobId: m.jobId });
    this.log.info(`${tag} accepted (pipeline ${m.pipeline})`);
    const { type: _type, jobId, pipeline, ...fields } = m;
    // Canceled, or stopping began, while the job was being written down: it ends at once, nothing runs.
    const stopBefore: Stop | undefined =
      this.canceledEarly === jobId
        ? { reason: "canceled", why: "job canceled by the worker before it started" }
        : this.stopping
          ? { reason: "interrupted", why: "the agent is stopping; the job is interrupted" }
          : undefined;
    this.running = startJob(
      { jobId, pipeline, fields },
      {
        pipelines: this.config.pipelines,
        killGraceMs: this.config.killGraceMs,
        logCapBytes: this.config.logCapBytes,
        baseEnv: this.env,
        secrets: this.secrets,
        log: this.log,
        emit: (body) => this.outbox.emit(jobId, body),
      },
      stopBefore,
    );
    await this.running.done;
  }

  /** Ends a spooled job that is not running: a line saying why, then its job-end. Logs (never throws) if the spool refuses. */
  private async endJob(jobId: string, status: JobEndStatus, why: string): Promise<void> {
    if (this.ending.has(jobId)) return;
    this.ending.add(jobId);
    try {
      await this.outbox.emit(jobId, { kind: "output", step: null, stream: "stderr", data: `[hookrelay] ${why}\n` });
      await this.outbox.emit(jobId, { kind: "job-end", status });
      this.log.info(`[job ${jobId}] finished: ${status}`);
    } catch (e) {
      this.log.error(`[job ${jobId}] could not spool the job's end (${status}): ${errorMessage(e)}`);
    } finally {
      this.ending.delete(jobId);
    }
  }

  /**
   * Writes the `job-end failed` of a job the runner could not end (its spool write failed: a full disk),
   * every END_RETRY_MS until the spool takes it, so the worker learns the end as soon as space returns.
   * Meanwhile the agent takes other jobs (a write that failed for this job alone does not stop them).
   * Gives up when the job ends another way (a cancel) or the agent stops: its next start ends it `interrupted`.
   */
  private async retryEnd(jobId: string): Promise<void> {
    if (this.endRetries.has(jobId)) return;
    this.endRetries.add(jobId);
    try {
      for (;;) {
        await sleep(END_RETRY_MS);
        if (this.stopping || !this.spool.hasJob(jobId) || this.spool.hasEnded(jobId)) return;
        if (this.ending.has(jobId)) continue; // a cancel is ending it right now
        this.ending.add(jobId);
        try {
          await this.outbox.emit(jobId, { kind: "job-end", status: "failed" });
          this.log.info(`[job ${jobId}] its end is spooled at last: finished: failed`);
          return;
        } catch {
          // still no room: try again
        } finally {
          this.ending.delete(jobId);
        }
      }
    } finally {
      this.endRetries.delete(jobId);
    }
  }

  /** A cancel always ends the job, wherever it stands here; a job this agent never accepted is the worker's to end. */
  private async onCancel(jobId: string, link: Link): Promise<void> {
    const tag = `[job ${jobId}]`;
    if (this.spool.hasEnded(jobId)) {
      // The worker has not heard the end (or it would not cancel): send the job's events again.
      this.log.info(`${tag} cancel: the job already ended here; sending its events again from the spool so the worker learns its end`);
      return this.outbox.resume(jobId, this.spool.ackedSeq(jobId), link);
    }
    if (this.running?.jobId === jobId) {
      this.log.info(`${tag} cancel requested by the worker`);
      this.running.stop("canceled", "job canceled by the worker");
      return;
    }
    if (this.busyWith === jobId) {
      this.log.info(`${tag} cancel requested by the worker while the job is being accepted: it ends canceled, nothing runs`);
      this.canceledEarly = jobId;
      return;
    }
    if (this.spool.hasJob(jobId)) {
      // Accepted, not running, and its end could not be written earlier: end it now.
      this.log.info(`${tag} cancel: the job is not running here and has no end yet; ending it canceled`);
      return this.endJob(jobId, "canceled", "job canceled by the worker (it was no longer running on this agent)");
    }
    if (this.spool.isAccepted(jobId)) {
      this.log.info(`${tag} cancel ignored: the job ended here and the worker acknowledged its end`);
      return;
    }
    this.log.warn(`${tag} cancel for a job this agent has not accepted: answering unknown-job`);
    this.send(link, { type: "error", code: "unknown-job", message: `cancel for job ${jobId}: not accepted by this agent` });
  }

}
