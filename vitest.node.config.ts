import { defineConfig } from "vitest/config";

// Agent, shared and end-to-end tests run in Node with real processes and real sockets.
export default defineConfig({
  test: {
    include: ["agent/**/*.test.ts", "cli/**/*.test.ts", "shared/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two files at a time, also on 2 cores (vitest's default there is one): an end-to-end file spends
    // most of its time waiting on its own worker, agents and steps, so one at a time left a core idle
    // and `npm test` took ~17 min. Nothing here asserts a wall-clock time; waits are bounded by outcome.
    maxWorkers: 2,
  },
});
