/**
 * Getting a job's events to the worker: each is written to the spool first, then sent on the current
 * connection if that job is sending live there. Per job and per connection a sender is `waiting` (for
 * the worker's `resume`), in `catch-up` (re-sending from disk) or `live` (sending as written). When
 * the socket backs up past HIGH_WATER, the live path steps aside and sending continues from the spool
 * until it has caught up, so a step waits only for the disk, never for the network.
 */
import type { JobEventBody } from "../../shared/protocol.ts";
import { errorMessage } from "../../shared/errors.ts";
import type { Link } from "./connection.ts";
import { splitOutput } from "./frames.ts";
import type { Logger } from "../common/logger.ts";
import type { Spool, SpooledFrame } from "./spool.ts";
import { sleep } from "../common/sleep.ts";

/** Above this many buffered bytes on the socket, sending waits for the socket to drain. */
const HIGH_WATER = 1024 * 1024;

/** Per job, per connection: where sending stands. */
interface Sender {
  /** `waiting`: for the worker's `resume`; `catch-up`: re-sending from disk; `live`: sending as written. */
  mode: "waiting" | "catch-up" | "live";
  /** Next seq to send on this connection. */
  cursor: number;
  generation: number;
}

export class EventOutbox {
  private readonly spool: Spool;
  private readonly log: Logger;
  private link: Link | null = null;
  private senders = new Map<string, Sender>();

  constructor(spool: Spool, log: Logger) {
    this.spool = spool;
    this.log = log;
  }

  /** The current connection, if there is one (the frames of a replaced one are no longer sent). */
  get current(): Link | null {
    return this.link;
  }

  /** A new connection: every unfinished job waits for the worker's `resume` (hello lists them). Returns that list. */
  connected(link: Link): { jobId: string; lastSeq: number }[] {
    this.link = link;
    this.senders = new Map();
    const unfinished = this.spool.unfinished();
    for (const u of unfinished) this.senders.set(u.jobId, { mode: "waiting", cursor: u.lastSeq + 1, generation: 0 });
    return unfinished;
  }

  disconnected(link: Link): void {
    if (this.link === link) this.link = null;
  }

  /** A job just accepted on `link`: its events go out live from seq 1 (on a connection opened meanwhile, `resume` sets it up). */
  accepted(jobId: string, link: Link): void {
    if (this.link === link) this.senders.set(jobId, { mode: "live", cursor: 1, generation: 0 });
  }

  /** The worker stored every event of the job ≤ seq. */
  async ack(jobId: string, seq: number): Promise<void> {
    await this.spool.ack(jobId, seq);
    if (!this.spool.hasJob(jobId)) this.senders.delete(jobId);
  }

  /**
   * One event of a job, as its frames: output is cut here into pieces of whole characters whose
   * frames stay ≤ MAX_FRAME_BYTES (the runner's batches go up to the 1 MiB tail). Each is spooled, then sent.
   */
  async emit(jobId: string, body: JobEventBody): Promise<void> {
    if (body.kind !== "output") return this.emitFrame(jobId, body);
    const bytes = typeof body.data === "string" ? Buffer.from(body.data) : body.data;
    for (const data of splitOutput(bytes)) await this.emitFrame(jobId, { ...body, data });
  }

  /**
   * Spool first, then send if this job is sending live on the current connection. The step waits
   * only for the disk: when the socket is backed up, sending continues from the spool in the
   * background (as after a resume) and the live path steps aside until it has caught up.
   */
  private async emitFrame(jobId: string, body: JobEventBody): Promise<void> {
    const frame = await this.spool.append(jobId, body);
    const link = this.link;
    const sender = this.senders.get(jobId);
    if (!link || !sender || sender.mode !== "live" || sender.cursor !== frame.seq) {
      frame.release?.();
      return;
    }
    sender.cursor = frame.seq + 1;
    const sent = link.send(frame.frame);
    // Its buffer is reused once the socket has taken the frame (or dropped it with the connection).
    if (frame.release) void sent.finally(frame.release);
    if (link.bufferedAmount > HIGH_WATER) {
      sender.mode = "catch-up";
      const generation = ++sender.generation;
      void sent.then(() => this.catchUp(jobId, link, sender, generation)).catch((e: unknown) => this.log.error(`[job ${jobId}] sending from the spool failed: ${errorMessage(e)}`));
    }
  }

  /** The worker stored the job's events ≤ ackedSeq: send the rest from the spool, then go live. */
  async resume(jobId: string, ackedSeq: number, link: Link): Promise<void> {
    if (!this.spool.hasJob(jobId)) {
      this.log.info(`[job ${jobId}] resume ignored: nothing spooled for this job`);
      return;
    }
    await this.spool.ack(jobId, ackedSeq);
    if (!this.spool.hasJob(jobId)) return;
    const sender = this.senders.get(jobId) ?? { mode: "waiting", cursor: 0, generation: 0 };
    this.senders.set(jobId, sender);
    sender.mode = "catch-up";
    sender.cursor = ackedSeq + 1;
    const generation = ++sender.generation;
    const total = this.spool.lastSeq(jobId) - ackedSeq;
    if (total > 0) this.log.info(`[job ${jobId}] re-sending ${total} event(s) from seq ${ackedSeq + 1}`);
    await this.catchUp(jobId, link, sender, generation);
  }

  /**
   * The worker re-sent a job we had accepted, so it never heard `accepted` and will send no `resume`
   * for it (e.g. the connection changed while the first copy was being written down). If nothing is
   * sending that job on this connection, send its spooled events from the start; the DO stores each once.
   */
  sendIfOrphaned(jobId: string, link: Link): void {
    if (this.link !== link || !this.spool.hasJob(jobId) || this.senders.has(jobId)) return;
    void this.resume(jobId, 0, link).catch((e: unknown) => this.log.error(`[job ${jobId}] sending from the spool failed: ${errorMessage(e)}`));
  }

  private async transmit(link: Link, sender: Sender, frame: SpooledFrame): Promise<void> {
    sender.cursor = frame.seq + 1;
    const sent = link.send(frame.frame);
    if (link.bufferedAmount > HIGH_WATER) await sent;
  }

  /** Sends a job's spooled events from `sender.cursor` until it has caught up with the writer, then goes live. */
  private async catchUp(jobId: string, link: Link, sender: Sender, generation: number): Promise<void> {
    const current = () => this.link === link && sender.generation === generation;
    for (;;) {
      try {
        const last = this.spool.lastSeq(jobId);
        if (sender.cursor > last) {
          sender.mode = "live";
          return;
        }
        const before = sender.cursor;
        for await (const frame of this.spool.read(jobId, sender.cursor, last)) {
          if (!current()) return;
          if (frame.seq < sender.cursor) continue;
          await this.transmit(link, sender, frame);
        }
        if (!current()) return;
        if (sender.cursor === before) {
          this.log.warn(`[job ${jobId}] spool has no events from seq ${before}; skipping to ${last + 1}`);
          sender.cursor = last + 1;
        }
      } catch (e) {
        // A read error must not leave the job silent on a healthy connection: say so and try again.
        if (!current()) return;
        this.log.error(`[job ${jobId}] sending from the spool failed at seq ${sender.cursor}: ${errorMessage(e)}; retrying in 1s`);
        await sleep(1000);
        if (!current()) return;
      }
    }
  }
}
