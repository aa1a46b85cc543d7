/**
 * A job's event log on disk: `jobs/<id>/events-N.frames` segments holding its frames from seq N on,
 * each a record (its length as 4 bytes big-endian, then the frame: JSON text, or a binary output
 * frame — told apart by the first byte), and `jobs/<id>/acked`, the highest seq the worker acked.
 * Loading one cuts off a record a crash left torn. Segments an agent before protocol 3 wrote,
 * `events-N.log` (text frames, one a line), are still read, so an upgrade loses no unsent event.
 */
import { createReadStream } from "node:fs";
import { open, readdir, readFile, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { type AgentMessage, MAX_INCOMING_FRAME_BYTES, OUTPUT_FRAME_TAG, parseAgentBinaryFrame, parseAgentMessage } from "../../shared/protocol.ts";

/** One event frame of a job, as the spool hands it out to be sent. */
export interface SpooledFrame {
  seq: number;
  /** JSON text, or a binary output frame (protocol 3): sent as such. */
  frame: string | Uint8Array;
  /** Gives the frame's buffer back for reuse (Spool.append's frames): call once it is sent, or will not be; never read the frame after. */
  release?: () => void;
}

export interface Segment {
  firstSeq: number;
  path: string;
}

/** A segment written before protocol 3: text frames, one a line. */
export const isLineSegment = (path: string) => path.endsWith(".log");

/** A spooled frame as read back: what it says (a job's event), and the frame to send as it was. */
export interface ReadFrame {
  event: Extract<AgentMessage, { type: "event" }>;
  frame: string | Uint8Array;
}

/** A record's frame, if it is an event frame. */
export function readFrame(frame: string | Uint8Array): ReadFrame | null {
  // A text frame is sent as text: a record holding one is decoded once, here.
  const text = typeof frame === "string" ? frame : frame[0] === OUTPUT_FRAME_TAG ? null : Buffer.from(frame).toString("utf8");
  const parsed = text === null ? parseAgentBinaryFrame(frame as Uint8Array) : parseAgentMessage(text);
  if (!parsed.ok || parsed.message.type !== "event") return null;
  return { event: parsed.message, frame: text ?? frame };
}

/**
 * A segment's frames in order with where each ends in the file; `completeOnly` stops at a torn one.
 * A record whose length no frame has ends the reading there: `onCorrupt` hears where.
 */
export async function* readSegment(path: string, completeOnly = false, onCorrupt?: (at: number) => void): AsyncGenerator<{ frame: string | Uint8Array; end: number }> {
  if (isLineSegment(path)) {
    let end = 0;
    for await (const line of readLines(path, completeOnly)) {
      end += Buffer.byteLength(line) + 1;
      yield { frame: line, end };
    }
    return;
  }
  yield* readRecords(path, onCorrupt);
}

/** Length-prefixed records; a last one cut short (being written, or torn by a crash) or a length no frame has ends the reading. */
async function* readRecords(path: string, onCorrupt?: (at: number) => void): AsyncGenerator<{ frame: Uint8Array; end: number }> {
  let buf: Buffer = Buffer.alloc(0);
  let offset = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    buf = buf.length === 0 ? (chunk as Buffer) : Buffer.concat([buf, chunk as Buffer]);
    let pos = 0;
    while (buf.length - pos >= 4) {
      const length = buf.readUInt32BE(pos);
      if (length === 0 || length > MAX_INCOMING_FRAME_BYTES) {
        onCorrupt?.(offset);
        return;
      }
      if (buf.length - pos - 4 < length) break;
      offset += 4 + length;
      yield { frame: buf.subarray(pos + 4, pos + 4 + length), end: offset };
      pos += 4 + length;
    }
    buf = buf.subarray(pos);
  }
}

export interface JobState {
  jobId: string;
  dir: string;
  lastSeq: number;
  ackedSeq: number;
  endSeq: number | null;
  segments: Segment[];
  handle: FileHandle | null;
  handleBytes: number;
  /** Appends and acks of one job run one after another. */
  chain: Promise<unknown>;
}

/** Reads a job's directory back as a previous run left it. */
export async function loadJob(dir: string, jobId: string): Promise<JobState> {
  const files = (await readdir(dir)).flatMap((f) => {
    const m = /^events-(\d+)\.(?:frames|log)$/.exec(f);
    return m ? [{ firstSeq: Number(m[1]), path: join(dir, f) }] : [];
  });
  // An older agent's segment before a newer one of the same first seq (it can only be one left empty by a crash).
  files.sort((a, b) => a.firstSeq - b.firstSeq || Number(isLineSegment(b.path)) - Number(isLineSegment(a.path)));
  let ackedSeq = 0;
  try {
    ackedSeq = Number.parseInt(await readFile(join(dir, "acked"), "utf8"), 10) || 0;
  } catch {
    // never acked
  }
  const job: JobState = { jobId, dir, lastSeq: ackedSeq, ackedSeq, endSeq: null, segments: files, handle: null, handleBytes: 0, chain: Promise.resolve() };
  const last = files.at(-1);
  if (last) {
    // Find the last complete frame; cut a torn one (a crash mid-append) off.
    const fh = await open(last.path, "r+");
    try {
      let good = 0;
      for await (const { frame, end } of readSegment(last.path, true)) {
        const read = readFrame(frame);
        if (!read) break;
        good = end;
        job.lastSeq = read.event.seq;
        if (read.event.body.kind === "job-end") job.endSeq = read.event.seq;
      }
      const { size } = await fh.stat();
      if (good < size) await fh.truncate(good);
      job.handleBytes = good;
    } finally {
      await fh.close();
    }
    // No complete frame in the newest segment (a crash while writing its first): the events before it
    // are all in earlier segments, so the last written seq is the one before its first, whatever was
    // acked. The empty file goes: the next append starts that seq's segment afresh.
    if (job.handleBytes === 0) {
      if (job.lastSeq < last.firstSeq - 1) job.lastSeq = last.firstSeq - 1;
      await rm(last.path, { force: true });
      files.pop();
    }
  }
  return job;
}

/** Lines of a file, streamed; `completeOnly` drops a last line without its newline. */
export async function* readLines(path: string, completeOnly = false): AsyncGenerator<string> {
  let rest = "";
  const decoder = new TextDecoder();
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    rest += decoder.decode(chunk as Buffer, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
  rest += decoder.decode();
  if (rest.length > 0 && !completeOnly) yield rest;
}

