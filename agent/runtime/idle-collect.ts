/**
 * One full garbage collection once the agent has been idle a while after a job. Node runs no GC when
 * nothing allocates: after a step floods output, the buffers it left dead (the tail's ring, the
 * reads', the socket's) stay until the next job, megabytes of RssAnon on an agent that waits for
 * pushes all day. `vm.measureMemory` with `execution: "eager"` is Node's documented way to have V8
 * collect now (it measures after a full GC; the measurement itself is thrown away), and V8's memory
 * reducer then follows up as it does after any full collection. Costs one collection of a ~10 MB heap
 * (5–8 ms on the main thread, measured with --trace-gc; docs/performance.md "Agent memory").
 * Node marks measureMemory experimental and says so once, on stderr, at its first call: that notice
 * (and only it) is held back, as the agent does not use what it measures.
 */
import { measureMemory } from "node:vm";

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

/** Starts a full collection (the measurement is dropped), without Node's "experimental" notice for it. */
function collectNow(): void {
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
