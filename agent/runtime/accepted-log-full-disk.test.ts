/**
 * The accepted-ids record on a disk that fills up (a small tmpfs filled with a ballast file; skipped
 * where this machine cannot mount one): a line the disk took only part of is not a recorded id — the
 * record fails, and every id recorded before and after it is still read back after a restart, so no
 * job accepted here can run twice.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AcceptedLog } from "./accepted-log.ts";
import { mountSmallDisk } from "../../testing/soak/small-disk.ts";

const dir = mkdtempSync(join(tmpdir(), "hookrelay-accepted-disk-"));
const mounted = mountSmallDisk(join(dir, "disk"), 1);
const disk = mounted.disk;
if (!disk) console.log(`accepted-log full-disk test skipped: ${"why" in mounted ? mounted.why : ""}`);
afterAll(() => {
  disk?.unmount();
  rmSync(dir, { recursive: true, force: true });
});

const id = (n: number) => `job-${String(n).padStart(31, "0")}`; // 35 characters, 36 bytes a line

describe.skipIf(!disk)("the accepted-ids record on a full disk", () => {
  it("fails a line the disk took only part of, and reads back every id it recorded before and after", async () => {
    const log = new AcceptedLog(disk!.dir);
    await log.load();
    // 113 lines = 4068 bytes: the file's one page has 28 bytes left, fewer than a line.
    const recorded: string[] = [];
    for (let n = 1; n <= 113; n++) {
      await log.record(id(n));
      recorded.push(id(n));
    }
    expect(statSync(join(disk!.dir, "accepted")).size).toBe(4068);
    disk!.fill();
    await expect(log.record(id(114))).rejects.toThrow(/ENOSPC|short write/);
    expect(log.has(id(114))).toBe(false);
    disk!.release();
    await log.record(id(115));
    recorded.push(id(115));
    await log.close();

    const after = new AcceptedLog(disk!.dir);
    const ids = await after.load();
    expect(ids).toEqual(recorded);
    for (const r of recorded) expect(after.has(r)).toBe(true);
    await after.close();
  });
});
