/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core): an operator types
 * the admin token and sees the jobs, their steps and logs — and a branch named like markup stays text.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { waitForAgent, waitForJob } from "../dev/api.ts";
import { push } from "../testing/push.ts";
import { createRepo } from "../dev/git-repo.ts";
import { startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";

const CHROMIUM = "/usr/bin/chromium";
const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)`;
if (missing) console.warn(`[dashboard.e2e] skipped: ${missing}`);

const HOSTILE = "<img/src=x/onerror=window.__pwned=1>";

describe.skipIf(missing !== null)("the dashboard", () => {
  let worker: WorkerProcess;
  let agent: AgentProcess;
  let browser: Browser;
  let jobId = "";

  beforeAll(async () => {
    worker = await startWorker();
    const repo = createRepo();
    agent = await startAgent({
      server: worker.url,
      target: "dash",
      pipelines: [{ name: "site", repo: "acme/site", branches: ["**"], workdir: repo.live, steps: [{ name: "greet", run: 'echo "deploying $HOOKRELAY_BRANCH"' }] }],
    });
    await waitForAgent(worker.url, "dash", "web-1");
    const res = await push(worker.url, "dash", "acme/site", repo.head(repo.work), { branch: HOSTILE });
    jobId = res.body.jobs[0].id;
    await waitForJob(worker.url, "dash", jobId);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-component-update", "--disable-sync"],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await agent?.stop();
    await worker?.stop();
  });

  it("shows nothing without the token, then the target's agents, jobs, steps and log", async () => {
    const page = await browser.newPage();
    await page.goto(`${worker.url}/`);
    expect(await page.locator("#jobs tr").count()).toBe(0);
    await page.fill("#target", "dash");
    await page.fill("#token", "wrong-token");
    await page.click("#load");
    await page.locator("#error").filter({ hasText: "401" }).waitFor({ timeout: 10_000 });

    await page.fill("#token", TEST_SECRETS.ADMIN_TOKEN);
    await page.click("#load");
    const row = page.locator("#jobs tr").first();
    await row.waitFor({ timeout: 10_000 });
    expect(await page.locator("#agents tr td").first().textContent()).toBe("web-1");
    expect(await row.locator("td").nth(0).textContent()).toBe("succeeded");
    // The branch is shown as the text it is; no element was made of it and no script ran.
    expect(await row.locator("td.ref").textContent()).toBe(`refs/heads/${HOSTILE}`);
    expect(await page.locator("img").count()).toBe(0);

    await row.click();
    await page.locator("#log").filter({ hasText: `deploying ${HOSTILE}` }).waitFor({ timeout: 10_000 });
    expect(await page.locator("#steps tr td").first().textContent()).toBe("greet");
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    await page.screenshot({ path: join(mkdtempSync(join(tmpdir(), "hookrelay-dash-")), "dashboard.png"), fullPage: true });
    await page.close();
  });
});
