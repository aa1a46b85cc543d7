/**
 * Gates in the dashboard, in a real browser (Debian's Chromium, driven by playwright-core) against the
 * real worker (`wrangler dev`) and a real agent whose pipeline declares `wait_for: {approval: true}`
 * (issue 25): a signed push waits on its deployment's page with Approve and Reject; Approve (with a
 * note) lets it go on and the agent runs its step; Reject (with a note) ends it `blocked`, the reason
 * on the page, and nothing ran. Everything goes through the real API: nothing here answers for it.
 *
 * What ran is checked twice: through the API (the job, its step and its log) and on the host itself (the
 * step appends the sha it deployed to a file only this test reads).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, getDeployment, jobLog, waitForAgent, waitForDeployment } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { createRepo, type GitRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { REPO_ROOT, startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";

const CHROMIUM = "/usr/bin/chromium";
const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)`;
if (missing) console.warn(`[gates-dashboard.e2e] skipped: ${missing}`);

const TARGET = "gates";
const SHOTS = join(REPO_ROOT, "test-output/screenshots");
const REPO = "acme/gated";
/** Markup in a person's note stays text on the page. */
const APPROVE_NOTE = "Checked on staging <b>looks good</b>";
const REJECT_NOTE = "Not on a Friday <img src=x onerror=alert(1)> — see https://example.com/freeze";

interface Gate {
  kind: string;
  name: string;
  state: string;
  url: string | null;
  at: string | null;
  by: string | null;
  note: string | null;
  requiredBy: string[];
}

async function push(worker: WorkerProcess, sha: string, message: string): Promise<string> {
  const payload = pushPayload({ repo: REPO, ref: "refs/heads/main", after: sha, before: "1".repeat(40), pusher: "octocat" });
  (payload.head_commit as { message: string }).message = message;
  const res = await sendWebhook(worker.url, { target: TARGET, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, payload });
  if (res.status !== 202) throw new Error(`push answered ${res.status} ${JSON.stringify(res.body)}`);
  const id = res.body?.deployments?.[0]?.id;
  if (typeof id !== "string") throw new Error(`push made no deployment: ${JSON.stringify(res.body)}`);
  return id;
}

const approvalGate = (d: { gates?: Gate[] }): Gate | undefined => d.gates?.find((g) => g.kind === "approval");

describe.skipIf(missing !== null)("gates in the dashboard, in Chromium", () => {
  let worker: WorkerProcess;
  let repo: GitRepo;
  let agent: AgentProcess;
  let browser: Browser;
  let context: BrowserContext;
  /** The file the pipeline's one step appends each deployed sha to, on the host. */
  let ranFile: string;
  const dialogs: string[] = [];
  const ran = () => (existsSync(ranFile) ? readFileSync(ranFile, "utf8").split("\n").filter((l) => l !== "") : []);

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    worker = await startWorker();
    repo = createRepo();
    ranFile = join(mkdtempSync(join(tmpdir(), "hookrelay-gates-")), "deployed.txt");
    agent = await startAgent({
      server: worker.url,
      target: TARGET,
      name: "web-1",
      pipelines: [
        {
          name: "site",
          repo: REPO,
          branches: ["main"],
          workdir: repo.live,
          wait_for: { approval: true },
          steps: [{ name: "deploy", run: `echo "deploying $HOOKRELAY_SHA"; echo "$HOOKRELAY_SHA" >> '${ranFile}'` }],
        },
      ],
    });
    await waitForAgent(worker.url, TARGET, "web-1");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-component-update", "--disable-sync"],
    });
    // Signed in through the form, as a person is: the approval buttons post with the session cookie (and the page's Origin).
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await newPage();
    await page.goto(`${worker.url}/login?next=${encodeURIComponent(`/targets/${TARGET}`)}`);
    await page.fill("input[name=token]", TEST_SECRETS.ADMIN_TOKEN);
    await Promise.all([page.waitForURL(`${worker.url}/targets/${TARGET}`), page.click("button[type=submit]")]);
    await page.close();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await agent?.stop();
    await worker?.stop();
  });

  async function newPage(): Promise<Page> {
    const page = await context.newPage();
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    return page;
  }

  /** A deployment's page once it shows `waiting` with its open approval gate and the two buttons. */
  async function openWaiting(id: string): Promise<Page> {
    const page = await newPage();
    await page.goto(`${worker.url}/targets/${TARGET}/deployments/${id}`);
    await page.locator("h1 .status", { hasText: "waiting" }).waitFor({ timeout: 10_000 });
    const gates = page.locator("main section.gates");
    await gates.waitFor({ timeout: 10_000 });
    const row = gates.locator("tbody tr", { hasText: "Approval" });
    expect(await row.locator("td").evaluateAll((tds) => tds.map((td) => td.textContent))).toEqual(["Approval", "approval", "‖ waiting", "—", "—", "—", "—", "web-1"]);
    await page.getByRole("button", { name: "Approve" }).waitFor({ timeout: 10_000 });
    expect(await page.getByRole("button", { name: "Reject" }).isVisible()).toBe(true);
    // When it ends blocked if nobody decides (the gate's timeout, 2 h by default), as a time to come.
    expect(await page.locator("dt", { hasText: "Blocked if still waiting" }).locator("xpath=following-sibling::dd").textContent()).toMatch(/^in (1 h 5\d|2 h 00) min$/);
    return page;
  }

  it("shows a push to a pipeline that waits for approval as waiting, runs nothing, and lets it go on when approved with a note", async () => {
    const sha = repo.commit({ "index.html": "<h1>v2</h1>\n" }, "Ship v2");
    const id = await push(worker, sha, "Ship v2");
    const before = await waitForDeployment(worker.url, TARGET, id, ["waiting"], 15_000);
    expect(before.blockedReason).toBeNull();
    expect(approvalGate(before)).toMatchObject({ kind: "approval", name: "approval", state: "waiting", url: null, at: null, note: null, requiredBy: ["web-1"] });
    expect(Date.parse(before.waitingUntil)).toBeGreaterThan(Date.now());

    const page = await openWaiting(id);
    await page.screenshot({ path: join(SHOTS, "deployment-waiting-desktop.png"), fullPage: true });
    // Every part of the head is an element or words of its own: no stray text such as "null".
    expect(await page.locator("main > div").first().evaluate((el) => [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent))).toEqual([]);
    // On a phone: the gates as labelled rows, the buttons in reach, nothing wider than the screen.
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, storageState: await context.storageState(), colorScheme: "light" });
    const small = await phone.newPage();
    await small.goto(`${worker.url}/targets/${TARGET}/deployments/${id}`);
    await small.getByRole("button", { name: "Approve" }).waitFor({ timeout: 10_000 });
    await small.screenshot({ path: join(SHOTS, "deployment-waiting-mobile.png"), fullPage: true });
    expect(await small.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await phone.close();
    expect(await page.locator("main p.waiting-note").textContent()).toBe("Waiting for a person's approval: nothing is sent to any host until it passes.");
    // Nothing ran while it waited (2 s: more than the dispatch and the page's polling take).
    await new Promise((r) => setTimeout(r, 2_000));
    expect(ran()).toEqual([]);
    expect((await getDeployment(worker.url, TARGET, id)).status).toBe("waiting");

    await page.fill("#gate-note", APPROVE_NOTE);
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith(`/deployments/${id}/approve`)),
      page.getByRole("button", { name: "Approve" }).click(),
    ]);
    expect(answer.status()).toBe(200);
    expect(answer.request().postDataJSON()).toEqual({ note: APPROVE_NOTE });

    // The deployment went on: the agent ran its first (only) step, for this sha.
    const done = await waitForDeployment(worker.url, TARGET, id, ["succeeded", "failed"], 30_000);
    expect(done.status).toBe("succeeded");
    expect(done.jobs).toHaveLength(1);
    expect(done.jobs[0]).toMatchObject({ agent: "web-1", status: "succeeded" });
    expect(done.jobs[0].steps).toEqual([expect.objectContaining({ name: "deploy", status: "succeeded" })]);
    expect(await jobLog(worker.url, TARGET, done.jobs[0].id)).toContain(`deploying ${sha}`);
    expect(ran()).toEqual([sha]);
    expect(approvalGate(done)).toMatchObject({ state: "passed", by: "admin", note: APPROVE_NOTE });
    expect(approvalGate(done)?.at).toBeTruthy();

    // The page follows by itself: the status, the gate decided (by whom, the note as text), no buttons.
    await page.locator("h1 .status", { hasText: "succeeded" }).waitFor({ timeout: 15_000 });
    const row = page.locator("main section.gates tbody tr", { hasText: "Approval" });
    await row.locator(".status", { hasText: "passed" }).waitFor({ timeout: 10_000 });
    expect(await row.locator("td").nth(5).textContent()).toBe("admin");
    expect(await row.locator("td").nth(6).textContent()).toBe(APPROVE_NOTE);
    expect(await page.getByRole("button", { name: "Approve" }).isHidden()).toBe(true);
    await page.locator(`#log-${done.jobs[0].id} .log`, { hasText: `deploying ${sha}` }).waitFor({ timeout: 10_000 });
    expect(await page.locator("main b, main img, main script").count()).toBe(0);
    await page.close();
  });

  it("ends a waiting deployment blocked when rejected with a note: the reason on the page, nothing ran", async () => {
    const deployedBefore = ran().length;
    const sha = repo.commit({ "index.html": "<h1>v3</h1>\n" }, "Ship v3");
    const id = await push(worker, sha, "Ship v3");
    await waitForDeployment(worker.url, TARGET, id, ["waiting"], 15_000);
    const page = await openWaiting(id);

    await page.fill("#gate-note", REJECT_NOTE);
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith(`/deployments/${id}/reject`)),
      page.getByRole("button", { name: "Reject" }).click(),
    ]);
    expect(answer.status()).toBe(200);
    expect(await answer.json()).toMatchObject({ id, status: "blocked" });

    const blocked = await waitForDeployment(worker.url, TARGET, id, ["blocked"], 15_000);
    expect(blocked.blockedReason).toContain("rejected");
    expect(blocked.blockedReason).toContain(REJECT_NOTE);
    expect(approvalGate(blocked)).toMatchObject({ state: "failed", by: "admin", note: REJECT_NOTE });

    // The page shows it at once (the reject's answer is drawn), the reason prominent, as text; its URL a link.
    await page.locator("h1 .status", { hasText: "blocked" }).waitFor({ timeout: 10_000 });
    const reason = page.locator("main p.blocked-reason");
    await reason.waitFor({ timeout: 10_000 });
    expect(await reason.textContent()).toBe(`Blocked: ${blocked.blockedReason} Nothing ran on any host.`);
    expect(await reason.locator('a[href="https://example.com/freeze"]').textContent()).toBe("https://example.com/freeze");
    expect(await page.getByRole("button", { name: "Approve" }).isHidden()).toBe(true);
    expect(await page.getByRole("button", { name: "Reject" }).isHidden()).toBe(true);
    expect(await page.getByRole("button", { name: "Cancel deployment" }).isHidden()).toBe(true);
    expect(await page.locator("main img, main script").count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, "deployment-blocked-desktop.png"), fullPage: true });

    // Nothing ran: no job started, no step, and the host deployed nothing new.
    await new Promise((r) => setTimeout(r, 2_000));
    const later = await getDeployment(worker.url, TARGET, id);
    expect(later.status).toBe("blocked");
    for (const job of later.jobs ?? []) {
      expect(job.startedAt).toBeNull();
      expect(["succeeded", "failed", "running", "timed_out", "interrupted"]).not.toContain(job.status);
    }
    expect(ran()).not.toContain(sha);
    expect(ran()).toHaveLength(deployedBefore);

    // The target's list says blocked too, the reason on hover.
    await page.goto(`${worker.url}/targets/${TARGET}`);
    const listed = page.locator(`main tr:has(a[href="/targets/${TARGET}/deployments/${id}"]) .s-blocked`);
    await listed.waitFor({ timeout: 10_000 });
    expect(await listed.locator("xpath=..").getAttribute("title")).toBe(`Blocked: ${blocked.blockedReason}`);
    expect(dialogs).toEqual([]);
    await page.close();
  });

  it("keeps a waiting deployment's page live: approved elsewhere (the API), the page moves on without a reload", async () => {
    const sha = repo.commit({ "index.html": "<h1>v4</h1>\n" }, "Ship v4");
    const id = await push(worker, sha, "Ship v4");
    await waitForDeployment(worker.url, TARGET, id, ["waiting"], 15_000);
    const page = await openWaiting(id);
    let navigations = 0;
    page.on("framenavigated", () => navigations++);
    const r = await api(worker.url, `/api/targets/${TARGET}/deployments/${id}/approve`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({}) });
    expect(r.status).toBe(200);
    await page.locator("h1 .status", { hasText: "succeeded" }).waitFor({ timeout: 30_000 });
    expect(navigations).toBe(0);
    expect(await page.getByRole("button", { name: "Approve" }).isHidden()).toBe(true);
    await eventually("the host deployed it", async () => ran().includes(sha), 10_000, 100);
    await page.close();
  });

  it("answers a second decision with the API's 409, shown on the page", async () => {
    const sha = repo.commit({ "index.html": "<h1>v5</h1>\n" }, "Ship v5");
    const id = await push(worker, sha, "Ship v5");
    await waitForDeployment(worker.url, TARGET, id, ["waiting"], 15_000);
    const page = await openWaiting(id);
    // Someone else rejects it first; this page still shows the buttons until its next refresh.
    const r = await api(worker.url, `/api/targets/${TARGET}/deployments/${id}/reject`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ note: "too late" }) });
    expect(r.status).toBe(200);
    const [answer] = await Promise.all([
      page.waitForResponse((res) => res.request().method() === "POST" && res.url().endsWith(`/deployments/${id}/approve`)),
      page.evaluate("document.querySelector('button.approve').click()"),
    ]);
    expect(answer.status()).toBe(409);
    await page.locator("main p.notice", { hasText: "does not wait for approval" }).waitFor({ timeout: 5_000 });
    await page.locator("h1 .status", { hasText: "blocked" }).waitFor({ timeout: 10_000 });
    expect(ran()).not.toContain(sha);
    await page.close();
  });
});
