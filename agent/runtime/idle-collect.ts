/**
 * One full garbage collection once the agent has been idle a while after a job. Node runs no GC when
 * nothing allocates: after a step floods output, the buffers it left dead (the tail's ring, the
 * reads', the socket's) stay until the next job, megabytes of RssAnon on an agent that waits for
 * pushes all day. The collection is V8's "last resort" one (what V8 does before giving up on memory:
 * a full collection that also shrinks the young generation back and returns the freed pages to the
 * system at once), through V8's `gc` function, exposed with `--expose-gc` set at run time (not given
 * to steps: they are processes of their own). Measured on the agent: RssAnon after three 50 MB steps
 * and a burst went to what it was at start, where a plain full collection (`vm.measureMemory` with
 * `execution: "eager"`, the documented way, and the fallback here) left the young generation grown and
 * the freed pages mapped (docs/performance.md "Agent memory"). Costs one collection of a ~10 MB heap,
 * ~20 ms on the main thread, 2 s into idleness; compiled code it drops is compiled again by the next job.
 */
import { setFlagsFromString } from "node:v8";
import { measureMemory, runInNewContext } from "node:vm";

export const IDLE_COLLECT_MS = 2000;

export class IdleCollector {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly delayMs: number;
  /** Collections started so far (tests). */
  collections = 0;

  constructor(delayMs = IDLE_COLLECT_MS) {
    this.delayMs = delayMs;
  }

  /** A job ended: collect once the agent is still idle `delayMs` later. */
  jobEnded(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.collections++;
      collectNow();
    }, this.delayMs);
    this.timer.unref();
  }

  /** A job starts: no collection meanwhile (the next end schedules one). */
  jobStarted(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  stop(): void {
    this.jobStarted();
  }
}

type GcOptions = { type: "major"; execution: "sync"; flavor: "last-resort" };

/** V8's `gc`, exposed once (null when this Node will not: then the documented way below). */
let v8Gc: ((options: GcOptions) => void) | null | undefined;

function exposedGc(): ((options: GcOptions) => void) | null {
  if (v8Gc !== undefined) return v8Gc;
  try {
    setFlagsFromString("--expose-gc");
    const gc: unknown = runInNewContext("gc");
    v8Gc = typeof gc === "function" ? (gc as (options: GcOptions) => void) : null;
  } catch {
    v8Gc = null;
  }
  return v8Gc;
}

/** Collects now: V8's last-resort collection, or else a full one started through measureMemory. */
function collectNow(): void {
  const gc = exposedGc();
  if (gc) {
    try {
      gc({ type: "major", execution: "sync", flavor: "last-resort" });
      return;
    } catch {
      // an older V8 that refuses the options: the documented way
    }
  }
  collectByMeasuring();
}

/** Starts a full collection (the measurement is dropped), without Node's "experimental" notice for it. */
function collectByMeasuring(): void {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    if (typeof warning === "string" && warning.startsWith("vm.measureMemory")) return;
    return (emitWarning as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    measureMemory({ mode: "summary", execution: "eager" }).catch(() => undefined);
  } catch {
    // a Node without it: nothing collected, nothing lost
  } finally {
    process.emitWarning = emitWarning;
  }
}
