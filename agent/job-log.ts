/**
 * A job's event log on disk: `jobs/<id>/events-N.log` segments holding its frames from seq N on, one
 * a line, and `jobs/<id>/acked`, the highest seq the worker acked. Loading one cuts off a line a crash
 * left torn.
 */
import { createReadStream } from "node:fs";
import { open, readdir, readFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { parseAgentMessage } from "../shared/protocol.ts";

export interface Segment {
  firstSeq: number;
  path: string;
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
    const m = /^events-(\d+)\.log$/.exec(f);
    return m ? [{ firstSeq: Number(m[1]), path: join(dir, f) }] : [];
  });
  files.sort((a, b) => a.firstSeq - b.firstSeq);
  let ackedSeq = 0;
  try {
    ackedSeq = Number.parseInt(await readFile(join(dir, "acked"), "utf8"), 10) || 0;
  } catch {
    // never acked
  }
  const job: JobState = { jobId, dir, lastSeq: ackedSeq, ackedSeq, endSeq: null, segments: files, handle: null, handleBytes: 0, chain: Promise.resolve() };
  const last = files.at(-1);
  if (last) {
    // Find the last complete line; cut a torn one (a crash mid-append) off.
    const fh = await open(last.path, "r+");
    try {
      let good = 0;
      let pos = 0;
      for await (const line of readLines(last.path, true)) {
        pos += Buffer.byteLength(line) + 1;
        const parsed = parseAgentMessage(line);
        if (!parsed.ok || parsed.message.type !== "event") break;
        good = pos;
        job.lastSeq = parsed.message.seq;
        if (parsed.message.body.kind === "job-end") job.endSeq = parsed.message.seq;
      }
      const { size } = await fh.stat();
      if (good < size) await fh.truncate(good);
      job.handleBytes = good;
    } finally {
      await fh.close();
    }
    // No complete line in the newest segment (a crash while writing its first line): the events before
    // it are all in earlier segments, so the last written seq is the one before its first, whatever was acked.
    if (job.handleBytes === 0 && job.lastSeq < last.firstSeq - 1) job.lastSeq = last.firstSeq - 1;
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

