/**
 * A small filesystem of its own for one agent's state_dir, so the soak can fill it up without touching
 * the machine's disk: a tmpfs mounted for the purpose (root, and a container allowed to mount). Where
 * mounting is not permitted there is no small disk (null), and the soak says that the full-disk fault
 * could not be produced — it never fills a filesystem it did not make.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";

export interface SmallDisk {
  /** The mount point (state_dir goes inside it). */
  readonly dir: string;
  readonly sizeBytes: number;
  /** Fill every free byte with a ballast file; returns the bytes written. */
  fill(): number;
  /** Delete the ballast: the space returns. */
  release(): void;
  readonly full: boolean;
  /** Bytes free now. */
  freeBytes(): number;
  unmount(): void;
}

/** Mounts a `sizeMb` tmpfs at `dir` (created); null (with why) when this machine does not allow it. */
export function mountSmallDisk(dir: string, sizeMb: number): { disk: SmallDisk } | { disk: null; why: string } {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m,mode=0700`, "tmpfs", dir], { stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message?: string };
    return { disk: null, why: `mount -t tmpfs failed: ${(err.stderr?.toString() || err.message || String(e)).trim()}` };
  }
  const ballast = join(dir, "ballast");
  let full = false;
  const freeBytes = () => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };
  return {
    disk: {
      dir,
      sizeBytes: sizeMb * 1024 * 1024,
      get full() {
        return full;
      },
      freeBytes,
      fill() {
        full = true;
        const fd = openSync(ballast, "a");
        let written = 0;
        try {
          // Big writes first, then smaller ones, until not even one byte fits.
          for (const size of [1 << 20, 1 << 12, 1]) {
            const chunk = Buffer.alloc(size, 0x61);
            for (;;) {
              try {
                written += writeSync(fd, chunk);
              } catch (e) {
                if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
                throw e;
              }
            }
          }
        } finally {
          closeSync(fd);
        }
        return written;
      },
      release() {
        rmSync(ballast, { force: true });
        full = false;
      },
      unmount() {
        rmSync(ballast, { force: true });
        try {
          execFileSync("umount", ["-l", dir], { stdio: "ignore" });
        } catch {
          /* already gone */
        }
      },
    },
  };
}
