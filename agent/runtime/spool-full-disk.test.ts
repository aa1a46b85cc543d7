/**
 * The spool on a disk that fills up (a small tmpfs, filled with a ballast file; skipped where this
 * machine cannot mount one): an append that does not fit fails as a whole — never a torn record in the
 * middle of a segment, which would hide every event written after it from a re-send.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { JobEventBody } from "../../shared/protocol.ts";
import { memoryLogger } from "../common/logger.ts";
import { readFrame } from "./job-log.ts";
import { Spool } from "./spool.ts";
import { mountSmallDisk } from "../../testing/soak/small-disk.ts";

const dir = mkdtempSync(join(tmpdir(), "hookrelay-spool-disk-"));
const mounted = mountSmallDisk(join(dir, "disk"), 1);
const disk = mounted.disk;
if (!disk) console.log(`spool full-disk test skipped: ${"why" in mounted ? mounted.why : ""}`);
afterAll(() => {
  disk?.unmount();
  rmSync(dir, { recursive: true, force: true });
});

const out = (data: string): JobEventBody => ({ kind: "output", step: "s", stream: "stdout", data });

describe.skipIf(!disk)("the spool on a full disk", () => {
  it("fails an append that does not fit as a whole, and every event appended after space returns is read back in order", async () => {
    const spool = await Spool.open(join(disk!.dir, "state"), memoryLogger());
    await spool.accept("j");
    await spool.append("j", out("first\n"));
    disk!.fill();
    // Bigger than the room left in the page the segment already has: at best part of it fits.
    const big = "x".repeat(30_000) + "\n";
    await expect(spool.append("j", out(big))).rejects.toThrow(/ENOSPC|short write/);
    disk!.release();
    await spool.append("j", out("second\n"));
    await spool.append("j", { kind: "job-end", status: "failed" });
    const read: { seq: number; text: string }[] = [];
    for await (const f of spool.read("j", 1, Infinity)) {
      const body = readFrame(f.frame)!.event.body;
      read.push({ seq: f.seq, text: body.kind === "output" ? Buffer.from(body.data).toString("utf8") : body.kind });
    }
    expect(read).toEqual([
      { seq: 1, text: "first\n" },
      { seq: 2, text: "second\n" },
      { seq: 3, text: "job-end" },
    ]);
    await spool.close();
  });
});
