/**
 * Loaded into an agent by `node bench/agent-memory.ts --probe` only (NODE_OPTIONS=--import this file),
 * never by the agent itself: on SIGUSR2 it writes the process's own view of its memory to
 * $HOOKRELAY_MEM_PROBE_FILE as one JSON line (process.memoryUsage(), V8's heap spaces), and with
 * $HOOKRELAY_MEM_PROBE_SNAPSHOT set, a heap snapshot into that directory too. It tells V8's heap and
 * the buffers it tracks (external, arrayBuffers) from the C allocator's share of RssAnon. With
 * $HOOKRELAY_MEM_PROBE_GC set (and --expose-gc), it then runs a full GC and writes a second line: what
 * was garbage not yet collected, as against memory still held.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import v8 from "node:v8";

const file = process.env.HOOKRELAY_MEM_PROBE_FILE;
if (file) {
  const reading = (phase) => {
    const mu = process.memoryUsage();
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size }]));
    const heap = v8.getHeapStatistics();
    appendFileSync(file, JSON.stringify({ phase, at: Date.now(), memoryUsage: mu, physical: heap.total_physical_size, malloced: heap.malloced_memory, spaces }) + "\n");
    const snapDir = process.env.HOOKRELAY_MEM_PROBE_SNAPSHOT;
    if (snapDir) v8.writeHeapSnapshot(join(snapDir, `agent-${process.pid}-${Date.now()}-${phase}.heapsnapshot`));
  };
  process.on("SIGUSR2", () => {
    reading("as found");
    if (process.env.HOOKRELAY_MEM_PROBE_GC && typeof globalThis.gc === "function") {
      globalThis.gc();
      reading("after gc()");
    }
  });
}
