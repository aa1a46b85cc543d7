import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { SendOutcome } from "../../report/outcome.ts";
import { event, helloAgent, push, type TestAgent, uniqueName } from "../../../testing/workerd/worker-support.ts";
import { dueReports, GIVE_UP_MS, leaseReport, nextReportDue, type ReportSetup, reportViews, SEND_LEASE_MS, storeReportSetup } from "./report-outbox.ts";
import type { ReportBody } from "./report-record.ts";
import { type ChannelSender, sendDueReports } from "./report-sending.ts";
import { reportWiring } from "./report-wiring.ts";

const BACKOFF = 10_000;

function setup(target: string, over: Partial<ReportSetup> = {}): ReportSetup {
  return {
    target,
    github: { state: "on", why: null },
    notify: { state: "off", why: null, on: "all", targets: [] },
    publicUrl: "https://hooks.example.com",
    ...over,
  };
}

function inTarget<T>(target: string, f: (sql: SqlStorage) => T | Promise<T>): Promise<T> {
  return runInDurableObject(env.TARGET.getByName(target), (_, state) => f(state.storage.sql));
}

/** A channel peer that answers from a script and records what it was asked. */
function peer(answer: (body: ReportBody, call: number) => SendOutcome | Promise<SendOutcome>) {
  const calls: { body: ReportBody; githubId: number | null }[] = [];
  const sender: ChannelSender = {
    async send(body, _row, githubId) {
      calls.push({ body, githubId });
      return answer(body, calls.length);
    },
  };
  return { calls, sender };
}

const created = (id = 77): SendOutcome => ({ kind: "sent", status: 201, body: { id } });
const ok: SendOutcome = { kind: "sent", status: 201, body: {} };

async function reporting(target: string, s: ReportSetup = setup(target)): Promise<TestAgent> {
  const agent = await helloAgent(target, "web-1");
  await inTarget(target, (sql) => storeReportSetup(sql, s));
  return agent;
}

async function runJob(agent: TestAgent, status: "succeeded" | "failed"): Promise<string> {
  const job = await agent.next("job");
  agent.send({ type: "accepted", jobId: job.jobId });
  agent.send(event(job.jobId, 1, { kind: "step-start", step: "fetch" }));
  agent.send(event(job.jobId, 2, { kind: "step-end", step: "fetch", status, exitCode: status === "succeeded" ? 0 : 1 }));
  agent.send(event(job.jobId, 3, { kind: "job-end", status }));
  for (let i = 0; i < 3; i++) await agent.next("ack");
  return job.jobId;
}

const summary = (body: ReportBody) => (body.kind === "github-status" ? `${body.state}: ${body.description}` : body.kind === "notify" ? `${body.type}` : `create ${body.environment}`);

describe("the outbox: every deployment change becomes reports, sent in order, retried, never lost", () => {
  it("queues GitHub's deployment and `queued` with the push, `in_progress` when a host starts, the final status with the host count — in that order", async () => {
    const target = uniqueName();
    const agent = await reporting(target);
    const dep = (await push(target)).body.deployments![0]!;
    await runJob(agent, "succeeded");
    const gh = peer((body) => (body.kind === "github-deployment" ? created(77) : ok));
    const sent = await inTarget(target, (sql) => sendDueReports(sql, () => gh.sender, BACKOFF));
    expect(sent).toBe(4);
    expect(gh.calls.map((c) => summary(c.body))).toEqual([`create ${target}`, "queued: 1 host to deploy", "in_progress: deploying: 0/1 host deployed", "success: 1/1 host deployed"]);
    expect(gh.calls.slice(1).map((c) => c.githubId)).toEqual([77, 77, 77]);
    const first = gh.calls[0]!.body;
    expect(first).toMatchObject({ kind: "github-deployment", repo: "owner/OldManInfo_Flask", sha: "b".repeat(40), deployment: dep.id, target });
    expect(gh.calls[3]!.body).toMatchObject({ path: `/targets/${target}/deployments/${dep.id}`, environment: target, environmentUrl: null });
    const views = await inTarget(target, (sql) => reportViews(sql, dep.id));
    expect(views.map((v) => v.state)).toEqual(["sent", "sent", "sent", "sent"]);
  });

  it("a failed rollout's status names the host and the step; a notification goes to each target", async () => {
    const target = uniqueName();
    const agent = await reporting(target, setup(target, { notify: { state: "on", why: null, on: "all", targets: [{ channel: "notify:0", label: "https://a.example/…" }, { channel: "notify:1", label: "https://b.example/…" }] } }));
    const dep = (await push(target)).body.deployments![0]!;
    await runJob(agent, "failed");
    const gh = peer((body) => (body.kind === "github-deployment" ? created() : ok));
    const chat = peer(() => ok);
    await inTarget(target, (sql) => sendDueReports(sql, (ch) => (ch === "github" ? gh.sender : chat.sender), BACKOFF));
    expect(gh.calls.map((c) => summary(c.body)).at(-1)).toBe("failure: 0/1 host deployed; web-1 failed at fetch");
    expect(chat.calls).toHaveLength(2);
    expect(chat.calls[0]!.body).toMatchObject({ kind: "notify", type: "deployment.failed", deployment: dep.id, status: "failed", hosts: [{ agent: "web-1", status: "failed", failedStep: "fetch" }] });
  });

  it("retries with backoff (honouring a rate limit's time), keeps the order behind the retried row, and gives up after 24 h", async () => {
    const target = uniqueName();
    await reporting(target);
    const dep = (await push(target)).body.deployments![0]!;
    const base = Date.now();
    let clock = base;
    const flaky = peer((body) => (body.kind === "github-deployment" ? { kind: "retry", error: "GitHub POST …/deployments: 502", notBefore: null } : ok));
    await inTarget(target, (sql) => sendDueReports(sql, () => flaky.sender, BACKOFF, () => clock));
    expect(flaky.calls).toHaveLength(1); // `queued` waits behind the creation
    let views = await inTarget(target, (sql) => reportViews(sql, dep.id));
    expect(views.map((v) => [v.state, v.attempts])).toEqual([["retrying", 1], ["pending", 0]]);
    expect(views[0]!.lastError).toBe("GitHub POST …/deployments: 502");
    expect(Date.parse(views[0]!.nextAttemptAt!)).toBe(base + BACKOFF);

    clock = base + BACKOFF - 1;
    await inTarget(target, (sql) => sendDueReports(sql, () => flaky.sender, BACKOFF, () => clock));
    expect(flaky.calls).toHaveLength(1); // not due yet

    const limited = peer(() => ({ kind: "retry", error: "GitHub: 403 (rate limited)", notBefore: base + 3_600_000 }));
    clock = base + BACKOFF;
    await inTarget(target, (sql) => sendDueReports(sql, () => limited.sender, BACKOFF, () => clock));
    views = await inTarget(target, (sql) => reportViews(sql, dep.id));
    expect(Date.parse(views[0]!.nextAttemptAt!)).toBe(base + 3_600_000); // the reset time, not the backoff's 20 s

    clock = views[0] ? Date.parse(views[0].createdAt!) + GIVE_UP_MS : 0;
    await inTarget(target, (sql) => sendDueReports(sql, () => limited.sender, BACKOFF, () => clock));
    views = await inTarget(target, (sql) => reportViews(sql, dep.id));
    expect(views[0]!.state).toBe("given_up");
    expect(views[0]!.lastError).toBe("gave up after 24 h: GitHub: 403 (rate limited)");
    // The statuses of a deployment GitHub never created fail, saying why.
    expect(views[1]!.state).toBe("failed");
    expect(views[1]!.lastError).toBe("the GitHub deployment was never created (see the report before this one)");
  });

  it("a 4xx fails the row at once; a sender that throws is retried; a channel no longer configured fails its rows", async () => {
    const target = uniqueName();
    await reporting(target);
    const dep = (await push(target)).body.deployments![0]!;
    const refused = peer(() => ({ kind: "fail", error: "GitHub POST …/deployments: 422 description too long" }));
    await inTarget(target, (sql) => sendDueReports(sql, () => refused.sender, BACKOFF));
    let views = await inTarget(target, (sql) => reportViews(sql, dep.id));
    expect(views.map((v) => v.state)).toEqual(["failed", "failed"]);

    const other = uniqueName();
    await reporting(other);
    const dep2 = (await push(other)).body.deployments![0]!;
    const throwing = peer(() => {
      throw new Error("socket hang up");
    });
    await inTarget(other, (sql) => sendDueReports(sql, () => throwing.sender, BACKOFF));
    views = await inTarget(other, (sql) => reportViews(sql, dep2.id));
    expect(views[0]).toMatchObject({ state: "retrying", lastError: "socket hang up" });
    await inTarget(other, (sql) => sendDueReports(sql, () => null, BACKOFF, () => Date.now() + BACKOFF));
    views = await inTarget(other, (sql) => reportViews(sql, dep2.id));
    expect(views.map((v) => [v.state, v.lastError])).toEqual([
      ["failed", "channel github is not configured any more"],
      ["failed", "channel github is not configured any more"],
    ]);
  });

  it("NOTIFY_ON=failure: failures, and the first success after one", async () => {
    const target = uniqueName();
    const agent = await reporting(target, setup(target, { github: { state: "off", why: null }, notify: { state: "on", why: null, on: "failure", targets: [{ channel: "notify:0", label: "x" }] } }));
    const chat = peer(() => ok);
    const types: string[] = [];
    for (const status of ["succeeded", "failed", "succeeded", "succeeded"] as const) {
      await push(target, { after: `${types.length}`.repeat(40) });
      await runJob(agent, status);
      chat.calls.length = 0;
      await inTarget(target, (sql) => sendDueReports(sql, () => chat.sender, BACKOFF));
      types.push(chat.calls.map((c) => summary(c.body)).join(",") || "-");
    }
    expect(types).toEqual(["-", "deployment.failed", "deployment.succeeded", "-"]);
  });

  it("reports survive eviction and are sent once", async () => {
    const target = uniqueName();
    await reporting(target);
    const dep = (await push(target)).body.deployments![0]!;
    await evictDurableObject(env.TARGET.getByName(target));
    const gh = peer((body) => (body.kind === "github-deployment" ? created() : ok));
    await inTarget(target, (sql) => sendDueReports(sql, () => gh.sender, BACKOFF));
    await inTarget(target, (sql) => sendDueReports(sql, () => gh.sender, BACKOFF));
    expect(gh.calls.map((c) => summary(c.body))).toEqual([`create ${target}`, "queued: 1 host to deploy"]);
    expect((await inTarget(target, (sql) => reportViews(sql, dep.id))).map((v) => v.state)).toEqual(["sent", "sent"]);
  });

  it("a send cut off mid-way (the worker stopped) counts as an attempt: the retry after the lease tells the sender an earlier one may have landed", async () => {
    const target = uniqueName();
    await reporting(target);
    const dep = (await push(target)).body.deployments![0]!;
    const base = Date.now();
    // The first pass leases the creation and never comes back (its isolate is gone).
    await inTarget(target, (sql) => {
      const [first] = dueReports(sql, base, 1);
      leaseReport(sql, first!.id, base);
    });
    expect((await inTarget(target, (sql) => reportViews(sql, dep.id))).map((v) => [v.state, v.attempts])).toEqual([["retrying", 1], ["pending", 0]]);
    const seen: number[] = [];
    const gh: ChannelSender = {
      async send(body, row) {
        seen.push(row.attempts);
        return body.kind === "github-deployment" ? created() : ok;
      },
    };
    await inTarget(target, (sql) => sendDueReports(sql, () => gh, BACKOFF, () => base + SEND_LEASE_MS));
    expect(seen).toEqual([1, 0]);
    expect((await inTarget(target, (sql) => reportViews(sql, dep.id))).map((v) => [v.state, v.attempts])).toEqual([["sent", 2], ["sent", 1]]);
  });

  it("a row no code can read fails alone, saying so, and the outbox goes on", async () => {
    const target = uniqueName();
    await reporting(target);
    const dep = (await push(target)).body.deployments![0]!;
    await inTarget(target, (sql) => sql.exec("UPDATE reports SET body = '{\"kind\":\"github-deployment\"}' WHERE id = (SELECT min(id) FROM reports WHERE deployment_id = ?)", dep.id));
    const gh = peer(() => ok);
    await inTarget(target, (sql) => sendDueReports(sql, () => gh.sender, BACKOFF));
    const views = await inTarget(target, (sql) => reportViews(sql, dep.id));
    expect(views[0]).toMatchObject({ state: "failed", what: "unreadable github-deployment report" });
    expect(views[0]!.lastError).toMatch(/^unreadable report: report \d+\.repo: expected a string/);
    expect(views[1]!.state).toBe("failed"); // its status: no GitHub deployment was made
  });

  it("reporting off: no rows at all", async () => {
    const target = uniqueName();
    await reporting(target, setup(target, { github: { state: "broken", why: "x" } }));
    const dep = (await push(target)).body.deployments![0]!;
    expect(await inTarget(target, (sql) => reportViews(sql, dep.id))).toEqual([]);
  });

  it("a notification channel is keyed by its URL: reordered, each keeps its key; a row of a channel gone — or keyed by position before the upgrade — is dropped, sent nowhere", async () => {
    const a = "https://hooks.slack.com/services/T/A/team-a";
    const b = "https://hooks.slack.com/services/T/B/team-b";
    const channels = async (urls: string[]) => (await reportWiring({ NOTIFY_URLS: urls.join(",") }, "t")).setup.notify.targets.map((t) => t.channel);
    const [ca, cb] = await channels([a, b]);
    expect(ca).toMatch(/^notify:[0-9a-f]{16}$/);
    expect(await channels([b, a])).toEqual([cb, ca]);
    const onlyB = await reportWiring({ NOTIFY_URLS: b }, "t");
    expect(onlyB.senderFor(ca!)).toBeNull();

    const target = uniqueName();
    const agent = await reporting(target, setup(target, { github: { state: "off", why: null }, notify: { state: "on", why: null, on: "all", targets: [{ channel: "notify:0", label: "x" }, { channel: ca!, label: "y" }] } }));
    const dep = (await push(target)).body.deployments![0]!;
    await runJob(agent, "failed");
    await inTarget(target, (sql) => sendDueReports(sql, onlyB.senderFor, BACKOFF));
    const views = await inTarget(target, (sql) => reportViews(sql, dep.id));
    expect(views.map((v) => [v.channel, v.state, v.lastError])).toEqual([
      ["notify:0", "failed", "channel notify:0 was keyed by its position in NOTIFY_URLS before an upgrade; dropped, its URL can no longer be told"],
      [ca, "failed", `channel ${ca} is not configured any more`],
    ]);
  });

  it("a pass stops starting sends past its budget; the rows left stay due, not leased, for the next alarm", async () => {
    const target = uniqueName();
    await reporting(target);
    const first = (await push(target)).body.deployments![0]!;
    const second = (await push(target, { after: "e".repeat(40) })).body.deployments![0]!;
    let clock = Date.now();
    // Each send takes 14 s on the fake clock, as a GitHub answering just under the timeout would.
    const slow = peer((body) => {
      clock += 14_000;
      return body.kind === "github-deployment" ? created() : ok;
    });
    const sent = await inTarget(target, (sql) => sendDueReports(sql, () => slow.sender, BACKOFF, () => clock));
    expect(sent).toBe(1);
    const due = await inTarget(target, (sql) => nextReportDue(sql));
    expect(due).not.toBeNull();
    expect(due!).toBeLessThanOrEqual(clock);
    expect((await inTarget(target, (sql) => reportViews(sql, second.id))).map((v) => v.state)).toEqual(["pending", "pending"]);
    // The next passes go on where this one stopped, one send each, until every report is sent.
    const perPass: number[] = [];
    while ((await inTarget(target, (sql) => nextReportDue(sql))) !== null) perPass.push(await inTarget(target, (sql) => sendDueReports(sql, () => slow.sender, BACKOFF, () => clock)));
    expect(perPass.every((n) => n === 1)).toBe(true);
    for (const d of [first, second]) expect((await inTarget(target, (sql) => reportViews(sql, d.id))).every((v) => v.state === "sent")).toBe(true);
  });
});
