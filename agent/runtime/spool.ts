/**
 * The agent's on-disk state (`state_dir`), so a restart of either side loses no log line and
 * never re-runs a job:
 *
 *   agent.lock             flock(2)ed while an agent has the state_dir open (holds its pid, for people)
 *   accepted               accepted job ids, one a line (fsync'd before `accepted` is sent; last 1000 kept)
 *   jobs/<id>/events-N.frames the job's event frames from seq N on, length-prefixed records (job-log.ts), appended before sending
 *   jobs/<id>/acked        the highest seq the worker acked
 *
 * Segments whose events are all acked are deleted; once `job-end` is acked the job's directory goes.
 * At most MAX_UNFINISHED jobs wait for their acks (hello lists them all, and the worker takes no
 * more): past that the oldest are dropped, with a warning.
 * Re-sending reads the segments back as a stream, so a 50 MB log never sits in memory.
 */
import { errorCode, errorMessage } from "../../shared/errors.ts";
import { type FileHandle, mkdir, open, readdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { encodeOutputFrame, MAX_FRAME_BYTES, MAX_UNFINISHED, type AgentMessage, type JobEventBody } from "../../shared/protocol.ts";
import { AcceptedLog, syncDir } from "./accepted-log.ts";
import { BufferPool } from "./buffer-pool.ts";
import { type JobState, loadJob, readFrame, readSegment, type SpooledFrame } from "./job-log.ts";
import type { Logger } from "../common/logger.ts";
import { endInterrupted, recoverInterrupted } from "./recovery.ts";
import { lockStateDir, SpoolError, unlockStateDir } from "./state-dir.ts";

export { ACCEPTED_KEEP } from "./accepted-log.ts";
const SEGMENT_BYTES = 4 * 1024 * 1024;

export { SpoolError };
export type { SpooledFrame };

/**
 * Output frames are written into buffers of this pool (MAX_FRAME_BYTES each, the most a frame takes),
 * given back once sent (SpooledFrame.release). A few suffice: the spool writes one frame at a time
 * and a sent frame is given back when the socket has taken it.
 */
const FRAME_POOL_KEEP = 8;

/** The frame of an event: output as a binary frame of its bytes (in a buffer of `pool`), anything else as JSON text. */
function eventFrame(jobId: string, seq: number, at: number, body: JobEventBody, pool: BufferPool): { frame: string | Uint8Array; bytes: Uint8Array; buffer?: Buffer } {
  if (body.kind === "output") {
    const data = typeof body.data === "string" ? Buffer.from(body.data) : body.data;
    const buffer = pool.take();
    const frame = encodeOutputFrame({ jobId, seq, at, step: body.step, stream: body.stream }, data, buffer);
    return frame.buffer === buffer.buffer ? { frame, bytes: frame, buffer } : { frame, bytes: frame };
  }
  const frame = JSON.stringify({ type: "event", jobId, seq, at, body } satisfies AgentMessage);
  return { frame, bytes: Buffer.from(frame) };
}

/**
 * Appends a record whole or not at all. On a full disk a write can take part of a record and report
 * success (a short write): the file is cut back to `size` (shrinking needs no space) and the append
 * fails, so no torn record sits in the middle of a segment, hiding what is appended after it from a re-send.
 */
async function writeWhole(handle: FileHandle, parts: Uint8Array[], size: number, what: string): Promise<void> {
  const want = parts.reduce((n, p) => n + p.length, 0);
  let written: number;
  try {
    ({ bytesWritten: written } = await handle.writev(parts));
  } catch (e) {
    await handle.truncate(size).catch(() => undefined);
    throw e;
  }
  if (written !== want) {
    await handle.truncate(size).catch(() => undefined);
    throw new SpoolError(`${what}: short write (${written} of ${want} bytes): the disk is full?`);
  }
}

export class Spool {
  readonly dir: string;
  private readonly log: Logger;
  private readonly accepted: AcceptedLog;
  private readonly jobs = new Map<string, JobState>();
  private closed = false;
  private readonly frames = new BufferPool(MAX_FRAME_BYTES, FRAME_POOL_KEEP);

  private readonly segmentBytes: number;

  private constructor(dir: string, log: Logger, segmentBytes: number) {
    this.dir = dir;
    this.log = log;
    this.segmentBytes = segmentBytes;
    this.accepted = new AcceptedLog(dir);
  }

  /** Locks `dir` (creating it) and loads what a previous run left. */
  static async open(dir: string, log: Logger, options: { segmentBytes?: number } = {}): Promise<Spool> {
    const spool = new Spool(resolve(dir), log, options.segmentBytes ?? SEGMENT_BYTES);
    try {
      await mkdir(join(spool.dir, "jobs"), { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new SpoolError(`state_dir ${spool.dir} is not writable: ${errorCode(e) ?? errorMessage(e)}`);
    }
    lockStateDir(spool.dir);
    try {
      await spool.load();
    } catch (e) {
      await spool.close();
      throw e;
    }
    return spool;
  }

  isAccepted(jobId: string): boolean {
    return this.accepted.has(jobId) || this.jobs.has(jobId);
  }

  /**
   * Records the id durably; only then may `accepted` be sent. Memory follows the disk: the id counts
   * as accepted once its line is fsync'd, and when a write fails nothing of it is kept (it throws).
   */
  async accept(jobId: string): Promise<void> {
    if (this.isAccepted(jobId)) return;
    const dir = join(this.dir, "jobs", jobId);
    const created = await mkdir(dir, { recursive: true });
    try {
      await this.accepted.record(jobId);
    } catch (e) {
      if (created !== undefined) await rm(created, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
    this.jobs.set(jobId, { jobId, dir, lastSeq: 0, ackedSeq: 0, endSeq: null, segments: [], handle: null, handleBytes: 0, chain: Promise.resolve() });
    try {
      await this.dropBeyondBound();
    } catch (e) {
      // The new job is accepted all the same; the next accept or start tries again.
      this.log.error(`spool: dropping the oldest unfinished jobs failed: ${errorMessage(e)}`);
    }
  }

  /**
   * Writes the next event of a job and returns its frame (to send). An output frame lives in a buffer
   * of the spool's pool: whoever sends it calls `release` once the socket has taken it (or at once if
   * it is not sent); the buffer is then reused, so the frame must not be read after that.
   */
  append(jobId: string, body: JobEventBody): Promise<SpooledFrame> {
    const job = this.job(jobId);
    const next = job.chain.then(async () => {
      const seq = job.lastSeq + 1;
      const { frame, bytes, buffer } = eventFrame(jobId, seq, Date.now(), body, this.frames);
      let given = false;
      const release = () => {
        if (given || !buffer) return;
        given = true;
        this.frames.give(buffer);
      };
      try {
        return await this.write(job, seq, body, bytes, frame, release);
      } catch (e) {
        release();
        throw e;
      }
    });
    job.chain = next.catch(() => undefined);
    return next;
  }

  /** One record at the end of the job's newest segment (a new segment past segmentBytes). */
  private async write(job: JobState, seq: number, body: JobEventBody, bytes: Uint8Array, frame: string | Uint8Array, release: () => void): Promise<SpooledFrame> {
    const jobId = job.jobId;
    if (bytes.length > MAX_FRAME_BYTES) throw new SpoolError(`[job ${jobId}] event ${seq} is larger than a frame`);
    if (!job.handle || job.handleBytes >= this.segmentBytes) {
      const full = job.handle;
      job.handle = null; // should the next segment fail to open, the next append tries again
      await full?.close();
      const path = join(job.dir, `events-${seq}.frames`);
      job.handle = await open(path, "a", 0o600);
      job.handleBytes = (await job.handle.stat()).size;
      // The newest segment may be this very file, left empty by a crash mid-line: list it once.
      if (job.segments.at(-1)?.path !== path) job.segments.push({ firstSeq: seq, path });
    }
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(bytes.length);
    // Whole or not at all: a short write on a full disk is cut back, so no half record hides the events after it.
    await writeWhole(job.handle, [length, bytes], job.handleBytes, `[job ${jobId}] event ${seq}`);
    job.handleBytes += 4 + bytes.length;
    job.lastSeq = seq;
    if (body.kind === "job-end") {
      job.endSeq = seq;
      await job.handle.datasync();
    }
    return { seq, frame, release };
  }

  /** The worker stored every event ≤ seq: drop what is no longer needed. */
  ack(jobId: string, seq: number): Promise<void> {
    const job = this.jobs.get(jobId);
    if (!job || seq <= job.ackedSeq) return Promise.resolve();
    job.ackedSeq = Math.min(seq, job.lastSeq);
    const next = job.chain.then(async () => {
      if (job.endSeq !== null && job.ackedSeq >= job.endSeq) {
        await this.removeJob(job);
        return;
      }
      while (job.segments.length > 1 && job.segments[1]!.firstSeq - 1 <= job.ackedSeq) {
        const seg = job.segments.shift()!;
        await rm(seg.path, { force: true });
      }
      await writeFile(join(job.dir, "acked"), `${job.ackedSeq}\n`);
    });
    job.chain = next.catch((e: unknown) => this.log.warn(`[job ${jobId}] spool: ${errorMessage(e)}`));
    return job.chain.then(() => undefined);
  }

  /** Accepted jobs whose job-end is not acked yet, with the last seq written (hello.unfinished). */
  unfinished(): { jobId: string; lastSeq: number }[] {
    return [...this.jobs.values()].map((j) => ({ jobId: j.jobId, lastSeq: j.lastSeq }));
  }

  /** The highest seq the worker acked (0 for a job not in the spool). */
  ackedSeq(jobId: string): number {
    return this.jobs.get(jobId)?.ackedSeq ?? 0;
  }

  lastSeq(jobId: string): number {
    return this.jobs.get(jobId)?.lastSeq ?? 0;
  }

  hasJob(jobId: string): boolean {
    return this.jobs.has(jobId);
  }

  /** The job is in the spool and its job-end is written. */
  hasEnded(jobId: string): boolean {
    return (this.jobs.get(jobId)?.endSeq ?? null) !== null;
  }

  /** The job's frames with fromSeq ≤ seq ≤ toSeq, read from disk one chunk at a time. */
  async *read(jobId: string, fromSeq: number, toSeq: number): AsyncGenerator<SpooledFrame> {
    const job = this.jobs.get(jobId);
    if (!job) return;
    const segments = [...job.segments];
    for (const [i, seg] of segments.entries()) {
      const nextFirst = segments[i + 1]?.firstSeq ?? Infinity;
      if (nextFirst <= fromSeq) continue;
      if (seg.firstSeq > toSeq) return;
      try {
        const corrupt = (at: number) => this.log.warn(`[job ${jobId}] spool: a corrupt record at byte ${at} of ${seg.path}: the rest of that segment is skipped`);
        for await (const { frame } of readSegment(seg.path, false, corrupt)) {
          const read = readFrame(frame);
          if (!read || read.event.jobId !== jobId) {
            this.log.warn(`[job ${jobId}] spool: skipping a corrupt frame in ${seg.path}`);
            continue;
          }
          const seq = read.event.seq;
          if (seq > toSeq) return;
          // A view into the reader's 64 KiB chunk: copied, so a frame waiting in the socket keeps only itself.
          if (seq >= fromSeq) yield { seq, frame: typeof read.frame === "string" ? read.frame : Buffer.from(read.frame) };
        }
      } catch (e) {
        // A segment deleted meanwhile was acked: nothing in it is needed any more.
        if (errorCode(e) !== "ENOENT") throw e;
      }
    }
  }

  /** Ends the jobs a previous run left without a job-end `interrupted` (see recovery.ts); returns their ids. */
  recoverInterrupted(): Promise<string[]> {
    return recoverInterrupted(this);
  }

  /**
   * Keeps at most MAX_UNFINISHED jobs: hello lists every unfinished job, and a worker refuses a longer
   * list (the agent would never be welcomed). The oldest go first; one a crash left without an end
   * gets its `interrupted` end before it goes, like any other.
   */
  private async dropBeyondBound(): Promise<void> {
    while (this.jobs.size > MAX_UNFINISHED) {
      const oldest = this.jobs.values().next().value!;
      if (oldest.endSeq === null) await endInterrupted(this, oldest.jobId);
      this.log.warn(
        `[job ${oldest.jobId}] dropped from the spool before the worker acknowledged it: more than ${MAX_UNFINISHED} unfinished jobs; its log on the worker may be incomplete`,
      );
      await oldest.chain;
      await this.removeJob(oldest);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.jobs.values()) {
      await job.chain;
      await job.handle?.close();
      job.handle = null;
    }
    await this.accepted.close();
    unlockStateDir(this.dir);
  }

  private job(jobId: string): JobState {
    const job = this.jobs.get(jobId);
    if (!job) throw new SpoolError(`[job ${jobId}] not in the spool (events before accept?)`);
    return job;
  }

  private async removeJob(job: JobState): Promise<void> {
    await job.handle?.close();
    job.handle = null;
    this.jobs.delete(job.jobId);
    await rm(job.dir, { recursive: true, force: true });
  }

  private async load(): Promise<void> {
    const ids = await this.accepted.load();
    const loaded: JobState[] = [];
    for (const entry of await readdir(join(this.dir, "jobs"), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const job = await loadJob(join(this.dir, "jobs", entry.name), entry.name);
      if (job.endSeq !== null && job.ackedSeq >= job.endSeq) await rm(job.dir, { recursive: true, force: true });
      else loaded.push(job);
    }
    // Oldest first (the order they were accepted in; ids no longer in the accepted file are older still), as accept adds them.
    const position = new Map(ids.map((id, i) => [id, i]));
    loaded.sort((a, b) => (position.get(a.jobId) ?? -1) - (position.get(b.jobId) ?? -1) || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
    for (const job of loaded) this.jobs.set(job.jobId, job);
    await this.dropBeyondBound();
    await syncDir(this.dir);
  }
}
