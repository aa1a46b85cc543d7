import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../app.ts";
import { helloAgent, hmacHex, postWebhook, pushPayload, SECRET, targetSecret, uniqueName } from "../../testing/workerd/worker-support.ts";

const push = () => JSON.stringify(pushPayload());

describe("POST /webhook", () => {
  it("answers 500 naming the secret when GITHUB_WEBHOOK_SECRET is missing (fail closed)", async () => {
    const res = await postWebhook(uniqueName(), push(), {}, { ...env, GITHUB_WEBHOOK_SECRET: undefined as unknown as string });
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("GITHUB_WEBHOOK_SECRET");
  });

  it("answers 500 when the secret is only separators", async () => {
    const res = await postWebhook(uniqueName(), push(), {}, { ...env, GITHUB_WEBHOOK_SECRET: " ,\n" });
    expect(res.status).toBe(500);
  });

  it.each([
    ["a secret under 16 bytes", `${SECRET},tiny1`, "secret 2 of 2 is shorter"],
    ["a secret with a comma, split into short pieces", "0123456789abcdef,xyz", "secret 2 of 2 is shorter"],
  ])("answers 500 naming the problem, even to a good signature, when GITHUB_WEBHOOK_SECRET has %s (fail closed)", async (_what, value, why) => {
    const res = await postWebhook(uniqueName(), push(), { secret: SECRET }, { ...env, GITHUB_WEBHOOK_SECRET: value });
    expect(res.status).toBe(500);
    const { error } = (await res.json()) as { error: string };
    expect(error).toContain("GITHUB_WEBHOOK_SECRET");
    expect(error).toContain(why);
    expect(error).toContain("at least 16 bytes");
    for (const piece of value.split(",")) expect(error).not.toContain(piece);
  });

  it("takes a newline-separated value line by line, so a secret may contain a comma", async () => {
    const withComma = "rotated,secret-0123456789";
    const res = await postWebhook(uniqueName(), push(), { secret: withComma }, { ...env, GITHUB_WEBHOOK_SECRET: `${SECRET}\n${withComma}\n` });
    expect(res.status).toBe(200);
  });

  it("answers 413 for a body over 25 MiB declared by Content-Length", async () => {
    const big = new Uint8Array(25 * 1024 * 1024 + 1);
    const res = await app.request(
      `/webhook/${uniqueName()}`,
      { method: "POST", headers: { "Content-Type": "application/json", "Content-Length": String(big.byteLength) }, body: big },
      env,
    );
    expect(res.status).toBe(413);
  });

  it("answers 413 for a streamed body over 25 MiB without Content-Length", async () => {
    const chunk = new Uint8Array(1024 * 1024);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 100) return controller.close();
        sent += 1;
        controller.enqueue(chunk);
      },
    });
    const signed = { "Content-Type": "application/json", "X-Hub-Signature-256": `sha256=${"0".repeat(64)}` }; // well-formed: the body is read
    const res = await app.request(`/webhook/${uniqueName()}`, { method: "POST", headers: signed, body: stream }, env);
    expect(res.status).toBe(413);
    expect(sent).toBeLessThan(30); // stopped reading soon after the cap, not at the end of the stream
  });

  it("answers 401 when the signature header is missing", async () => {
    const res = await postWebhook(uniqueName(), push(), { headers: { "X-Hub-Signature-256": "" } });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "invalid signature" });
  });

  it.each(["sha256=", "sha256=zz", `sha256=${"A".repeat(64)}`, "garbage", `sha256=${"a".repeat(64)}=`])(
    "answers 401 for a malformed signature %j",
    async (sig) => {
      const res = await postWebhook(uniqueName(), push(), { headers: { "X-Hub-Signature-256": sig } });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: "invalid signature" });
    },
  );

  // A body that records whether it was read. The refused one never ends: reading it would hang the request.
  function watchedBody(chunk?: Uint8Array): { stream: ReadableStream<Uint8Array>; pulled: () => boolean } {
    let pulled = false;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulled = true;
          if (!chunk) return new Promise<void>(() => {});
          controller.enqueue(chunk);
          controller.close();
        },
      },
      { highWaterMark: 0 },
    );
    return { stream, pulled: () => pulled };
  }

  it.each([
    ["no signature header", {}, env],
    ["a malformed X-Hub-Signature-256", { "X-Hub-Signature-256": "sha256=zz" }, env],
    ["only X-Hub-Signature while ALLOW_SHA1 is false", { "X-Hub-Signature": `sha1=${"a".repeat(40)}` }, env],
    ["a malformed X-Hub-Signature while ALLOW_SHA1 is true", { "X-Hub-Signature": "sha1=" }, { ...env, ALLOW_SHA1: "true" }],
  ])("answers 401 without reading the body when it has %s (a well-formed header gets it read)", async (_what, headers, testEnv) => {
    const send = (sig: Record<string, string>, body: ReadableStream<Uint8Array>) =>
      app.request(
        `/webhook/${uniqueName()}`,
        { method: "POST", headers: { "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", ...sig }, body },
        testEnv,
      );
    const refused = watchedBody();
    const res = await send(headers, refused.stream);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "invalid signature" });
    expect(refused.pulled()).toBe(false);

    const read = watchedBody(new TextEncoder().encode(push()));
    expect((await send({ "X-Hub-Signature-256": `sha256=${"0".repeat(64)}` }, read.stream)).status).toBe(401); // wrong, but it needs the bytes
    expect(read.pulled()).toBe(true);
  });

  it("answers 401 for a signature made with the wrong secret", async () => {
    const res = await postWebhook(uniqueName(), push(), { secret: "not the secret" });
    expect(res.status).toBe(401);
  });

  it("answers 401 when the body was changed after signing (raw bytes are what is verified)", async () => {
    const body = push();
    const sig = `sha256=${await hmacHex("SHA-256", SECRET, body)}`;
    const res = await postWebhook(uniqueName(), `${body} `, { headers: { "X-Hub-Signature-256": sig } });
    expect(res.status).toBe(401);
  });

  it("accepts a signature made with any configured secret (rotation)", async () => {
    const rotated = { ...env, GITHUB_WEBHOOK_SECRET: "new-secret-0123456789, old-secret-0123456789 " };
    const resOld = await postWebhook(uniqueName(), push(), { secret: "old-secret-0123456789" }, rotated);
    const resNew = await postWebhook(uniqueName(), push(), { secret: "new-secret-0123456789" }, rotated);
    const resOther = await postWebhook(uniqueName(), push(), { secret: SECRET }, rotated);
    expect([resOld.status, resNew.status, resOther.status]).toEqual([200, 200, 401]);
  });

  it("refuses sha1 (X-Hub-Signature) unless ALLOW_SHA1 is true", async () => {
    const body = push();
    const target = uniqueName();
    const sha1 = `sha1=${await hmacHex("SHA-1", await targetSecret(SECRET, target), body)}`;
    const headers = { "X-Hub-Signature-256": undefined as unknown as string, "X-Hub-Signature": sha1 };
    const sendSha1Only = (e: Env) =>
      app.request(
        `/webhook/${target}`,
        {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": crypto.randomUUID(), "X-Hub-Signature": headers["X-Hub-Signature"] },
          body,
        },
        e,
      );
    expect((await sendSha1Only(env)).status).toBe(401);
    expect((await sendSha1Only({ ...env, ALLOW_SHA1: "true" })).status).toBe(200);
  });

  it("answers 415 for an unsupported Content-Type", async () => {
    const res = await postWebhook(uniqueName(), push(), { contentType: "text/plain" });
    expect(res.status).toBe(415);
  });

  it("answers 400 with the reason for unparseable JSON", async () => {
    const res = await postWebhook(uniqueName(), "{not json");
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/not valid JSON/);
  });

  it("accepts a form-encoded body with the JSON in its payload field", async () => {
    const body = new URLSearchParams({ payload: JSON.stringify({ zen: "Keep it logically awesome.", hook_id: 42 }) }).toString();
    const res = await postWebhook(uniqueName(), body, { event: "ping", contentType: "application/x-www-form-urlencoded" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ pong: true, hook: 42 });
  });

  it("answers 400 for a form body without a payload field", async () => {
    const res = await postWebhook(uniqueName(), "other=1", { contentType: "application/x-www-form-urlencoded" });
    expect(res.status).toBe(400);
  });

  it.each(["X-GitHub-Event", "X-GitHub-Delivery"])("answers 400 naming the missing %s header", async (header) => {
    const body = push();
    const target = uniqueName();
    const res = await app.request(
      `/webhook/${target}`,
      {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "X-Hub-Signature-256": `sha256=${await hmacHex("SHA-256", await targetSecret(SECRET, target), body)}`,
          ...(header === "X-GitHub-Event" ? { "X-GitHub-Delivery": "d-1" } : { "X-GitHub-Event": "push" }),
        },
        body,
      },
      env,
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain(header);
  });

  it.each([
    ["X-GitHub-Delivery", "d".repeat(201)],
    ["X-GitHub-Delivery", "has space"],
    ["X-GitHub-Event", "Push;rm"],
    ["X-GitHub-Hook-ID", "1".repeat(101)],
  ])("answers 400 naming %s when it is out of bounds (headers are not signed)", async (header, value) => {
    const target = uniqueName();
    const res = await postWebhook(target, push(), { headers: { [header]: value } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain(header);
    const jobs = await env.TARGET.getByName(target).listJobs(10);
    expect(jobs).toEqual([]);
  });

  it("answers a ping with pong and the hook id", async () => {
    const res = await postWebhook(uniqueName(), JSON.stringify({ zen: "x", hook_id: 109948940 }), { event: "ping" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ pong: true, hook: 109948940 });
  });

  it("treats POST /webhook as target default", async () => {
    const res = await postWebhook(null, JSON.stringify({ hook_id: 1 }), { event: "ping" });
    expect(res.status).toBe(200);
  });

  it("answers 404 for an invalid target name", async () => {
    const res = await postWebhook("..bad..", push());
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toContain("target");
  });

  it.each([
    ["repository.full_name", { repository: {} }],
    ["after", { after: "not-a-sha" }],
    ["before", { before: 7 }],
    ["pusher.name", { pusher: {} }],
    ["ref", { ref: 12 }],
  ])("answers 400 naming the invalid push field %s", async (field, override) => {
    const res = await postWebhook(uniqueName(), JSON.stringify(pushPayload(override)));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain(field);
  });

  // A value that can never be an environment value (or is absurdly long) is refused at the edge with
  // the field and the reason, and makes no job — an agent that declares the pipeline is connected.
  it.each([
    ["pusher.name", "a NUL", { pusher: { name: "octo\u0000cat" } }, "NUL"],
    ["pusher.name", "an escape character", { pusher: { name: "octo\u001b[2Jcat" } }, "control character U+001B"],
    ["pusher.name", "a lone surrogate", { pusher: { name: "octo\ud800cat" } }, "unpaired surrogate"],
    ["pusher.name", "200 KB", { pusher: { name: "x".repeat(200_000) } }, "200000 bytes long"],
    ["repository.full_name", "a NUL", { repository: { full_name: "owner/OldManInfo_Flask\u0000" } }, "NUL"],
    ["repository.full_name", "a lone surrogate", { repository: { full_name: "owner/\udc00x" } }, "unpaired surrogate"],
    ["ref", "a NUL", { ref: "refs/heads/mas\u0000ter" }, "NUL"],
    ["ref", "a C1 control character", { ref: "refs/heads/mas\u0085ter" }, "control character U+0085"],
    ["ref", "a lone surrogate", { ref: "refs/heads/\ud800" }, "unpaired surrogate"],
  ])("answers 400 naming %s when it holds %s, and creates no job", async (field, _what, override, why) => {
    const target = uniqueName();
    const agent = await helloAgent(target, "web-1");
    const res = await postWebhook(target, JSON.stringify(pushPayload(override)));
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: string };
    expect(error).toContain(field);
    expect(error).toContain(why);
    expect(await env.TARGET.getByName(target).listJobs(10)).toEqual([]);
    agent.close();
  });

  it.each([
    ["a tag push", { ref: "refs/tags/v1\ud800" }],
    ["a branch deletion", { ref: "refs/heads/old\u009b", deleted: true, after: "0".repeat(40) }],
  ])("answers 400 for %s whose ref is not text (ignored pushes are checked too)", async (_what, override) => {
    const res = await postWebhook(uniqueName(), JSON.stringify(pushPayload(override)));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain("ref");
  });

  it("ignores a tag push without creating a job", async () => {
    const res = await postWebhook(uniqueName(), JSON.stringify(pushPayload({ ref: "refs/tags/v1.0" })));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ jobs: [], ignored: expect.stringContaining("refs/tags/v1.0") });
  });

  it("ignores a branch deletion without creating a job", async () => {
    const res = await postWebhook(uniqueName(), JSON.stringify(pushPayload({ deleted: true, after: "0".repeat(40) })));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ jobs: [], ignored: expect.stringContaining("deletion") });
  });

  it("ignores events other than push", async () => {
    const res = await postWebhook(uniqueName(), JSON.stringify({ action: "opened" }), { event: "issues" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ jobs: [], ignored: expect.stringContaining("issues") });
  });

  it("ignores a push no pipeline matches, saying which", async () => {
    const res = await postWebhook(uniqueName(), JSON.stringify(pushPayload({ ref: "refs/heads/dev" })));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ jobs: [], ignored: "no pipeline for push to refs/heads/dev of owner/OldManInfo_Flask" });
  });
});
