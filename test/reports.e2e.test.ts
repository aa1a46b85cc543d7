/**
 * End to end, issue 11: the real worker (wrangler dev) tells a fake GitHub (a real HTTP server that
 * enforces what GitHub enforces, testing/fake-github.ts) and a notification receiver (testing/notify-receiver.ts,
 * which verifies the Standard Webhooks signature with the `standardwebhooks` library) about deployments
 * that two real agents run. The worker authenticates as a GitHub App with a PKCS#1 key made here; the fake
 * checks the JWT's signature with the public key.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, waitForAgent } from "../dev/api.ts";
import { eventually } from "../dev/eventually.ts";
import { createRepo, git, type GitRepo } from "../dev/git-repo.ts";
import { startWorker, type WorkerProcess } from "../dev/worker-process.ts";
import { type FakeGitHub, startFakeGitHub } from "../testing/fake-github.ts";
import { type NotifyReceiver, startNotifyReceiver } from "../testing/notify-receiver.ts";
import { push } from "../testing/push.ts";

const TARGET = "site";
const REPO = "acme/site";
const APP_ID = "4242";
const PUBLIC_URL = "https://hookrelay.example.test";
const HOSTS = ["web-1", "web-2"] as const;

let github: FakeGitHub;
let receiver: NotifyReceiver;
let worker: WorkerProcess;
let repo: GitRepo;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  const keys = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs1", format: "pem" } });
  github = await startFakeGitHub({ app: { id: APP_ID, publicKey: keys.publicKey, installations: { [REPO]: 7 } } });
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  receiver = await startNotifyReceiver({ secret });
  worker = await startWorker({
    vars: { GITHUB_API_URL: github.url, PUBLIC_URL, REPORT_RETRY_SECONDS: "1" },
    secrets: {
      GITHUB_APP_ID: APP_ID,
      GITHUB_APP_PRIVATE_KEY: keys.privateKey,
      NOTIFY_URLS: [`slack:${receiver.slackUrl()}`, `discord:${receiver.discordUrl()}`, receiver.standardUrl()].join(","),
      NOTIFY_SECRET: secret,
    },
  });
  repo = createRepo({ VERSION: "1\n" });
  const scratch = mkdtempSync(join(tmpdir(), "hookrelay-reports-"));
  for (const host of HOSTS) {
    const checkout = join(scratch, host);
    git(scratch, "clone", "-q", repo.origin, checkout);
    agents.push(
      await startAgent({
        server: worker.url, target: TARGET, name: host, extra: { heartbeat: "1s" },
        pipelines: [{
          name: "app", repo: REPO, branches: ["main"], workdir: checkout, timeout: "1m",
          environment: "production", environment_url: "https://site.example.com",
          steps: [
            { name: "fetch", run: 'git fetch -q origin && git reset -q --hard "$HOOKRELAY_SHA"' },
            { name: "build", run: 'test "$(cat VERSION)" != broken' },
          ],
        }],
      }),
    );
  }
  for (const host of HOSTS) await waitForAgent(worker.url, TARGET, host);
}, 120_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await worker?.stop();
  await github?.close();
  await receiver?.close();
});

/** Commits VERSION=`version`, pushes it, and returns the sha and the deployment's id. */
async function deploy(version: string): Promise<{ sha: string; id: string }> {
  const sha = repo.commit({ VERSION: `${version}\n` }, `version ${version}`, "main");
  const res = await push(worker.url, TARGET, REPO, sha);
  expect(res.status).toBe(202);
  return { sha, id: res.body.deployments[0].id };
}

async function deploymentEnds(id: string): Promise<any> {
  return eventually(`deployment ${id} to end`, async () => {
    const r = await api(worker.url, `/api/targets/${TARGET}/deployments/${id}`);
    return ["succeeded", "failed", "canceled", "superseded"].includes(r.body?.status) ? r.body : undefined;
  }, 60_000, 100);
}

/** The GitHub deployment made for `sha`, once its statuses reach `last`. */
async function gitHubDeployment(sha: string, last: string) {
  return eventually(`GitHub to show ${sha.slice(0, 7)} ${last}`, async () => {
    const found = github.deployments(REPO).filter((d) => d.ref === sha);
    if (found.length !== 1) return undefined;
    const statuses = github.statusesOf(REPO, found[0]!.id);
    return statuses.at(-1)?.state === last ? { deployment: found[0]!, statuses, all: found } : undefined;
  }, 60_000, 100);
}

async function allReportsSent(id: string): Promise<any[]> {
  return eventually(`every report of ${id} sent`, async () => {
    const d = (await api(worker.url, `/api/targets/${TARGET}/deployments/${id}`)).body;
    return d.reports.length > 0 && d.reports.every((r: any) => r.state === "sent") ? d.reports : undefined;
  }, 60_000, 100);
}

function notificationsFor(id: string) {
  return receiver.received.filter((n) => n.body.includes(id));
}

describe("telling GitHub and people", () => {
  it("a push that deploys: a GitHub deployment of the sha in its environment, queued → in_progress → success with the log URL, and each chat told", async () => {
    const { sha, id } = await deploy("2");
    expect((await deploymentEnds(id)).status).toBe("succeeded");
    const { deployment, statuses } = await gitHubDeployment(sha, "success");
    expect(deployment).toMatchObject({ environment: "production", production_environment: true, payload: { target: TARGET, deployment: id }, creator: "installation:7" });
    expect(statuses.map((s) => s.state)).toEqual(["queued", "in_progress", "success"]);
    expect(statuses[2]).toMatchObject({
      description: "2/2 hosts deployed",
      log_url: `${PUBLIC_URL}/targets/${TARGET}/deployments/${id}`,
      environment_url: "https://site.example.com",
      environment: "production",
    });
    // The App's JWT was checked by the fake; every repository call used the installation token.
    expect(github.calls.filter((c) => c.path === `/repos/${REPO}/installation`).every((c) => c.status === 200)).toBe(true);

    await allReportsSent(id);
    const told = await eventually("three notifications", async () => (notificationsFor(id).length >= 3 ? notificationsFor(id) : undefined), 30_000, 100);
    expect(told.map((n) => n.kind).sort()).toEqual(["discord", "slack", "standard"]);
    for (const n of told) expect(n.problems).toEqual([]);
    const standard = told.find((n) => n.kind === "standard")!;
    expect(standard.event).toMatchObject({ type: "deployment.succeeded", data: { deployment: id, status: "succeeded", sha, url: `${PUBLIC_URL}/targets/${TARGET}/deployments/${id}` } });
    const view = (await api(worker.url, `/api/targets/${TARGET}/deployments/${id}`)).body;
    expect(view.reporting).toEqual({ github: "on", notifications: "on" });
  });

  it("a failing rollout: GitHub's failure names the host and the step, and so do the notifications", async () => {
    const { sha, id } = await deploy("broken");
    expect((await deploymentEnds(id)).status).toBe("failed");
    const { statuses } = await gitHubDeployment(sha, "failure");
    expect(statuses.at(-1)!.description).toBe("0/2 hosts deployed; web-1 failed at build");
    await allReportsSent(id);
    const told = await eventually("three notifications", async () => (notificationsFor(id).length >= 3 ? notificationsFor(id) : undefined), 30_000, 100);
    const standard = told.find((n) => n.kind === "standard")!;
    expect(standard.event).toMatchObject({
      type: "deployment.failed",
      data: { hosts: [{ agent: "web-1", status: "failed", failedStep: "build" }, { agent: "web-2", status: "skipped", failedStep: null }] },
    });
    const slack = JSON.parse(told.find((n) => n.kind === "slack")!.body);
    expect(slack.text).toContain("web-1");
    expect(JSON.stringify(slack)).toContain("build");
  });

  it("GitHub failing for a while: the reports are retried and each delivered once", async () => {
    github.failNext(4, 502);
    const { sha, id } = await deploy("3");
    expect((await deploymentEnds(id)).status).toBe("succeeded");
    const { statuses, all } = await gitHubDeployment(sha, "success");
    expect(all).toHaveLength(1);
    expect(statuses.map((s) => s.state)).toEqual(["queued", "in_progress", "success"]);
    const reports = await allReportsSent(id);
    expect(reports[0]).toMatchObject({ channel: "github", state: "sent" });
    expect(reports[0].attempts).toBeGreaterThan(1);
  });

  it("the worker restarted with reports pending: all delivered after, none twice", async () => {
    github.failNext(1_000_000, 502);
    const { sha, id } = await deploy("4");
    expect((await deploymentEnds(id)).status).toBe("succeeded");
    await eventually("a GitHub report retrying", async () => {
      const d = (await api(worker.url, `/api/targets/${TARGET}/deployments/${id}`)).body;
      return d.reports.some((r: any) => r.channel === "github" && r.state === "retrying") ? true : undefined;
    }, 30_000, 100);
    await worker.restart();
    github.failNext(0);
    const { statuses, all } = await gitHubDeployment(sha, "success").catch((e) => {
      console.log(worker.process.output().slice(-6000));
      throw e;
    });
    expect(all).toHaveLength(1);
    expect(statuses.map((s) => s.state)).toEqual(["queued", "in_progress", "success"]);
    await allReportsSent(id);
    expect(notificationsFor(id).filter((n) => n.status < 300).map((n) => n.kind).sort()).toEqual(["discord", "slack", "standard"]);
  }, 120_000);
});
