/**
 * The worker's own log lines (wrangler tail, `wrangler dev`'s terminal), written after the answer has
 * left. Under `wrangler dev` each console call costs ~2 ms of the request it is made in (workerd hands
 * it to the inspector wrangler listens on: measured, one line on an empty route 5.6 → 7.6 ms, three
 * → 10.1 ms), and GitHub's answer must not wait for a line about it. Lines queue here, keep their order
 * across levels, and go out a few milliseconds later, consecutive lines of one level in one call.
 * An error line goes out at once, after whatever is queued: nothing is lost if the isolate then dies.
 */
import { waitUntil } from "cloudflare:workers";

type Level = "log" | "warn";

/** Late enough that the answer is out (worker → wrangler's proxy → client); soon enough for a person. */
export const LINE_DELAY_MS = 50;

const queued: Array<{ level: Level; line: string }> = [];
let scheduled = false;

export function logInfo(line: string): void {
  enqueue("log", line);
}

export function logWarn(line: string): void {
  enqueue("warn", line);
}

/** Written now (after the queued lines): an error may be the last thing this isolate does. */
export function logError(line: string, ...detail: unknown[]): void {
  flushLines();
  console.error(line, ...detail);
}

/** Writes the queued lines now. Tests call it instead of waiting. */
export function flushLines(): void {
  scheduled = false;
  let i = 0;
  while (i < queued.length) {
    const level = queued[i]!.level;
    let j = i;
    while (j < queued.length && queued[j]!.level === level) j++;
    console[level](queued.slice(i, j).map((q) => q.line).join("\n"));
    i = j;
  }
  queued.length = 0;
}

function enqueue(level: Level, line: string): void {
  queued.push({ level, line });
  if (scheduled) return;
  scheduled = true;
  const written = new Promise<void>((resolve) =>
    setTimeout(() => {
      flushLines();
      resolve();
    }, LINE_DELAY_MS),
  );
  try {
    // A stateless request ends with its answer: keep it alive until its lines are out. (In a
    // Durable Object the object outlives the call anyway.)
    waitUntil(written);
  } catch {
    /* no request to extend (a test's direct call): the timer still fires */
  }
}
