import { defineConfig } from "vitest/config";

// Agent, shared and end-to-end tests run in Node with real processes and real sockets.
export default defineConfig({
  test: {
    include: ["agent/**/*.test.ts", "cli/**/*.test.ts", "shared/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
