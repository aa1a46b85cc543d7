/**
 * The setup page in a real browser (Debian's Chromium, driven by playwright-core) against the real worker
 * (`wrangler dev`, fresh storage): a newcomer signs in and the home page links to /setup because items
 * are red; "Add a server" registers an agent and shows its token once with the server's commands; a
 * real agent started with that token turns "Agents" green, GitHub's signed ping turns "GitHub's webhook"
 * green, a delivery signed with the wrong secret turns it red again naming the fix, and once everything
 * is done the home page's link is gone. The page reads only the real API; nothing here answers for it.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { createRepo } from "../dev/git-repo.ts";
import { sendWebhook, signSha256 } from "../dev/github.ts";
import { REPO_ROOT, startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";

const CHROMIUM = "/usr/bin/chromium";
const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)`;
if (missing) console.warn(`[setup-dashboard.e2e] skipped: ${missing}`);

const SHOTS = join(REPO_ROOT, "test-output/screenshots");

describe.skipIf(missing !== null)("the setup page, in Chromium, as a newcomer completes each step", () => {
  let worker: WorkerProcess;
  let browser: Browser;
  let page: Page;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    worker = await startWorker();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-component-update", "--disable-sync"],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    await page.goto(`${worker.url}/login?next=%2F`);
    await page.fill("input[name=token]", TEST_SECRETS.ADMIN_TOKEN);
    await Promise.all([page.waitForURL(`${worker.url}/`), page.click("button[type=submit]")]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await agent?.stop();
    await worker?.stop();
  });

  const item = (id: string) => page.locator(`section.setup-target li.check[data-check="${id}"]`);
  const stateOf = (id: string) => item(id).getAttribute("data-state");
  /** Waits for the live checklist (it re-reads every 5 s) to show `id` in `state`. */
  const waitState = (id: string, state: string) => page.locator(`section.setup-target li.check[data-check="${id}"][data-state="${state}"]`).waitFor({ timeout: 20_000 });

  it("links the home page to /setup while items are red, and shows what to do next", async () => {
    const banner = page.locator(".setup-banner");
    await banner.waitFor({ timeout: 15_000 });
    expect(await banner.textContent()).toMatch(/^Setup: 2 items to do \(default\)\. Open the setup checklist$/);
    await Promise.all([page.waitForURL(`${worker.url}/setup`), banner.getByRole("link").click()]);
    await item("agents").waitFor({ timeout: 15_000 });
    expect(await stateOf("secrets")).toBe("ok");
    expect(await stateOf("agents")).toBe("red");
    expect(await item("agents").textContent()).toContain("No agent is registered in this target.");
    expect(await stateOf("webhook")).toBe("red");
    expect(await item("webhook").textContent()).toContain(`payload URL ${worker.url}/webhook, content type application/json`);
    // Optional channels are not red: a newcomer is not told to set up what they may not want.
    expect(await stateOf("github")).toBe("warn");
    expect(await stateOf("notify")).toBe("warn");
    await page.screenshot({ path: join(SHOTS, "setup-red.png"), fullPage: true });
  });

  it("adds a server: the token is shown once with the install commands, and the agent it names connects", async () => {
    // A relative app directory is refused before anything is registered, naming the field.
    await page.fill("form.add-server input[name=name]", "web-1");
    await page.fill("form.add-server input[name=workdir]", "srv/app");
    await page.click("form.add-server button[type=submit]");
    await page.locator(".add-server-result .error", { hasText: "workdir must be an absolute path on the server" }).waitFor({ timeout: 10_000 });
    expect(await page.locator(".add-server-result pre").count()).toBe(0);

    await page.fill("form.add-server input[name=name]", "web-1");
    await page.fill("form.add-server input[name=repo]", "acme/app");
    await page.fill("form.add-server input[name=workdir]", "/srv/app");
    await page.click("form.add-server button[type=submit]");
    const token = (await page.locator(".add-server-result pre.token").textContent({ timeout: 10_000 }))!.trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    const install = (await page.locator(".add-server-result pre.install").textContent())!;
    expect(install).toContain(`server: ${worker.url.replace(/^http/, "ws")}\ntarget: default\nname: web-1\n`);
    expect(install).toContain(`HOOKRELAY_AGENT_TOKEN='${token}' sh -c 'hookrelay-agent check --config /etc/hookrelay/agent.yml && hookrelay-agent install --config /etc/hookrelay/agent.yml'`);
    expect(install).toContain(`${worker.url}/agent/hookrelay-agent.mjs{,.sha256}`);
    // The pipeline's repo and app directory filled in, as `agents add --repo --workdir` does.
    expect(install).toContain("    repo: acme/app\n");
    expect(install).toContain("    workdir: /srv/app\n");
    expect(install).not.toContain("# edit");
    await waitState("agents", "red");
    // It was red before too: wait for the redraw that "Add a server" starts, not just the state.
    await expect.poll(() => item("agents").textContent(), { timeout: 20_000 }).toContain("web-1: registered, never connected");

    // Registering the same name again is refused with the API's reason, and no token is shown.
    await page.fill("form.add-server input[name=name]", "web-1");
    await page.click("form.add-server button[type=submit]");
    await page.locator(".add-server-result .error").waitFor({ timeout: 10_000 });
    expect(await page.locator(".add-server-result pre").count()).toBe(0);

    const repo = createRepo();
    agent = await startAgent({ server: worker.url, name: "web-1", token, pipelines: [{ name: "app", repo: "acme/app", branches: ["main"], workdir: repo.live, steps: [{ name: "noop", run: "true" }] }] });
    await waitState("agents", "ok");
    expect(await item("agents").textContent()).toMatch(/web-1: connected since .* · version [^,]+, protocol 3/);
  });

  it("turns the webhook green when GitHub's ping arrives, red on a wrong secret, and the home page's link goes once all is done", async () => {
    const ping = await sendWebhook(worker.url, { event: "ping", secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload: { zen: "Design for failure.", hook_id: 7 } });
    expect(ping.status).toBe(200);
    await waitState("webhook", "ok");
    expect(await item("webhook").textContent()).toMatch(/Last ping \(delivery [0-9a-f-]+\) at .*: answered 200: pong\./);

    const home = await page.context().newPage();
    await home.goto(`${worker.url}/`);
    await home.locator(".setup-slot[data-checked]").waitFor({ state: "attached", timeout: 15_000 });
    expect(await home.locator(".setup-banner").count()).toBe(0);
    await home.close();

    // A hook with the wrong secret: GitHub's delivery is refused and the page says which secret to fix.
    const body = JSON.stringify({ zen: "Wrong secret.", hook_id: 8 });
    const res = await fetch(`${worker.url}/webhook`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": "ping", "x-github-delivery": "wrong-1", "x-hub-signature-256": signSha256("not the secret", body) },
      body,
    });
    expect(res.status).toBe(401);
    await waitState("webhook", "red");
    expect(await item("webhook").textContent()).toContain("the hook's Secret must be the worker's GITHUB_WEBHOOK_SECRET");
    await page.screenshot({ path: join(SHOTS, "setup-refused.png"), fullPage: true });
  });
});
