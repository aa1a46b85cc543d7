/**
 * The dashboard in a real browser (Debian's Chromium, driven by playwright-core) against the real
 * worker (`wrangler dev`) and two real agent processes deploying from a real git repo: sign-in, deep
 * links, a live log over one EventSource, cancel from the page, markup from a push staying text, the
 * CSP refusing an inline script, and screenshots at laptop and phone widths (test-output/screenshots/).
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, jobLog, waitForAgent, waitForDeployment } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { REPO_ROOT, startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";

const CHROMIUM = "/usr/bin/chromium";
const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)`;
if (missing) console.warn(`[dashboard.e2e] skipped: ${missing}`);

const TARGET = "dash";
const SHOTS = join(REPO_ROOT, "test-output/screenshots");
const HOSTILE_BRANCH = "<img src=x onerror=alert(1)>";
const HOSTILE_MESSAGE = "<script>alert(1)</script> Fix <img src=x onerror=alert(1)>";
const HOSTILE_OUTPUT = "<script>alert(2)</script><b>bold?</b><img src=x onerror=alert(3)>";

/** Both hosts: a short rollout with ANSI colours; it prints the branch, and off main some markup as it is. */
const SITE = {
  name: "site",
  repo: "acme/site",
  branches: ["**"],
  steps: [
    { name: "build", run: String.raw`printf '\033[1mbuilding\033[0m %s\n' "$HOOKRELAY_BRANCH"; printf '\033[32m✓ 42 pages\033[0m in \033[33m0.8 s\033[0m\n'; [ "$HOOKRELAY_BRANCH" = main ] || echo '${HOSTILE_OUTPUT}'` },
    { name: "migrate", run: "echo 'no migrations to apply'" },
    { name: "restart", run: String.raw`printf 'restarting \033[36mgunicorn\033[0m\n'; echo 'healthy'` },
  ],
};
/** The "scroll" step's next burst waits for its file here (the test writes it), not for a time that a loaded machine may overrun. */
const SCROLL_GATES = mkdtempSync(join(tmpdir(), "hookrelay-dash-scroll-"));
const waitFor = (file: string) => `for i in $(seq 600); do [ -e '${join(SCROLL_GATES, file)}' ] && break; sleep 0.1; done`;
/** web-1 only: prints a line, sleeps, prints another; or waits to be canceled (branch "cancel"); or prints a long log in three bursts (branch "scroll"), each after the test says so. */
const SLOW = {
  name: "slow",
  repo: "acme/slow",
  branches: ["**"],
  steps: [
    {
      name: "run",
      run: [
        'case "$HOOKRELAY_BRANCH" in',
        "  cancel) echo waiting-for-cancel; sleep 60 ;;",
        `  scroll) seq -f 'row %g' 1 150; ${waitFor("more")}; seq -f 'row %g' 151 300; ${waitFor("last")}; echo last-row ;;`,
        "  *) echo line-one; sleep 5; echo line-two ;;",
        "esac",
      ].join("\n"),
    },
  ],
};

async function pushTo(worker: WorkerProcess, repo: string, sha: string, branch: string, message: string): Promise<{ id: string; jobs: string[] }> {
  const payload = pushPayload({ repo, ref: `refs/heads/${branch}`, after: sha, before: "1".repeat(40), pusher: "octocat" });
  (payload.head_commit as { message: string }).message = message;
  const res = await sendWebhook(worker.url, { target: TARGET, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload });
  if (res.status !== 202) throw new Error(`push answered ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.deployments[0];
}

describe.skipIf(missing !== null)("the dashboard in Chromium", () => {
  let worker: WorkerProcess;
  let repo: GitRepo;
  const agents: AgentProcess[] = [];
  let browser: Browser;
  let signedIn: BrowserContext;
  let site: { id: string; jobs: string[] };
  let hostile: { id: string; jobs: string[] };
  const dialogs: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    worker = await startWorker();
    repo = createRepo();
    const workdir = repo.live;
    // The two hosts name different GitHub environments for the site (issue 23 item 11): neither wins.
    agents.push(await startAgent({ server: worker.url, target: TARGET, name: "web-1", pipelines: [{ ...SITE, workdir, environment: "production", environment_url: "https://site.example.com" }, { ...SLOW, workdir }] }));
    agents.push(await startAgent({ server: worker.url, target: TARGET, name: "web-2", pipelines: [{ ...SITE, workdir, environment: "staging" }] }));
    await Promise.all([waitForAgent(worker.url, TARGET, "web-1"), waitForAgent(worker.url, TARGET, "web-2")]);
    const sha = repo.commit({ "pricing.html": "<h1>Pricing</h1>\n" }, "Add the pricing page");
    site = await pushTo(worker, "acme/site", sha, "main", "Add the pricing page\n\nWith the three plans.");
    await waitForDeployment(worker.url, TARGET, site.id, ["succeeded"]);
    hostile = await pushTo(worker, "acme/site", sha, HOSTILE_BRANCH, HOSTILE_MESSAGE);
    await waitForDeployment(worker.url, TARGET, hostile.id, ["succeeded"]);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-component-update", "--disable-sync"],
    });
    signedIn = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all(agents.map((a) => a.stop()));
    await worker?.stop();
  });

  /** A new tab of the signed-in browser; any alert/confirm/prompt it opens is recorded (and would fail the markup test). */
  async function newPage(context = signedIn): Promise<Page> {
    const page = await context.newPage();
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    return page;
  }

  it("sends a page without a session to /login, and signs in with the admin token into an HttpOnly cookie", async () => {
    const page = await newPage();
    await page.goto(`${worker.url}/targets/${TARGET}`);
    expect(new URL(page.url()).pathname).toBe("/login");
    expect(new URL(page.url()).searchParams.get("next")).toBe(`/targets/${TARGET}`);
    await page.fill("input[name=token]", TEST_SECRETS.ADMIN_TOKEN);
    await page.click("button[type=submit]");
    await page.waitForURL(`${worker.url}/targets/${TARGET}`);
    await page.locator("main td", { hasText: "web-2" }).first().waitFor({ timeout: 10_000 });
    await page.locator("main a", { hasText: "Add the pricing page" }).first().waitFor();
    const cookies = await signedIn.cookies();
    expect(cookies.find((c) => c.name === "hookrelay_session")).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    // Nothing the page's script can read holds the token.
    const stored = await page.evaluate<string>('[document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage), location.href].join(" ")');
    expect(stored).not.toContain(TEST_SECRETS.ADMIN_TOKEN);
    expect(stored).not.toContain("hookrelay_session");
    await page.close();
  });

  it("says so on /login when the token is wrong", async () => {
    const context = await browser.newContext();
    const page = await newPage(context);
    await page.goto(`${worker.url}/login`);
    await page.fill("input[name=token]", "not-the-token");
    const [answer] = await Promise.all([page.waitForResponse((r) => r.request().method() === "POST"), page.click("button[type=submit]")]);
    expect(answer.status()).toBe(401);
    await expect(page.locator("[role=alert]").textContent()).resolves.toBe("That is not the admin token.");
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });

  it("opens a deployment by its URL in a fresh page: the commit, its links, the hosts × steps and their logs; back and forward work", async () => {
    const page = await newPage();
    const sha = repo.head(repo.work);
    await page.goto(`${worker.url}/targets/${TARGET}/deployments/${site.id}`);
    const rows = page.locator("main section.card table tbody tr");
    await rows.first().waitFor({ timeout: 10_000 });
    expect(await page.locator("h1 .title").textContent()).toBe("Add the pricing page");
    expect(await page.locator("h1 .status").textContent()).toContain("succeeded");
    expect(await rows.nth(0).locator("td").first().textContent()).toBe("web-1");
    expect(await rows.nth(1).locator("td").first().textContent()).toBe("web-2");
    const headers = await page.locator("main section.card").first().locator("th").allTextContents();
    expect(headers).toEqual(["Host", "Batch", "Status", "build", "migrate", "restart", "Took"]);
    expect(await page.locator(`a[href="https://github.com/acme/site/commit/${sha}"]`).count()).toBeGreaterThan(0);
    expect(await page.locator(`a[href="https://github.com/acme/site/compare/${"1".repeat(40)}...${sha}"]`).count()).toBe(1);
    // Each host's log, with the ANSI colours as spans.
    await page.locator(`#log-${site.jobs[1]} .log`, { hasText: "healthy" }).waitFor({ timeout: 10_000 });
    expect(await page.locator(`#log-${site.jobs[0]} .log span.fg-green`).first().textContent()).toBe("✓ 42 pages");
    expect(await page.locator(`#log-${site.jobs[0]} .log`).textContent()).not.toContain("\u001b");
    // Times are relative, with the absolute time on hover.
    const time = page.locator("main time").first();
    expect(await time.textContent()).toMatch(/ago|just now/);
    expect(await time.getAttribute("title")).toBeTruthy();

    await page.locator(`#log-${site.jobs[0]} h3 a`).click();
    await page.waitForURL(`${worker.url}/targets/${TARGET}/jobs/${site.jobs[0]}`);
    await page.locator("main td", { hasText: "migrate" }).waitFor();
    await page.goBack();
    await page.waitForURL(`${worker.url}/targets/${TARGET}/deployments/${site.id}`);
    await page.locator("h1 .title", { hasText: "Add the pricing page" }).waitFor();
    await page.goForward();
    await page.locator("main td", { hasText: "migrate" }).waitFor();
    await page.reload();
    await page.locator("main td", { hasText: "restart" }).waitFor();
    await page.close();
  });

  it("shows where the hosts disagree on GitHub's environment, each host's value, and the target's defaults used instead", async () => {
    const page = await newPage();
    await page.goto(`${worker.url}/targets/${TARGET}/deployments/${site.id}`);
    const notice = page.locator("main section.card p.notice", { hasText: "disagree" });
    await notice.waitFor({ timeout: 10_000 });
    expect(await notice.textContent()).toBe("The hosts disagree on GitHub's environment, environment_url, production_environment: no host's value was used, the target's defaults were.");
    const rows = await page.locator("main section.card", { has: page.locator("p.notice", { hasText: "disagree" }) }).locator("table").first().locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    expect(rows.slice(0, 2)).toEqual([
      ["environment", "web-1", "production", `${TARGET} (the target's name)`],
      ["environment", "web-2", "staging", `${TARGET} (the target's name)`],
    ]);
    expect(rows.map((r) => r[0])).toEqual(["environment", "environment", "environment_url", "environment_url", "production_environment", "production_environment"]);
    expect(await page.locator("dt", { hasText: "GitHub environment" }).locator("xpath=following-sibling::dd").textContent()).toBe(`${TARGET} (not production)`);
    await page.close();
  });

  it("shows a running job's lines as they arrive, over one EventSource and no repeated log fetches", async () => {
    const sha = repo.head(repo.work);
    const live = await pushTo(worker, "acme/slow", sha, "live", "Live log");
    const jobId = live.jobs[0] ?? "";
    await eventually("line-one in the log", async () => (await jobLog(worker.url, TARGET, jobId)).includes("line-one"), 20_000, 100);
    const page = await newPage();
    const logRequests: string[] = [];
    page.on("request", (r) => {
      const url = new URL(r.url());
      if (url.pathname.startsWith("/api/") && url.pathname.endsWith("/log")) logRequests.push(`${r.method()} ${r.resourceType()} ${url.pathname}${url.search}`);
    });
    await page.goto(`${worker.url}/targets/${TARGET}/deployments/${live.id}`);
    const log = page.locator(`#log-${jobId} .log`);
    await log.filter({ hasText: "line-one" }).waitFor({ timeout: 10_000 });
    expect(await log.textContent()).not.toContain("line-two");
    expect(await page.locator("h1 .status").textContent()).toContain("running");
    await log.filter({ hasText: "line-two" }).waitFor({ timeout: 15_000 });
    await page.locator("h1 .status", { hasText: "succeeded" }).waitFor({ timeout: 10_000 });
    // The status is polled and the log followed (every 500 ms) separately: the stream's `end` event,
    // which empties the note under the log, comes after the log's last piece.
    await eventually("the log stream's end", async () => (await page.locator(`#log-${jobId} .log-note`).textContent()) === "", 10_000, 50);
    // What arrived piece by piece is the whole log, as the API's plain GET has it.
    expect(await log.textContent()).toBe(await jobLog(worker.url, TARGET, jobId));
    expect(await log.textContent()).toContain("line-one\nline-two\n");
    expect(logRequests).toEqual([`GET eventsource /api/targets/${TARGET}/jobs/${jobId}/log?follow=1`]);
    await page.close();
  });

  it("keeps a live log at its end while the reader is there, and where they scrolled to once they scroll up", async () => {
    const scroll = await pushTo(worker, "acme/slow", repo.head(repo.work), "scroll", "Long log");
    const page = await newPage();
    await page.goto(`${worker.url}/targets/${TARGET}/deployments/${scroll.id}`);
    const pre = page.locator(`#log-${scroll.jobs[0]} .log`);
    await pre.filter({ hasText: "row 150" }).waitFor({ timeout: 10_000 });
    const atEnd = () => pre.evaluate((el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 8);
    await eventually("the log scrolled to its end", atEnd, 5_000, 50);
    expect(await pre.textContent()).not.toContain("row 151");
    await pre.evaluate((el) => el.scrollTo(0, 0));
    writeFileSync(join(SCROLL_GATES, "more"), "");
    await pre.filter({ hasText: "row 300" }).waitFor({ timeout: 10_000 });
    expect(await pre.evaluate((el) => el.scrollTop)).toBe(0);
    await pre.evaluate((el) => el.scrollTo(0, el.scrollHeight));
    writeFileSync(join(SCROLL_GATES, "last"), "");
    await pre.filter({ hasText: "last-row" }).waitFor({ timeout: 10_000 });
    await eventually("the log followed to its end again", atEnd, 5_000, 50);
    await page.close();
  });

  it("cancels a running deployment from its page", async () => {
    const sha = repo.head(repo.work);
    const slow = await pushTo(worker, "acme/slow", sha, "cancel", "Slow one");
    const page = await newPage();
    await page.goto(`${worker.url}/targets/${TARGET}/deployments/${slow.id}`);
    await page.locator(".log", { hasText: "waiting-for-cancel" }).waitFor({ timeout: 20_000 });
    // The target page names the job each agent runs now, linking to its deployment.
    const other = await newPage();
    await other.goto(`${worker.url}/targets/${TARGET}`);
    await other.locator(`main a[href="/targets/${TARGET}/deployments/${slow.id}"]`, { hasText: "slow (running)" }).waitFor({ timeout: 10_000 });
    // …and its stored logs against the budget (wrangler.toml: 1024 MiB), linking the oldest job that has its log: the first push's.
    const storage = other.locator("main section.storage p.log-storage");
    await storage.waitFor({ timeout: 10_000 });
    expect(await storage.textContent()).toMatch(/^\d+\.\d\d MiB in [\d,]+ rows of a 1024 MiB budget \(0 %\)\. Oldest job with its log: /);
    expect(site.jobs).toContain((await storage.locator("a").getAttribute("href"))?.split("/").pop());
    await other.close();
    await page.getByRole("button", { name: "Cancel deployment" }).click();
    const ended = await waitForDeployment(worker.url, TARGET, slow.id, ["canceled"], 30_000);
    expect(ended.jobs.map((j: { status: string }) => j.status)).toEqual(["canceled"]);
    await page.locator("h1 .status", { hasText: "canceled" }).waitFor({ timeout: 10_000 });
    expect(await page.getByRole("button", { name: "Cancel deployment" }).isHidden()).toBe(true);
    await page.close();
  });

  it("shows a branch, a commit message and step output holding markup as text: no element made, no script run", async () => {
    const page = await newPage();
    await page.goto(`${worker.url}/targets/${TARGET}/deployments/${hostile.id}`);
    await page.locator(".log", { hasText: "no migrations" }).first().waitFor({ timeout: 10_000 });
    await page.locator(`#log-${hostile.jobs[1]} .log`, { hasText: "healthy" }).waitFor({ timeout: 10_000 });
    expect(await page.locator("h1 .title").textContent()).toBe(HOSTILE_MESSAGE);
    expect(await page.locator("dd .ref").textContent()).toBe(HOSTILE_BRANCH);
    const logText = await page.locator(`#log-${hostile.jobs[0]} .log`).textContent();
    expect(logText).toContain(`building ${HOSTILE_BRANCH}\n`);
    expect(logText).toContain(`${HOSTILE_OUTPUT}\n`);
    expect(await page.locator("main img, main script, main b").count()).toBe(0);
    await page.goto(`${worker.url}/targets/${TARGET}`);
    await page.locator("main td .ref", { hasText: HOSTILE_BRANCH }).first().waitFor({ timeout: 10_000 });
    expect(await page.locator("main img, main script, main b").count()).toBe(0);
    expect(dialogs).toEqual([]);
    await page.close();
  });

  it("has the CSP refuse an inline script (the browser reports the violation)", async () => {
    const page = await newPage();
    const res = await page.goto(`${worker.url}/targets/${TARGET}`);
    expect(res?.headers()["content-security-policy"]).toContain("script-src 'self'");
    await page.locator("main h1").waitFor();
    // Injected the way an XSS would (a <script> element with inline text); page.evaluate itself is not subject to the CSP.
    const violation = await page.evaluate<string>(`new Promise((resolve) => {
      document.addEventListener("securitypolicyviolation", (e) => resolve(e.violatedDirective + " " + e.blockedURI), { once: true });
      const script = document.createElement("script");
      script.textContent = "window.__inlineRan = true";
      document.body.append(script);
    })`);
    expect(violation).toBe("script-src-elem inline");
    expect(await page.evaluate<unknown>("window.__inlineRan")).toBeUndefined();
    await page.close();
  });

  it("saves screenshots of the main pages at 1280×800 and 390×844", async () => {
    const state = await signedIn.storageState();
    for (const [size, viewport] of [["desktop", { width: 1280, height: 800 }], ["mobile", { width: 390, height: 844 }]] as const) {
      const context = await browser.newContext({ viewport, storageState: state, colorScheme: "light" });
      const page = await newPage(context);
      const shots: [string, string, string][] = [
        ["home", `/?t=${TARGET}`, "main section.card table"],
        ["target", `/targets/${TARGET}`, "main section.card table"],
        ["deployment", `/targets/${TARGET}/deployments/${site.id}`, `#log-${site.jobs[1]} .log:has-text("healthy")`],
      ];
      for (const [name, url, ready] of shots) {
        await page.goto(`${worker.url}${url}`);
        await page.locator(ready).first().waitFor({ timeout: 10_000 });
        // Every log stream has ended (its "live" note is gone).
        await eventually(`${name} logs ended`, async () => (await page.locator(".log-note:not(:empty)").count()) === 0, 10_000, 50);
        await page.screenshot({ path: join(SHOTS, `${name}-${size}.png`), fullPage: true });
      }
      // Nothing wider than the phone: no sideways scrolling of the page itself.
      if (size === "mobile") expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
      await context.close();
    }
    for (const name of ["home", "target", "deployment"]) expect(existsSync(join(SHOTS, `${name}-mobile.png`))).toBe(true);
  });

  it("re-deploys the commit from a deployment's page and goes to the new deployment", async () => {
    const page = await newPage();
    await page.goto(`${worker.url}/targets/${TARGET}/deployments/${site.id}`);
    await page.locator("h1 .title", { hasText: "Add the pricing page" }).waitFor({ timeout: 10_000 });
    await page.getByRole("button", { name: "Re-deploy this commit" }).click();
    await page.waitForURL((url) => url.pathname.startsWith(`/targets/${TARGET}/deployments/`) && !url.pathname.endsWith(site.id), { timeout: 10_000 }).catch(async (e) => {
      throw new Error(`${String(e)}; the page says: ${await page.locator(".notice").textContent()}`);
    });
    const id = new URL(page.url()).pathname.split("/").pop() ?? "";
    // The same pipeline, branch and commit, deployed again by the real agents (a re-run carries the push
    // event their configs allow; delivery manual-… and pusher "api" say it was a re-run).
    const done = await waitForDeployment(worker.url, TARGET, id, undefined, 30_000);
    expect(done).toMatchObject({ pipeline: "site", ref: "refs/heads/main", sha: repo.head(repo.work), event: "push", pusher: "api", status: "succeeded" });
    await page.locator("h1 .status", { hasText: done.status }).waitFor({ timeout: 10_000 });
    expect(await page.locator("h1 .title").textContent()).toBe(done.message || "(no commit message)");
    await page.close();
  });

  it("shows an agent that went away as offline, since when", async () => {
    await agents[1]?.stop();
    await eventually("web-2 offline", async () => (await api(worker.url, `/api/targets/${TARGET}/agents`)).body.agents.find((a: { name: string; connected: boolean }) => a.name === "web-2" && !a.connected), 15_000, 100);
    const page = await newPage();
    await page.goto(`${worker.url}/targets/${TARGET}`);
    const row = page.locator("main tr", { hasText: "web-2" }).first();
    await row.locator(".s-offline", { hasText: "offline since" }).waitFor({ timeout: 10_000 });
    expect(await row.locator(".s-offline time").getAttribute("title")).toBeTruthy();
    await page.close();
  });

  it("answers the client files with their types and nosniff", async () => {
    for (const [file, type] of [["app.js", "text/javascript"], ["app.css", "text/css"], ["log-view.js", "text/javascript"]]) {
      const res = await fetch(`${worker.url}/assets/${file}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain(type);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    }
    expect((await fetch(`${worker.url}/assets/nope.js`)).status).toBe(404);
    expect((await fetch(`${worker.url}/assets/..%2Fwrangler.toml`)).status).toBe(404);
  });

  /** A fresh browser signed in through the form; its session cookie as a `Cookie` header value. */
  async function signedInBrowser(): Promise<{ context: BrowserContext; page: Page; cookie: string }> {
    const context = await browser.newContext();
    const page = await newPage(context);
    await page.goto(`${worker.url}/login?next=${encodeURIComponent(`/targets/${TARGET}`)}`);
    await page.fill("input[name=token]", TEST_SECRETS.ADMIN_TOKEN);
    await Promise.all([page.waitForURL(`${worker.url}/targets/${TARGET}`), page.click("button[type=submit]")]);
    const session = (await context.cookies()).find((c) => c.name === "hookrelay_session");
    if (!session) throw new Error("no session cookie after signing in");
    return { context, page, cookie: `hookrelay_session=${session.value}` };
  }
  const apiWithCookie = async (cookie: string) => (await fetch(`${worker.url}/api/targets/${TARGET}/agents`, { headers: { cookie } })).status;

  it("ends the session on the server when signing out: a copy of the cookie no longer opens /api", async () => {
    const { context, page, cookie } = await signedInBrowser();
    expect(await apiWithCookie(cookie)).toBe(200);
    await Promise.all([page.waitForURL(`${worker.url}/login`), page.getByRole("button", { name: "Sign out", exact: true }).click()]);
    expect(await apiWithCookie(cookie)).toBe(401);
    await context.close();
  });

  // Last: it ends every session, the shared signed-in browser's too.
  it("signs out everywhere from the header: another browser's session ends too", async () => {
    const a = await signedInBrowser();
    const b = await signedInBrowser();
    // To the sign-in page: straight from the form's redirect, or (when the page's own poll saw the ended session first) with the page as next.
    await Promise.all([a.page.waitForURL((u) => u.pathname === "/login"), a.page.getByRole("button", { name: "Sign out everywhere" }).click()]);
    expect(await apiWithCookie(b.cookie)).toBe(401);
    await b.page.goto(`${worker.url}/targets/${TARGET}`);
    expect(new URL(b.page.url()).pathname).toBe("/login");
    await Promise.all([a.context.close(), b.context.close()]);
  });
});
