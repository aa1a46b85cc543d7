/**
 * One full garbage collection once the agent has been idle a while after a job. Node runs no GC when
 * nothing allocates: after a step floods output, the buffers it left dead (the tail's ring, the
 * reads', the socket's) stay until the next job, megabytes of RssAnon on an agent that waits for
 * pushes all day. `vm.measureMemory` with `execution: "eager"` is Node's documented way to have V8
 * collect now (it measures after a full GC; the measurement itself is thrown away), and V8's memory
 * reducer then follows up as it does after any full collection. Costs one collection of a ~10 MB heap.
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
      measureMemory({ mode: "summary", execution: "eager" }).catch(() => undefined);
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
