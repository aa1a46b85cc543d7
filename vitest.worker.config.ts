import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Worker tests run inside workerd with the real wrangler.toml bindings (Durable Object, vars).
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          GITHUB_WEBHOOK_SECRET: "It's a Secret to Everybody",
          ADMIN_TOKEN: "test-admin-token-0123456789abcdef",
          // 1 MiB per target, so that worker/target-object/jobs/log-budget.test.ts passes it with real events.
          // Each test has its own target; none other stores near that much.
          LOG_BUDGET_MB: "1",
          // 1,000 rows per job, so that log-budget.test.ts floods past the row cap with a few thousand events.
          JOB_LOG_ROWS: "1000",
        },
      },
    }),
  ],
  test: {
    include: ["worker/**/*.test.ts"],
  },
});
