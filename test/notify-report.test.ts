/**
 * Notifications (worker/report/notify*.ts) sent over real loopback HTTP to testing/notify-receiver.ts,
 * which checks Slack's and Discord's rules and verifies Standard Webhooks signatures with the
 * `standardwebhooks` package — never with hookrelay's own code.
 */
import { createHmac, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type DeploymentReport, type NotifyTarget, notifyRequest, notifySetup, sendNotification } from "../worker/report/notify.ts";
import { signStandardWebhook } from "../worker/report/notify-standard.ts";
import { discordProblems, type NotifyReceiver, slackProblems, startNotifyReceiver } from "../testing/notify-receiver.ts";

const SHA = "3f786850e387550fdab836ed7e6dc881de23001b";
const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

function report(over: Partial<DeploymentReport> = {}): DeploymentReport {
  return {
    type: "deployment.failed",
    target: "default",
    deployment: "dep_8f2k",
    pipeline: "web",
    repo: "acme/site",
    ref: "refs/heads/main",
    sha: SHA,
    pusher: "alice",
    message: "Add the orders page",
    status: "failed",
    url: "https://relay.example/dashboard/default/deployments/dep_8f2k",
    hosts: [
      { agent: "web-1", status: "succeeded", failedStep: null },
      { agent: "web-2", status: "failed", failedStep: "migrate" },
      { agent: "web-3", status: "skipped", failedStep: null },
    ],
    at: Date.now() - 1000,
    reason: null,
    ...over,
  };
}

/** The one target a single-URL setup makes (failing the test if the setup is not on). */
function target(url: string, secret?: string): NotifyTarget {
  const setup = notifySetup({ NOTIFY_URLS: url, NOTIFY_SECRET: secret });
  if (setup.state !== "on") throw new Error(`setup ${setup.state}: ${setup.why}`);
  expect(setup.targets).toHaveLength(1);
  return setup.targets[0]!;
}

const json = (text: string): Record<string, any> => JSON.parse(text);

/** Every mrkdwn text of a Slack body (its fallback `text` first): where a chat could be made to ping, link or format. */
function slackTexts(body: Record<string, any>): string[] {
  const texts: string[] = [body.text];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === "object" && v !== null) {
      const o = v as Record<string, unknown>;
      if (o.type === "mrkdwn" && typeof o.text === "string") texts.push(o.text);
      Object.values(o).forEach(walk);
    }
  };
  walk(body.blocks);
  return texts;
}

/** A notification receiver, fresh for each test of the describe it is called in; `rx.receiver` is the current one. */
function receiverPerTest(secret: string): { receiver: NotifyReceiver } {
  const rx = {} as { receiver: NotifyReceiver };
  beforeEach(async () => {
    rx.receiver = await startNotifyReceiver({ secret });
  });
  afterEach(async () => {
    await rx.receiver.close();
  });
  return rx;
}

describe("notifySetup", () => {
  it("is off, naming NOTIFY_URLS, when no URL is set", () => {
    for (const vars of [{}, { NOTIFY_URLS: "" }, { NOTIFY_URLS: " \n , \n" }, { NOTIFY_SECRET: newSecret(), NOTIFY_ON: "failure" }]) {
      const setup = notifySetup(vars);
      expect(setup.state).toBe("off");
      expect(setup.state === "off" && setup.why).toContain("NOTIFY_URLS");
    }
  });

  it("tells Slack, Discord and generic targets apart by prefix and host, split on newlines and commas; labels hide the path", () => {
    const urls = [
      "slack:https://chat.example.org/s/SECRET1",
      "https://hooks.slack.com/services/T01/B02/SECRET2",
      "discord:https://chat.example.net/d/SECRET3",
      "https://discord.com/api/webhooks/1/SECRET4",
      "https://discordapp.com/api/webhooks/2/SECRET5",
      "https://discord.com/not-a-webhook/SECRET6",
      "https://example.com/hook/SECRET7",
      "http://127.0.0.1:8080/SECRET8",
      "http://localhost/SECRET9",
      "http://[::1]:9/SECRET10",
    ];
    const setup = notifySetup({ NOTIFY_URLS: `${urls.slice(0, 4).join(",")}\n${urls.slice(4, 7).join("\n")} , ${urls.slice(7).join(",\n")}\n`, NOTIFY_SECRET: newSecret() });
    if (setup.state !== "on") throw new Error(setup.why);
    expect(setup.targets.map((t) => t.kind)).toEqual(["slack", "slack", "discord", "discord", "discord", "standard", "standard", "standard", "standard", "standard"]);
    expect(setup.targets.map((t) => t.label)).toEqual([
      "https://chat.example.org/…",
      "https://hooks.slack.com/…",
      "https://chat.example.net/…",
      "https://discord.com/…",
      "https://discordapp.com/…",
      "https://discord.com/…",
      "https://example.com/…",
      "http://127.0.0.1:8080/…",
      "http://localhost/…",
      "http://[::1]:9/…",
    ]);
    expect(setup.targets[0]!.url).toBe("https://chat.example.org/s/SECRET1");
    expect(setup.on).toBe("all");
  });

  it("reads NOTIFY_ON failure; any other value is broken, naming NOTIFY_ON", () => {
    const urls = "https://hooks.slack.com/services/T/B/x";
    const on = (v: string) => notifySetup({ NOTIFY_URLS: urls, NOTIFY_ON: v });
    expect(on("failure")).toMatchObject({ state: "on", on: "failure" });
    expect(on("all")).toMatchObject({ state: "on", on: "all" });
    for (const bad of ["failures", "always", "none"]) {
      const s = on(bad);
      expect(s.state).toBe("broken");
      expect(s.state === "broken" && s.why).toContain("NOTIFY_ON");
    }
  });

  it("needs no secret for Slack and Discord only", () => {
    expect(notifySetup({ NOTIFY_URLS: "https://hooks.slack.com/services/T/B/x\nhttps://discord.com/api/webhooks/1/y" })).toMatchObject({ state: "on", secret: null });
  });

  it("refuses a generic URL without NOTIFY_SECRET (never sends unsigned), naming NOTIFY_SECRET and not the URL", () => {
    const s = notifySetup({ NOTIFY_URLS: "https://hooks.slack.com/services/T/B/x, https://example.com/hook/SECRETPATH" });
    expect(s.state).toBe("broken");
    const why = s.state === "broken" ? s.why : "";
    expect(why).toContain("NOTIFY_SECRET");
    expect(why).toContain("entry 2");
    expect(why).not.toMatch(/SECRETPATH|example\.com/);
  });

  it("refuses a malformed NOTIFY_SECRET, naming it without quoting it", () => {
    const short = `whsec_${randomBytes(16).toString("base64")}`;
    for (const secret of ["hunter2hunter2", randomBytes(32).toString("base64"), "whsec_!!notbase64!!", "whsec_abc", short]) {
      const s = notifySetup({ NOTIFY_URLS: "https://example.com/hook", NOTIFY_SECRET: secret });
      expect(s.state, secret).toBe("broken");
      const why = s.state === "broken" ? s.why : "";
      expect(why).toContain("NOTIFY_SECRET");
      expect(why).not.toContain(secret.slice("whsec_".length));
    }
  });

  it("refuses a bad entry by its position, never printing the URL", () => {
    const ok = "https://hooks.slack.com/services/T/B/fine";
    const cases: [string, RegExp][] = [
      ["http://example.com/SECRETA", /entry 2: must be an https URL/],
      ["http://10.0.0.5/SECRETB", /entry 2: must be an https URL/],
      ["ftp://example.com/SECRETC", /entry 2: must be an https URL/],
      ["SECRETD-not-a-url", /entry 2: not a URL/],
      ["slack:SECRETE", /entry 2: not a URL/],
      ["https://user:SECRETF@example.com/x", /entry 2: must not hold a user name or password/],
      [`https://example.com/${"SECRETG".repeat(300)}`, /entry 2: longer than 2048/],
      [ok.replace("fine", "fine"), /entry 2: the same URL as entry 1/],
    ];
    for (const [bad, why] of cases) {
      const s = notifySetup({ NOTIFY_URLS: `${ok}\n${bad}`, NOTIFY_SECRET: newSecret() });
      expect(s.state, bad.slice(0, 40)).toBe("broken");
      const text = s.state === "broken" ? s.why : "";
      expect(text).toMatch(/^NOTIFY_URLS /);
      expect(text).toMatch(why);
      expect(text).not.toMatch(/SECRET|example\.com|hooks\.slack/);
    }
    const eleven = Array.from({ length: 11 }, (_, i) => `https://hooks.slack.com/services/T/B/${i}`).join("\n");
    expect(notifySetup({ NOTIFY_URLS: eleven })).toEqual({ state: "broken", why: "NOTIFY_URLS: at most 10 URLs (it has 11)" });
  });
});

describe("sending", () => {
  const secret = newSecret();
  const rx = receiverPerTest(secret);

  describe("a generic Standard Webhooks event", () => {
    it("is signed so that the standardwebhooks package's Webhook.verify accepts it", async () => {
      const t = target(rx.receiver.standardUrl(), secret);
      const r = report();
      const now = Date.now();
      const outcome = await sendNotification(await notifyRequest(t, r, secret, "report_17", now), now, t.label);
      expect(outcome).toMatchObject({ kind: "sent", status: 200 });
      const [got] = await rx.receiver.waitFor(1);
      expect(got!.problems).toEqual([]);
      expect(got!.headers["content-type"]).toBe("application/json");
      expect(got!.headers["webhook-id"]).toBe("report_17");
      expect(got!.headers["webhook-timestamp"]).toBe(String(Math.floor(now / 1000)));
      expect(got!.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      // Verified here too, on the raw bytes, by the library.
      expect(new Webhook(secret).verify(got!.body, got!.headers)).toEqual(got!.event);
      expect(got!.event).toEqual({
        type: "deployment.failed",
        timestamp: new Date(r.at).toISOString(),
        data: {
          target: "default",
          deployment: "dep_8f2k",
          pipeline: "web",
          repo: "acme/site",
          ref: "refs/heads/main",
          sha: SHA,
          pusher: "alice",
          message: "Add the orders page",
          status: "failed",
          reason: null,
          url: r.url,
          hosts: [
            { agent: "web-1", status: "succeeded", failedStep: null },
            { agent: "web-2", status: "failed", failedStep: "migrate" },
            { agent: "web-3", status: "skipped", failedStep: null },
          ],
        },
      });
      // And by hand, as the spec says: HMAC-SHA256 over "id.timestamp.body", keyed with the decoded secret.
      const key = Buffer.from(secret.slice("whsec_".length), "base64");
      const mac = createHmac("sha256", key).update(`report_17.${got!.headers["webhook-timestamp"]}.${got!.body}`).digest("base64");
      expect(got!.headers["webhook-signature"]).toBe(`v1,${mac}`);
    });

    it("fails verification with a tampered body, a wrong secret or a changed id — and the rx.receiver answers 401", async () => {
      const t = target(rx.receiver.standardUrl(), secret);
      const req = await notifyRequest(t, report(), secret, "report_18", Date.now());
      const tampered = req.body.replace('"failed"', '"succeeded"');
      expect(tampered).not.toBe(req.body);
      expect(() => new Webhook(secret).verify(tampered, req.headers)).toThrow(/signature/i);
      expect(() => new Webhook(newSecret()).verify(req.body, req.headers)).toThrow(/signature/i);
      expect(() => new Webhook(secret).verify(req.body, { ...req.headers, "webhook-id": "report_19" })).toThrow(/signature/i);
      const outcome = await sendNotification({ ...req, body: tampered }, Date.now(), t.label);
      expect(outcome.kind).toBe("retry"); // a 401: NOTIFY_SECRET may be fixed meanwhile
      expect(rx.receiver.received[0]).toMatchObject({ status: 401, event: null });
      expect(rx.receiver.received[0]!.problems.join()).toMatch(/Webhook\.verify/);
    });

    it("signs the Standard Webhooks reference vector", () => {
      // From the standard-webhooks specification's libraries' tests.
      expect(signStandardWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')).toBe(
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      );
    });

    it("keeps the same webhook-id when a 500 is retried, signing the retry anew", async () => {
      const t = target(rx.receiver.standardUrl(), secret);
      rx.receiver.failNext(1, { status: 500 });
      const r = report();
      const first = Date.now() - 30_000;
      const o1 = await sendNotification(await notifyRequest(t, r, secret, "report_20", first), first, t.label);
      expect(o1).toMatchObject({ kind: "retry", notBefore: null });
      const second = Date.now();
      const o2 = await sendNotification(await notifyRequest(t, r, secret, "report_20", second), second, t.label);
      expect(o2.kind).toBe("sent");
      const [a, b] = await rx.receiver.waitFor(2);
      expect(a!.headers["webhook-id"]).toBe("report_20");
      expect(b!.headers["webhook-id"]).toBe("report_20");
      expect(b!.headers["webhook-timestamp"]).not.toBe(a!.headers["webhook-timestamp"]);
      expect(b!.problems).toEqual([]);
      expect(a!.body).toBe(b!.body);
    });

    it("is never built without a secret", async () => {
      const t = target(rx.receiver.standardUrl(), secret);
      await expect(notifyRequest(t, report(), null, "report_21", Date.now())).rejects.toThrow(/NOTIFY_SECRET/);
    });
  });

  it("retries a 429 not before its retry-after, gives up on a 404 and retries a refused connection — naming the label, never the URL", async () => {
    const t = target(rx.receiver.standardUrl("hooks/SECRETPATH"), secret);
    const now = Date.now();
    const send = async () => sendNotification(await notifyRequest(t, report(), secret, "report_30", now), now, t.label);
    rx.receiver.failNext(1, { status: 429, retryAfter: 7 });
    const limited = await send();
    expect(limited).toEqual({ kind: "retry", error: expect.stringContaining("429"), notBefore: now + 7000 });
    rx.receiver.failNext(1, { status: 404 });
    const gone = await send();
    expect(gone).toMatchObject({ kind: "fail", error: expect.stringContaining("404") });
    rx.receiver.failNext(1, { status: 503 });
    expect(await send()).toMatchObject({ kind: "retry", notBefore: null });

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const nowhere = target(`http://127.0.0.1:${port}/hooks/SECRETPATH`, secret);
    const refused = await sendNotification(await notifyRequest(nowhere, report(), secret, "report_31", now), now, nowhere.label);
    expect(refused.kind).toBe("retry");

    for (const o of [limited, gone, refused]) {
      const error = o.kind === "sent" ? "" : o.error;
      expect(error).toContain(`http://127.0.0.1:`);
      expect(error).toContain("/…");
      expect(error).not.toContain("SECRETPATH");
    }
  });

  it("does not follow a redirect: the signed body goes only where it was configured to", async () => {
    const t = target(rx.receiver.standardUrl(), secret);
    rx.receiver.failNext(1, { status: 307, location: rx.receiver.standardUrl("elsewhere") });
    const now = Date.now();
    const outcome = await sendNotification(await notifyRequest(t, report(), secret, "report_32", now), now, t.label);
    expect(outcome).toMatchObject({ kind: "fail", error: expect.stringContaining("307") });
    expect(rx.receiver.received.map((r) => r.path)).toEqual(["/hooks/standardsecret"]);
  });

  it("gives up on a rx.receiver that does not answer in time, to retry later", async () => {
    const t = target(rx.receiver.standardUrl(), secret);
    rx.receiver.failNext(1, { status: 0 });
    const now = Date.now();
    const outcome = await sendNotification(await notifyRequest(t, report(), secret, "report_33", now), now, t.label, 300);
    expect(outcome).toMatchObject({ kind: "retry", error: expect.stringContaining("timeout: no answer within 0.3 s"), notBefore: null });
    expect(Date.now() - now).toBeLessThan(5000);
    expect(rx.receiver.received).toHaveLength(1);
  });

  describe("Slack", () => {
    it("names the failed host and step, links the commit and the deployment, and passes Slack's checks", async () => {
      const t = target(`slack:${rx.receiver.slackUrl()}`);
      expect(t.kind).toBe("slack");
      const outcome = await sendNotification(await notifyRequest(t, report(), null, "report_40", Date.now()), Date.now(), t.label);
      expect(outcome).toMatchObject({ kind: "sent", status: 200 });
      const [got] = await rx.receiver.waitFor(1);
      expect(got!.problems).toEqual([]);
      const body = json(got!.body);
      expect(body.text).toContain("❌");
      expect(body.text).toContain("failed");
      expect(body.text).toContain("web-2 failed at migrate");
      expect(body.blocks[0]).toEqual({ type: "header", text: { type: "plain_text", text: "❌ web deploy failed", emoji: true } });
      const all = JSON.stringify(body.blocks);
      expect(all).toContain(`<https://github.com/acme/site/commit/${SHA}|3f78685>`);
      expect(all).toContain("<https://relay.example/dashboard/default/deployments/dep_8f2k|Open the deployment>");
      expect(all).toContain("`web-2` failed at `migrate`");
      expect(all).toContain("`alice`");
      expect(all).toContain("Add the orders page");
      expect(all).toContain("1/3 hosts deployed");
    });

    it("says a success without a failure section, and leaves the dashboard link out without PUBLIC_URL", () => {
      const r = report({ type: "deployment.succeeded", status: "succeeded", url: null, hosts: [{ agent: "web-1", status: "succeeded", failedStep: null }] });
      return notifyRequest(target("https://hooks.slack.com/services/T/B/x"), r, null, "report_41", Date.now()).then((req) => {
        const body = json(req.body);
        expect(slackProblems(body)).toEqual([]);
        expect(body.text).toContain("✅ web deploy succeeded");
        expect(req.body).not.toContain("What failed");
        expect(req.body).not.toContain("Open the deployment");
      });
    });

    it("escapes what a commit message or branch could use to ping, link or format", async () => {
      const message = "<!channel> <@U024BE7LH> <https://evil.example|click here> & *bold* _it_ ```x``` @everyone";
      const r = report({ message, ref: "refs/heads/<!here>`x`", pusher: "mallory<!everyone>" });
      const body = json((await notifyRequest(target("https://hooks.slack.com/services/T/B/x"), r, null, "report_42", Date.now())).body);
      expect(slackProblems(body)).toEqual([]);
      const texts = slackTexts(body);
      for (const text of texts) {
        // The only control sequences are our own two links.
        for (const m of text.matchAll(/<[^>]*>?/g)) expect(m[0]).toMatch(/^<https:\/\/(github\.com\/acme\/site\/commit\/|relay\.example\/)[^|<>]*\|[^<>]*>$/);
        expect(text).not.toMatch(/<!|<@|<https:\/\/evil/);
      }
      const joined = texts.join("\n");
      expect(joined).toContain("&lt;!channel&gt; &lt;@U024BE7LH&gt; &lt;https://evil.example|click here&gt; &amp; *bold*");
      expect(joined).toContain("mallory&lt;!everyone&gt;");
      // The message is in a code block no backtick run can close early.
      const block = texts.find((t) => t.includes("bold"))!;
      expect(block.startsWith("```") && block.endsWith("```")).toBe(true);
      expect(block.slice(3, -3)).not.toMatch(/``/);
      expect(block.slice(3, -3).replace(/\u200b/g, "")).toBe(message.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"));
      // A branch with a backtick stays inside its inline code.
      expect(joined).toContain("`&lt;!here&gt;ˋxˋ`");
    });

    it("stays within Block Kit's limits with a 10 KB commit message and 50 failed hosts", async () => {
      const hosts = Array.from({ length: 50 }, (_, i) => ({ agent: `web-${i}-${"x".repeat(56)}`.slice(0, 64), status: "failed", failedStep: `step-${"y".repeat(58)}` }));
      const r = report({ message: `${"A long message & <more>. ".repeat(420)}`, hosts, ref: `refs/heads/${"b".repeat(240)}` });
      const t = target(`slack:${rx.receiver.slackUrl()}`);
      expect((await sendNotification(await notifyRequest(t, r, null, "report_43", Date.now()), Date.now(), t.label)).kind).toBe("sent");
      const [got] = await rx.receiver.waitFor(1);
      expect(got!.problems).toEqual([]);
      expect(got!.body).toMatch(/…and \d+ more/);
    });
  });

  describe("Discord", () => {
    const unescape = (s: string) => s.replace(/\\([^A-Za-z0-9\s])/g, "$1");

    it("stays within every Discord limit with a 10 KB commit message and 50 hosts, pinging no one", async () => {
      const hosts = Array.from({ length: 50 }, (_, i) => ({ agent: `web-${String(i).padStart(2, "0")}-${"x".repeat(56)}`, status: "failed", failedStep: `migrate-${"y".repeat(56)}` }));
      const message = `@everyone **deploy** ${"<@123456789> [x](https://evil.example) _a_ ~b~ ".repeat(220)}`.slice(0, 10_240);
      // Long names everywhere, so the fields leave the description less than its own 4096 (the 6000 total binds).
      const r = report({ message, hosts, ref: `refs/heads/${"b".repeat(240)}`, pipeline: `p${"q".repeat(63)}`, repo: `${"o".repeat(100)}/${"r".repeat(100)}`, pusher: "u".repeat(100) });
      const t = target(`discord:${rx.receiver.discordUrl()}`);
      expect(t.kind).toBe("discord");
      const outcome = await sendNotification(await notifyRequest(t, r, null, "report_50", Date.now()), Date.now(), t.label);
      expect(outcome).toMatchObject({ kind: "sent", status: 204 });
      const [got] = await rx.receiver.waitFor(1);
      expect(got!.problems).toEqual([]);
      const body = json(got!.body);
      expect(body.allowed_mentions).toEqual({ parse: [] });
      // The limits, stated here as well as in the rx.receiver.
      expect(body.content.length).toBeLessThanOrEqual(2000);
      const [embed] = body.embeds;
      expect(embed.title.length).toBeLessThanOrEqual(256);
      expect(embed.description.length).toBeLessThanOrEqual(4096);
      expect(embed.fields.length).toBeLessThanOrEqual(25);
      for (const f of embed.fields) {
        expect(f.name.length).toBeLessThanOrEqual(256);
        expect(f.value.length).toBeLessThanOrEqual(1024);
      }
      const total = embed.title.length + embed.description.length + embed.footer.text.length + embed.fields.reduce((n: number, f: { name: string; value: string }) => n + f.name.length + f.value.length, 0);
      expect(total).toBeLessThanOrEqual(6000);
      const failed = embed.fields.find((f: { name: string }) => f.name === "What failed");
      expect(unescape(failed.value)).toContain(`web-00-${"x".repeat(56)} failed at migrate-`);
      expect(failed.value).toMatch(/…and \d+ more$/);
      expect(embed.description).toMatch(/…$/);
    });

    it("names the failed host and step, links the commit and neutralises mentions and markdown", async () => {
      const message = "@everyone **urgent** <@123> <#456> [click](https://evil.example) `code` > quote";
      const req = await notifyRequest(target("https://discord.com/api/webhooks/1/abc"), report({ message }), null, "report_51", Date.now());
      const body = json(req.body);
      expect(discordProblems(body)).toEqual([]);
      expect(body.allowed_mentions).toEqual({ parse: [] });
      const [embed] = body.embeds;
      expect(embed.description).not.toMatch(/(^|[^\\])[@<*`[>]/);
      expect(unescape(embed.description)).toBe(message);
      expect(unescape(body.content)).toContain("web-2 failed at migrate");
      expect(embed.fields.map((f: { name: string; value: string }) => `${f.name}: ${unescape(f.value)}`)).toContain("What failed: web-2 failed at migrate");
      expect(JSON.stringify(embed.fields)).toContain(`[3f78685](https://github.com/acme/site/commit/${SHA})`);
      expect(embed.url).toBe("https://relay.example/dashboard/default/deployments/dep_8f2k");
      expect(embed.color).toBe(0xd1242f);
      expect(embed.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    });
  });
});

describe("gates: a deployment waiting for approval, or blocked", () => {
  const secret = newSecret();
  const rx = receiverPerTest(secret);
  const RUN = "https://github.com/acme/site/actions/runs/9876543210";
  /** A reason as hostile as a person's note can make it: mentions, links, markup, code fences, entities. */
  const HOSTILE_REASON = `rejected: <!channel> <@U024BE7LH> @everyone <https://evil.example|click> [x](https://evil.example) **no** _it_ \`\`\`x\`\`\` & ~s~ — ${RUN}`;
  const waiting = (over: Partial<DeploymentReport> = {}) =>
    report({
      type: "deployment.waiting",
      status: "waiting",
      reason: "waiting for approval",
      hosts: [
        { agent: "web-1", status: "queued", failedStep: null },
        { agent: "web-2", status: "queued", failedStep: null },
      ],
      ...over,
    });
  const blocked = (reason: string | null, over: Partial<DeploymentReport> = {}) =>
    report({ type: "deployment.blocked", status: "blocked", reason, hosts: [{ agent: "web-1", status: "skipped", failedStep: null }], ...over });
  const slackEscaped = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const unescapeDiscord = (s: string) => s.replace(/\\([^A-Za-z0-9\s])/g, "$1");

  describe("Slack", () => {
    it("says a deployment waits for approval, with the link to approve or reject it, and passes Slack's checks", async () => {
      const req = await notifyRequest(target("https://hooks.slack.com/services/T/B/x"), waiting(), null, "report_60", Date.now());
      const body = json(req.body);
      expect(slackProblems(body)).toEqual([]);
      expect(body.text).toBe("⏸ web deploy waits for approval: acme/site@3f78685 by alice");
      expect(body.blocks[0]).toEqual({ type: "header", text: { type: "plain_text", text: "⏸ web deploy waits for approval", emoji: true } });
      const texts = slackTexts(body).join("\n");
      expect(texts).toContain("<https://relay.example/dashboard/default/deployments/dep_8f2k|Approve or reject it>");
      expect(texts).toContain("*Hosts*\n2 hosts waiting");
      expect(texts).not.toContain("What failed");
      expect(texts).not.toContain("Why it is blocked");
    });

    it("without PUBLIC_URL says where to approve instead of linking", async () => {
      const body = json((await notifyRequest(target("https://hooks.slack.com/services/T/B/x"), waiting({ url: null }), null, "report_61", Date.now())).body);
      expect(slackProblems(body)).toEqual([]);
      const texts = slackTexts(body).join("\n");
      expect(texts).toContain("Approve or reject it on the dashboard.");
      expect(texts).not.toMatch(/<https:\/\/relay/);
    });

    it("says a deployment is blocked and why, the reason escaped like a commit message: no ping, no link, no format of its own", async () => {
      const t = target(`slack:${rx.receiver.slackUrl()}`);
      const outcome = await sendNotification(await notifyRequest(t, blocked(HOSTILE_REASON), null, "report_62", Date.now()), Date.now(), t.label);
      expect(outcome).toMatchObject({ kind: "sent", status: 200 });
      const [got] = await rx.receiver.waitFor(1);
      expect(got!.problems).toEqual([]);
      const body = json(got!.body);
      expect(body.blocks[0].text.text).toBe("⛔ web deploy blocked");
      expect(body.text).toBe(`⛔ web deploy blocked: ${slackEscaped(HOSTILE_REASON)} — acme/site@3f78685 by alice`);
      const texts = slackTexts(body);
      for (const text of texts) {
        // The only control sequences are our own links.
        for (const m of text.matchAll(/<[^>]*>?/g)) expect(m[0]).toMatch(/^<https:\/\/(github\.com\/acme\/site\/commit\/|relay\.example\/)[^|<>]*\|[^<>]*>$/);
        expect(text).not.toMatch(/<!|<@|<https:\/\/evil/);
      }
      const why = texts.find((x) => x.startsWith("*Why it is blocked*\n"))!;
      expect(why).toBeDefined();
      const block = why.slice("*Why it is blocked*\n".length);
      expect(block.startsWith("```") && block.endsWith("```")).toBe(true);
      expect(block.slice(3, -3)).not.toMatch(/``/);
      expect(block.slice(3, -3).replace(/\u200b/g, "")).toBe(slackEscaped(HOSTILE_REASON));
      expect(texts.join("\n")).toContain("*Hosts*\nnone of 1 host deployed");
      expect(texts.join("\n")).toContain("|Open the deployment>");
    });

    it("says blocked without a colon when there is no reason, and stays within Block Kit's limits with a 10 KB one", async () => {
      const none = json((await notifyRequest(target("https://hooks.slack.com/services/T/B/x"), blocked(null), null, "report_63", Date.now())).body);
      expect(slackProblems(none)).toEqual([]);
      expect(none.text).toBe("⛔ web deploy blocked: acme/site@3f78685 by alice");
      expect(JSON.stringify(none)).not.toContain("Why it is blocked");
      const long = json((await notifyRequest(target("https://hooks.slack.com/services/T/B/x"), blocked(`rejected: ${"<&> ".repeat(2600)}`), null, "report_64", Date.now())).body);
      expect(slackProblems(long)).toEqual([]);
      expect(long.text.length).toBeLessThanOrEqual(3000);
      expect(slackTexts(long).find((x) => x.startsWith("*Why it is blocked*"))).toMatch(/…```$/);
    });
  });

  describe("Discord", () => {
    it("says a deployment waits for approval, links it, in the attention colour, and passes Discord's checks", async () => {
      const t = target(`discord:${rx.receiver.discordUrl()}`);
      const outcome = await sendNotification(await notifyRequest(t, waiting(), null, "report_70", Date.now()), Date.now(), t.label);
      expect(outcome).toMatchObject({ kind: "sent", status: 204 });
      const [got] = await rx.receiver.waitFor(1);
      expect(got!.problems).toEqual([]);
      const body = json(got!.body);
      expect(unescapeDiscord(body.content)).toBe("⏸ web deploy waits for approval: acme/site@3f78685 by alice");
      const [embed] = body.embeds;
      expect(embed.title).toBe("⏸ web deploy waits for approval");
      expect(embed.color).toBe(0xbf8700);
      expect(embed.url).toBe("https://relay.example/dashboard/default/deployments/dep_8f2k");
      const approval = embed.fields.find((f: { name: string }) => f.name === "Waiting for approval");
      expect(approval.value).toContain("[Approve or reject it](https://relay.example/dashboard/default/deployments/dep_8f2k)");
      expect(embed.fields.find((f: { name: string }) => f.name === "Hosts").value).toBe("2 hosts waiting");
      expect(embed.fields.map((f: { name: string }) => f.name)).not.toContain("Why it is blocked");
    });

    it("says a deployment is blocked and why, the reason escaped like a commit message: pinging no one, no markdown of its own", async () => {
      const req = await notifyRequest(target("https://discord.com/api/webhooks/1/abc"), blocked(HOSTILE_REASON), null, "report_71", Date.now());
      const body = json(req.body);
      expect(discordProblems(body)).toEqual([]);
      expect(body.allowed_mentions).toEqual({ parse: [] });
      expect(unescapeDiscord(body.content)).toBe(`⛔ web deploy blocked: ${HOSTILE_REASON} — acme/site@3f78685 by alice`);
      const [embed] = body.embeds;
      expect(embed.title).toBe("⛔ web deploy blocked");
      expect(embed.color).toBe(0xbc4c00);
      const why = embed.fields.find((f: { name: string }) => f.name === "Why it is blocked");
      expect(unescapeDiscord(why.value)).toBe(HOSTILE_REASON);
      for (const text of [why.value, body.content]) expect(text).not.toMatch(/(^|[^\\])[@<*`[>_~]/);
      expect(embed.fields.find((f: { name: string }) => f.name === "Hosts").value).toBe("none of 1 host deployed");
    });

    it("stays within every Discord limit with a 10 KB reason and a 10 KB commit message", async () => {
      const r = blocked(`rejected: ${"@everyone **x** ".repeat(700)}`, { message: "<@1> _m_ ".repeat(1200) });
      const t = target(`discord:${rx.receiver.discordUrl()}`);
      expect((await sendNotification(await notifyRequest(t, r, null, "report_72", Date.now()), Date.now(), t.label)).kind).toBe("sent");
      const [got] = await rx.receiver.waitFor(1);
      expect(got!.problems).toEqual([]);
      const [embed] = json(got!.body).embeds;
      const why = embed.fields.find((f: { name: string }) => f.name === "Why it is blocked");
      expect(why.value.length).toBeLessThanOrEqual(1024);
      expect(why.value).toMatch(/…$/);
    });
  });

  describe("Standard Webhooks", () => {
    it("sends deployment.waiting and deployment.blocked signed, the reason as given (JSON needs no markup escaping)", async () => {
      const t = target(rx.receiver.standardUrl(), secret);
      const now = Date.now();
      for (const [i, r] of [waiting(), blocked(HOSTILE_REASON)].entries()) {
        expect((await sendNotification(await notifyRequest(t, r, secret, `report_8${i}`, now), now, t.label)).kind).toBe("sent");
      }
      const [w, b] = await rx.receiver.waitFor(2);
      for (const got of [w!, b!]) {
        expect(got.problems).toEqual([]);
        expect(new Webhook(secret).verify(got.body, got.headers)).toEqual(got.event);
      }
      expect(w!.event).toMatchObject({ type: "deployment.waiting", data: { status: "waiting", reason: "waiting for approval", url: "https://relay.example/dashboard/default/deployments/dep_8f2k" } });
      expect(b!.event).toMatchObject({ type: "deployment.blocked", data: { status: "blocked", reason: HOSTILE_REASON, deployment: "dep_8f2k" } });
    });

    it("sends a reason a report without one lacks as null", async () => {
      const { reason: _, ...old } = report();
      const req = await notifyRequest(target(rx.receiver.standardUrl(), secret), old, secret, "report_90", Date.now());
      expect(json(req.body).data.reason).toBeNull();
    });
  });
});
