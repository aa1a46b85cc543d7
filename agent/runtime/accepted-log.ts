/**
 * `state_dir/accepted`: the ids of accepted jobs, one a line, each fsync'd before `accepted` is sent,
 * so a job is never run twice. The last ACCEPTED_KEEP are kept (the file is rewritten past twice that).
 */
import { open, readFile, rename, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { errorCode } from "../../shared/errors.ts";

export const ACCEPTED_KEEP = 1000;

export class AcceptedLog {
  private readonly dir: string;
  private ids: string[] = [];
  private set = new Set<string>();
  private handle: FileHandle | null = null;
  /** A write to the accepted file failed, maybe half-way through a line: rewrite it whole before trusting it again. */
  private torn = false;

  constructor(dir: string) {
    this.dir = dir;
  }

  has(jobId: string): boolean {
    return this.set.has(jobId);
  }

  /** Reads the file a previous run left; returns every complete id in it, oldest first (before trimming to ACCEPTED_KEEP). */
  async load(): Promise<string[]> {
    let text = "";
    try {
      text = await readFile(join(this.dir, "accepted"), "utf8");
    } catch (e) {
      if (errorCode(e) !== "ENOENT") throw e;
    }
    // A torn last line (a crash mid-write) was never answered `accepted` (that waits for the fsync): drop it.
    const ids = text.split("\n").slice(0, text.endsWith("\n") ? -1 : undefined).filter((l) => l.length > 0);
    if (!text.endsWith("\n") && text.length > 0) ids.pop();
    this.ids = ids.slice(-ACCEPTED_KEEP);
    this.set = new Set(this.ids);
    if (ids.length > ACCEPTED_KEEP || (!text.endsWith("\n") && text.length > 0)) await this.rewrite(this.ids);
    return ids;
  }

  /**
   * Records the id durably. Memory follows the disk: the id counts once its line is fsync'd, and
   * when a write fails nothing of it is kept (it throws).
   */
  async record(jobId: string): Promise<void> {
    let rewritten: string[] | null = null;
    try {
      if (this.torn || this.ids.length + 1 > 2 * ACCEPTED_KEEP) {
        rewritten = [...this.ids, jobId].slice(-ACCEPTED_KEEP);
        await this.rewrite(rewritten);
      } else {
        this.handle ??= await open(join(this.dir, "accepted"), "a", 0o600);
        await writeAll(this.handle, `${jobId}\n`, "accepted");
        await this.handle.sync();
      }
    } catch (e) {
      // A line may be half written: the next accept rewrites the file from memory instead of appending to it.
      this.torn = true;
      const handle = this.handle;
      this.handle = null;
      await handle?.close().catch(() => undefined);
      throw e;
    }
    if (rewritten) {
      this.ids = rewritten;
      this.set = new Set(rewritten);
    } else {
      this.ids.push(jobId);
      this.set.add(jobId);
    }
  }

  async close(): Promise<void> {
    await this.handle?.close();
  }

  /** Replaces the accepted file with `ids` (write, fsync, rename, fsync the directory); memory is the caller's. */
  private async rewrite(ids: string[]): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
    const tmp = join(this.dir, "accepted.tmp");
    const fh = await open(tmp, "w", 0o600);
    try {
      await writeAll(fh, ids.map((id) => `${id}\n`).join(""), "accepted.tmp");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.dir, "accepted"));
    await syncDir(this.dir);
    this.torn = false;
  }
}

/**
 * Writes all of `text` or throws: a full disk can take part of a write and report it as done (a short
 * write). A line the disk took only part of must not count as recorded, and the next line must not be
 * glued to it (two ids lost, a job run twice); the caller rewrites the file whole from memory.
 */
async function writeAll(fh: FileHandle, text: string, file: string): Promise<void> {
  const bytes = Buffer.from(text, "utf8");
  const { bytesWritten } = await fh.write(bytes, 0, bytes.length);
  if (bytesWritten !== bytes.length) {
    throw Object.assign(new Error(`short write to ${file}: ${bytesWritten} of ${bytes.length} bytes (is the disk full?)`), { code: "ENOSPC" });
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
