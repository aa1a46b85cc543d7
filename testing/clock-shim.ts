/**
 * For the soak: a wall clock that can jump. Loaded into the agent's Node with `--import` (never part
 * of the agent itself), it shifts `Date.now()` and `new Date()` by the number of milliseconds written in
 * the file named by HOOKRELAY_TEST_CLOCK_FILE, read again every 100 ms, as an NTP step or a
 * suspended VM moves a server's clock. Timers (setTimeout, performance.now) are monotonic in Node and
 * do not move, as on a real machine.
 */
import { readFileSync } from "node:fs";

const file = process.env.HOOKRELAY_TEST_CLOCK_FILE;
if (file) {
  let offset = 0;
  const read = () => {
    try {
      const n = Number(readFileSync(file, "utf8").trim());
      offset = Number.isFinite(n) ? n : 0;
    } catch {
      offset = 0;
    }
  };
  read();
  setInterval(read, 100).unref();
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + offset);
      else super(...(args as [string | number]));
    }
    static override now(): number {
      return realNow() + offset;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}
