/**
 * The GitHub Deployments client (worker/report/github*.ts) against a fake GitHub on loopback
 * (testing/fake-github.ts) that enforces GitHub's rules: token and App auth, the 140-character limit,
 * the 409s of GitHub's defaults, 502s and rate limits. App auth uses a real RSA key made here.
 */
import { createPrivateKey, generateKeyPairSync, verify } from "node:crypto";
import { request } from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type FakeGitHub, startFakeGitHub } from "../testing/fake-github.ts";
import { type DeploymentInput, GITHUB_OFF, type GitHubClient, gitHubSetup, type GitHubVars, type StatusInput } from "../worker/report/github.ts";
import { forgetGitHubAppTokens } from "../worker/report/github-app.ts";
import { derLength, parsePrivateKeyPem } from "../worker/report/github-key.ts";

const REPO = "acme/web";
const SHA = "0123456789abcdef0123456789abcdef01234567";
const TOKEN = "github_pat_11AAAAAAA0valid";
const deployment: DeploymentInput = { sha: SHA, environment: "staging", description: "Deploying 0123456 to web-1, web-2", production: false, transient: true, payload: { target: "web", deployment: "d_1" } };
const status = (state: StatusInput["state"], extra: Partial<StatusInput> = {}): StatusInput => ({
  state,
  description: `web: ${state}`,
  logUrl: "https://relay.example.com/dashboard/web/deployments/d_1",
  environmentUrl: "https://staging.example.com",
  environment: "staging",
  ...extra,
});

let fake: FakeGitHub;
afterEach(async () => {
  await fake?.close();
});
beforeEach(() => forgetGitHubAppTokens());

function clientFor(vars: GitHubVars): GitHubClient {
  const setup = gitHubSetup(vars);
  if (setup.state !== "on") throw new Error(`expected GitHub reporting on, got ${setup.state}: ${setup.why}`);
  return setup.client;
}

async function created(client: GitHubClient, now = Date.now()): Promise<number> {
  const outcome = await client.createDeployment(REPO, deployment, now);
  if (outcome.kind !== "sent") throw new Error(`deployment not created: ${outcome.error}`);
  const body = outcome.body;
  if (typeof body !== "object" || body === null || !("id" in body) || typeof body.id !== "number") throw new Error("no id in the answer");
  return body.id;
}

/** A request with only the headers given (fetch would add a User-Agent of its own). */
function rawCall(url: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers, timeout: 10_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const GOOD_HEADERS = { accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28", "user-agent": "test", authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
const GOOD_BODY = { ref: SHA, auto_merge: false, required_contexts: [], environment: "staging" };

describe("GitHub client with GITHUB_TOKEN", () => {
  it("creates the deployment for the sha, then queued, in_progress and success statuses, with GitHub's headers", async () => {
    fake = await startFakeGitHub({ tokens: [TOKEN] });
    const client = clientFor({ GITHUB_TOKEN: TOKEN, GITHUB_API_URL: `${fake.url}/` });
    const id = await created(client);
    for (const state of ["queued", "in_progress", "success"] as const) {
      const outcome = await client.createStatus(REPO, id, status(state, state === "queued" ? { environmentUrl: null } : {}), Date.now());
      expect(outcome.kind).toBe("sent");
    }
    expect(fake.deployments(REPO)).toEqual([
      { id, ref: SHA, environment: "staging", description: deployment.description, production_environment: false, transient_environment: true, payload: { target: "web", deployment: "d_1" }, creator: `token:${TOKEN}` },
    ]);
    const statuses = fake.statusesOf(REPO, id);
    expect(statuses.map((s) => s.state)).toEqual(["queued", "in_progress", "success"]);
    expect(statuses[2]).toMatchObject({ description: "web: success", environment: "staging", log_url: "https://relay.example.com/dashboard/web/deployments/d_1", environment_url: "https://staging.example.com" });
    expect(statuses[0]?.environment_url).toBeNull();

    expect(fake.calls.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([
      `POST /repos/acme/web/deployments 201`,
      `POST /repos/acme/web/deployments/${id}/statuses 201`,
      `POST /repos/acme/web/deployments/${id}/statuses 201`,
      `POST /repos/acme/web/deployments/${id}/statuses 201`,
    ]);
    for (const call of fake.calls) {
      expect(call.headers).toMatchObject({ accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28", "user-agent": "hookrelay", authorization: `Bearer ${TOKEN}` });
    }
    expect(fake.calls[0]?.body).toEqual({ ref: SHA, environment: "staging", auto_merge: false, required_contexts: [], description: deployment.description, payload: { target: "web", deployment: "d_1" }, production_environment: false, transient_environment: true });
    // A null URL is left out, not sent as null; auto_inactive is left at GitHub's default.
    expect(fake.calls[1]?.body).toEqual({ state: "queued", description: "web: queued", environment: "staging", log_url: "https://relay.example.com/dashboard/web/deployments/d_1" });
  });

  it("cuts descriptions to 140 characters with an ellipsis, counting characters (the fake answers 422 past 140)", async () => {
    fake = await startFakeGitHub({ tokens: [TOKEN] });
    const client = clientFor({ GITHUB_TOKEN: TOKEN, GITHUB_API_URL: fake.url });
    const long = `${"🚀".repeat(10)}${"web-3 failed at migrate; ".repeat(10)}`;
    const outcome = await client.createDeployment(REPO, { ...deployment, description: long }, Date.now());
    expect(outcome.kind).toBe("sent");
    const d = fake.deployments(REPO)[0];
    const chars = Array.from(d?.description ?? "");
    expect(chars).toHaveLength(140);
    expect(chars[139]).toBe("…");
    expect(d?.description?.startsWith("🚀".repeat(10))).toBe(true);
    const st = await client.createStatus(REPO, d?.id ?? 0, status("failure", { description: long }), Date.now());
    expect(st.kind).toBe("sent");
    expect(Array.from(fake.statusesOf(REPO, d?.id ?? 0)[0]?.description ?? "")).toHaveLength(140);
    // Exactly 140 goes through untouched.
    const exact = "x".repeat(140);
    expect((await client.createDeployment(REPO, { ...deployment, description: exact }, Date.now())).kind).toBe("sent");
    expect(fake.deployments(REPO)[1]?.description).toBe(exact);

    const tooLong = await rawCall(fake.url, "POST", `/repos/${REPO}/deployments`, GOOD_HEADERS, { ...GOOD_BODY, description: "x".repeat(141) });
    expect(tooLong.status).toBe(422);
    expect(tooLong.text).toContain("too long");
    const statusTooLong = await rawCall(fake.url, "POST", `/repos/${REPO}/deployments/${d?.id}/statuses`, GOOD_HEADERS, { state: "failure", description: "x".repeat(141) });
    expect(statusTooLong.status).toBe(422);
  });

  it("answers a wrong token's 401 with a retry that names GITHUB_TOKEN and not the token", async () => {
    fake = await startFakeGitHub({ tokens: [TOKEN] });
    const client = clientFor({ GITHUB_TOKEN: "github_pat_wrong_one", GITHUB_API_URL: fake.url });
    const outcome = await client.createDeployment(REPO, deployment, Date.now());
    expect(outcome).toMatchObject({ kind: "retry", notBefore: null });
    if (outcome.kind === "sent") throw new Error("unreachable");
    expect(outcome.error).toContain("401");
    expect(outcome.error).toContain("GITHUB_TOKEN");
    expect(outcome.error).not.toContain("github_pat_wrong_one");
    expect(fake.calls[0]?.status).toBe(401);
    expect(fake.deployments(REPO)).toEqual([]);
  });

  it("retries a 502 and a network error, then creates the deployment once", async () => {
    fake = await startFakeGitHub({ tokens: [TOKEN] });
    const client = clientFor({ GITHUB_TOKEN: TOKEN, GITHUB_API_URL: fake.url });
    fake.failNext(1);
    const first = await client.createDeployment(REPO, deployment, Date.now());
    expect(first).toMatchObject({ kind: "retry", notBefore: null });
    expect(fake.calls[0]?.status).toBe(502);
    expect(fake.deployments(REPO)).toEqual([]);
    expect((await client.createDeployment(REPO, deployment, Date.now())).kind).toBe("sent");
    expect(fake.deployments(REPO)).toHaveLength(1);

    const down = clientFor({ GITHUB_TOKEN: TOKEN, GITHUB_API_URL: "http://127.0.0.1:1" });
    expect(await down.createDeployment(REPO, deployment, Date.now())).toMatchObject({ kind: "retry", notBefore: null });
  });

  it("retries a rate limit no sooner than x-ratelimit-reset", async () => {
    fake = await startFakeGitHub({ tokens: [TOKEN] });
    const client = clientFor({ GITHUB_TOKEN: TOKEN, GITHUB_API_URL: fake.url });
    const reset = fake.rateLimitFor(120_000);
    const outcome = await client.createDeployment(REPO, deployment, Date.now());
    expect(outcome).toEqual({ kind: "retry", error: expect.stringContaining("rate limited"), notBefore: reset * 1000 });
    expect(fake.calls[0]?.status).toBe(403);
    fake.advance(121_000);
    expect((await client.createDeployment(REPO, deployment, fake.now())).kind).toBe("sent");
  });

  it("fails for good on a 422, a 409 and a 404 (sending the same again cannot help)", async () => {
    fake = await startFakeGitHub({ tokens: [TOKEN] });
    const client = clientFor({ GITHUB_TOKEN: TOKEN, GITHUB_API_URL: fake.url });
    const noRef = await client.createDeployment(REPO, { ...deployment, sha: "" }, Date.now());
    expect(noRef).toMatchObject({ kind: "fail", error: expect.stringContaining("422") });
    fake.failNext(1, 409);
    expect(await client.createDeployment(REPO, deployment, Date.now())).toMatchObject({ kind: "fail", error: expect.stringContaining("409") });
    expect(await client.createStatus(REPO, 424242, status("success"), Date.now())).toMatchObject({ kind: "fail", error: expect.stringContaining("404") });
  });
});

describe("the fake GitHub enforces what GitHub does", () => {
  it("answers 409 when auto_merge or required_contexts are left at GitHub's defaults", async () => {
    fake = await startFakeGitHub({ tokens: [TOKEN] });
    const { auto_merge: _a, ...noAutoMerge } = GOOD_BODY;
    const { required_contexts: _r, ...noContexts } = GOOD_BODY;
    expect((await rawCall(fake.url, "POST", `/repos/${REPO}/deployments`, GOOD_HEADERS, noAutoMerge)).status).toBe(409);
    expect((await rawCall(fake.url, "POST", `/repos/${REPO}/deployments`, GOOD_HEADERS, noContexts)).status).toBe(409);
    expect((await rawCall(fake.url, "POST", `/repos/${REPO}/deployments`, GOOD_HEADERS, { ...GOOD_BODY, required_contexts: ["ci"] })).status).toBe(409);
    expect((await rawCall(fake.url, "POST", `/repos/${REPO}/deployments`, GOOD_HEADERS, GOOD_BODY)).status).toBe(201);
  });

  it("answers 403 without a User-Agent, 400 without the API version or Accept, 401 without a valid token", async () => {
    fake = await startFakeGitHub({ tokens: [TOKEN] });
    const { "user-agent": _u, ...noAgent } = GOOD_HEADERS;
    const { "x-github-api-version": _v, ...noVersion } = GOOD_HEADERS;
    const { accept: _x, ...noAccept } = GOOD_HEADERS;
    const { authorization: _z, ...noAuth } = GOOD_HEADERS;
    const path = `/repos/${REPO}/deployments`;
    const noAgentAnswer = await rawCall(fake.url, "POST", path, noAgent, GOOD_BODY);
    expect(noAgentAnswer.status).toBe(403);
    expect(noAgentAnswer.text).toContain("User-Agent");
    expect((await rawCall(fake.url, "POST", path, noVersion, GOOD_BODY)).status).toBe(400);
    expect((await rawCall(fake.url, "POST", path, noAccept, GOOD_BODY)).status).toBe(400);
    expect((await rawCall(fake.url, "POST", path, noAuth, GOOD_BODY)).status).toBe(401);
    expect((await rawCall(fake.url, "POST", path, { ...GOOD_HEADERS, authorization: "Bearer nope" }, GOOD_BODY)).status).toBe(401);
    expect((await rawCall(fake.url, "POST", path, GOOD_HEADERS, GOOD_BODY)).status).toBe(201);
    const id = fake.deployments(REPO)[0]?.id;
    expect((await rawCall(fake.url, "POST", `${path}/${id}/statuses`, GOOD_HEADERS, { state: "done" })).status).toBe(422);
    expect(fake.calls.map((c) => c.status)).toEqual([403, 400, 400, 401, 401, 201, 422]);
  });
});

describe("GitHub client as a GitHub App", () => {
  const APP_ID = "123456";
  const keys = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs1", format: "pem" } });
  const pkcs1Pem = keys.privateKey;
  const pkcs8Pem = createPrivateKey(pkcs1Pem).export({ type: "pkcs8", format: "pem" }).toString();
  const startApp = () => startFakeGitHub({ app: { id: APP_ID, publicKey: keys.publicKey, installations: { [REPO]: 77, "acme/api": 77, "other/site": 88 } } });

  it("wraps the PKCS#1 key GitHub hands out into the same PKCS#8 bytes OpenSSL writes", () => {
    expect(pkcs1Pem).toContain("-----BEGIN RSA PRIVATE KEY-----");
    const parsed = parsePrivateKeyPem(pkcs1Pem);
    if (!parsed.ok) throw new Error(parsed.why);
    expect(parsed.format).toBe("pkcs1");
    expect(Buffer.from(parsed.pkcs8).equals(createPrivateKey(pkcs1Pem).export({ type: "pkcs8", format: "der" }))).toBe(true);
    expect([derLength(5), derLength(127), derLength(128), derLength(255), derLength(256), derLength(1190), derLength(65_536)]).toEqual([
      [5],
      [127],
      [0x81, 0x80],
      [0x81, 0xff],
      [0x82, 0x01, 0x00],
      [0x82, 0x04, 0xa6],
      [0x83, 0x01, 0x00, 0x00],
    ]);
  });

  it("signs an RS256 JWT the fake verifies, finds the installation, mints its token and creates the deployment with it", async () => {
    fake = await startApp();
    const client = clientFor({ GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: pkcs1Pem, GITHUB_API_URL: fake.url });
    expect(client.auth).toBe(`GitHub App ${APP_ID}`);
    const now = Date.now();
    const id = await created(client, now);
    expect((await client.createStatus(REPO, id, status("queued"), now)).kind).toBe("sent");
    expect(fake.calls.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([
      "GET /repos/acme/web/installation 200",
      "POST /app/installations/77/access_tokens 201",
      "POST /repos/acme/web/deployments 201",
      `POST /repos/acme/web/deployments/${id}/statuses 201`,
    ]);
    const jwt = fake.calls[0]?.headers.authorization?.replace(/^Bearer /, "") ?? "";
    const [head = "", claims = "", signature = ""] = jwt.split(".");
    expect(JSON.parse(Buffer.from(head, "base64url").toString())).toEqual({ alg: "RS256", typ: "JWT" });
    const seconds = Math.floor(now / 1000);
    expect(JSON.parse(Buffer.from(claims, "base64url").toString())).toEqual({ iat: seconds - 60, exp: seconds + 540, iss: 123456 });
    expect(verify("RSA-SHA256", Buffer.from(`${head}.${claims}`), keys.publicKey, Buffer.from(signature, "base64url"))).toBe(true);
    expect(jwt).not.toMatch(/[=+/]/);
    const installationToken = fake.calls[2]?.headers.authorization;
    expect(installationToken).toMatch(/^Bearer ghs_/);
    expect(fake.calls[3]?.headers.authorization).toBe(installationToken);
    expect(fake.deployments(REPO)[0]?.creator).toBe("installation:77");
  });

  it("accepts a PKCS#8 key, and a key pasted with literal \\n sequences", async () => {
    fake = await startApp();
    for (const key of [pkcs8Pem, pkcs1Pem.replace(/\n/g, "\\n"), pkcs8Pem.replace(/\n/g, "\\n")]) {
      forgetGitHubAppTokens();
      const client = clientFor({ GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: key, GITHUB_API_URL: fake.url });
      expect((await client.createDeployment(REPO, deployment, Date.now())).kind).toBe("sent");
    }
    expect(fake.deployments(REPO)).toHaveLength(3);
    expect(fake.calls.filter((c) => c.path.endsWith("/access_tokens")).map((c) => c.status)).toEqual([201, 201, 201]);
  });

  it("keeps the installation token until 5 minutes before it expires, then mints another", async () => {
    fake = await startApp();
    const client = clientFor({ GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: pkcs1Pem, GITHUB_API_URL: fake.url });
    const minted = () => fake.calls.filter((c) => c.path.endsWith("/access_tokens")).length;
    const id = await created(client, fake.now());
    expect(minted()).toBe(1);
    // A fresh client (the lead builds one per alarm pass) still uses the cached token; so does another repo of the same installation.
    const again = clientFor({ GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: pkcs1Pem, GITHUB_API_URL: fake.url });
    expect((await again.createStatus(REPO, id, status("in_progress"), fake.now())).kind).toBe("sent");
    expect((await again.createDeployment("acme/api", deployment, fake.now())).kind).toBe("sent");
    expect(minted()).toBe(1);
    expect(fake.calls.filter((c) => c.path.endsWith("/installation")).length).toBe(2);

    fake.advance(54 * 60_000); // the token lives an hour: 6 minutes left
    expect((await again.createStatus(REPO, id, status("success"), fake.now())).kind).toBe("sent");
    expect(minted()).toBe(1);
    const oldToken = fake.calls.at(-1)?.headers.authorization;

    fake.advance(2 * 60_000); // 4 minutes left: refreshed
    expect((await again.createStatus(REPO, id, status("success"), fake.now())).kind).toBe("sent");
    expect(minted()).toBe(2);
    const newToken = fake.calls.at(-1)?.headers.authorization;
    expect(newToken).toMatch(/^Bearer ghs_/);
    expect(newToken).not.toBe(oldToken);
  });

  it("names the step and the App's secrets when GitHub refuses the JWT, and retries a failed step", async () => {
    fake = await startApp();
    const otherKey = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;
    const wrong = clientFor({ GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: otherKey, GITHUB_API_URL: fake.url });
    const refused = await wrong.createDeployment(REPO, deployment, Date.now());
    expect(refused).toMatchObject({ kind: "retry", error: expect.stringMatching(/installation on acme\/web.*401.*GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY/) });
    const wrongId = clientFor({ GITHUB_APP_ID: "999", GITHUB_APP_PRIVATE_KEY: pkcs1Pem, GITHUB_API_URL: fake.url });
    expect(await wrongId.createDeployment(REPO, deployment, Date.now())).toMatchObject({ kind: "retry", error: expect.stringContaining("GITHUB_APP_ID") });
    expect(fake.calls.map((c) => c.status)).toEqual([401, 401]);

    const client = clientFor({ GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: pkcs1Pem, GITHUB_API_URL: fake.url });
    expect(await client.createDeployment("acme/unknown", deployment, Date.now())).toMatchObject({ kind: "fail", error: expect.stringContaining("installed on acme/unknown") });

    fake.failNext(1);
    expect(await client.createDeployment(REPO, deployment, fake.now())).toMatchObject({ kind: "retry", error: expect.stringContaining("finding its installation") });
    expect((await client.createDeployment(REPO, deployment, fake.now())).kind).toBe("sent");
    fake.advance(56 * 60_000);
    fake.failNext(1);
    expect(await client.createDeployment(REPO, deployment, fake.now())).toMatchObject({ kind: "retry", error: expect.stringContaining("minting a token for installation 77") });
    expect((await client.createDeployment(REPO, deployment, fake.now())).kind).toBe("sent");
    expect(fake.deployments(REPO)).toHaveLength(2);
  });

  it("mints a new token when GitHub refuses the cached one", async () => {
    fake = await startApp();
    const client = clientFor({ GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: pkcs1Pem, GITHUB_API_URL: fake.url });
    await created(client, Date.now());
    fake.revokeInstallationTokens();
    const refused = await client.createDeployment(REPO, deployment, Date.now());
    expect(refused).toMatchObject({ kind: "retry", error: expect.stringMatching(/401.*installation token/) });
    expect((await client.createDeployment(REPO, deployment, Date.now())).kind).toBe("sent");
    expect(fake.calls.filter((c) => c.path.endsWith("/access_tokens")).length).toBe(2);
    expect(fake.deployments(REPO)).toHaveLength(2);
  });
});

describe("gitHubSetup", () => {
  const SECRET_KEY_TEXT = "hunter2-not-a-pem-but-secret";

  it("is off when nothing is set", () => {
    expect(gitHubSetup({})).toEqual({ state: "off", why: GITHUB_OFF });
    expect(gitHubSetup({ GITHUB_TOKEN: " ", GITHUB_API_URL: "https://ghe.example.com/api/v3" })).toEqual({ state: "off", why: GITHUB_OFF });
    expect(GITHUB_OFF).toContain("GITHUB_TOKEN");
    expect(GITHUB_OFF).toContain("GITHUB_APP_PRIVATE_KEY");
  });

  it("is broken, naming the secret and never quoting it, when the configuration is partial or invalid", () => {
    const pem = generateKeyPairSync("rsa", { modulusLength: 1024, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;
    const cases: [GitHubVars, string, string | null][] = [
      [{ GITHUB_APP_ID: "123" }, "GITHUB_APP_PRIVATE_KEY", null],
      [{ GITHUB_APP_PRIVATE_KEY: pem }, "GITHUB_APP_ID", pem.slice(40, 80)],
      [{ GITHUB_APP_ID: "123", GITHUB_APP_PRIVATE_KEY: SECRET_KEY_TEXT }, "GITHUB_APP_PRIVATE_KEY", SECRET_KEY_TEXT],
      [{ GITHUB_APP_ID: "123", GITHUB_APP_PRIVATE_KEY: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----" }, "GITHUB_APP_PRIVATE_KEY", "b3BlbnNzaC1rZXktdjEAAAAA"],
      [{ GITHUB_APP_ID: "123", GITHUB_APP_PRIVATE_KEY: pem.replace(/[A-Za-z0-9+/]{64}\n/, "") }, "GITHUB_APP_PRIVATE_KEY", pem.slice(40, 80)],
      [{ GITHUB_APP_ID: "my-app", GITHUB_APP_PRIVATE_KEY: pem }, "GITHUB_APP_ID", pem.slice(40, 80)],
      [{ GITHUB_TOKEN: "ghp_secretvalue", GITHUB_APP_ID: "1", GITHUB_APP_PRIVATE_KEY: pem }, "not both", "ghp_secretvalue"],
      [{ GITHUB_TOKEN: "ghp_secret one" }, "GITHUB_TOKEN", "ghp_secret"],
      [{ GITHUB_TOKEN: "ghp_secretvalue", GITHUB_API_URL: "ftp://ghe.example.com" }, "GITHUB_API_URL", "ghp_secretvalue"],
      [{ GITHUB_TOKEN: "ghp_secretvalue", GITHUB_API_URL: "not a url" }, "GITHUB_API_URL", "ghp_secretvalue"],
    ];
    for (const [vars, names, secret] of cases) {
      const setup = gitHubSetup(vars);
      expect(setup.state, JSON.stringify(Object.keys(vars))).toBe("broken");
      if (setup.state !== "broken") continue;
      expect(setup.why).toContain(names);
      if (secret !== null) expect(setup.why).not.toContain(secret);
    }
  });

  it("is on with the API URL defaulted, or given without its trailing slash", () => {
    const defaulted = gitHubSetup({ GITHUB_TOKEN: "ghp_x" });
    expect(defaulted.state === "on" && defaulted.client.apiUrl).toBe("https://api.github.com");
    const given = gitHubSetup({ GITHUB_TOKEN: "ghp_x", GITHUB_API_URL: "https://ghe.example.com/api/v3/" });
    expect(given.state === "on" && given.client.apiUrl).toBe("https://ghe.example.com/api/v3");
    const app = gitHubSetup({ GITHUB_APP_ID: "Iv23liAbCdEf", GITHUB_APP_PRIVATE_KEY: generateKeyPairSync("rsa", { modulusLength: 1024, privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey });
    expect(app.state === "on" && app.client.auth).toBe("GitHub App Iv23liAbCdEf");
  });
});
