/**
 * GitHub App auth: an RS256 JWT signed with the App's key (WebCrypto), the App's installation on the
 * repository, and that installation's access token, cached until 5 minutes before it expires.
 *
 * Why not `universal-github-app-jwt`: its build for workerd (package `imports` "#crypto" without the
 * "node" condition, which is what wrangler bundles) throws on a PKCS#1 key — the format GitHub hands
 * out (github-app-jwt-library.test.ts runs it in workerd to show it, 2.2.2) — and under Node it converts
 * the key with node:crypto, so tests in Node would run a different path than the worker ships. The
 * wrapping has to be ours anyway (github-key.ts); the JWT is 20 lines, and this one keeps the imported
 * key between calls where the library imports it again for every token.
 *
 * The caches are module-level: a Durable Object eviction only loses them (one more token minted).
 */
import type { GitHubAuth, TokenResult } from "./github-auth.ts";
import { toBase64url } from "../../shared/encoding.ts";
import { callGitHub, repoPath } from "./github-request.ts";
import type { SendOutcome } from "./outcome.ts";

/** The imported key's type, spelled so it resolves under both Node's and workerd's typings (Node's has no global CryptoKey). */
type SigningKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

const ALGORITHM = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;
/** A token is used until this long before its `expires_at`. */
export const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;
const APP_SECRETS = "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY";

interface CachedToken {
  token: string;
  expiresAt: number;
}

const installationByRepo = new Map<string, number>();
const tokenByInstallation = new Map<string, CachedToken>();
let importedKey: { pkcs8: Uint8Array; key: Promise<SigningKey> } | null = null;

/** Forgets every cached installation and token (tests; a rotated key does not need it). */
export function forgetGitHubAppTokens(): void {
  installationByRepo.clear();
  tokenByInstallation.clear();
}

/** The App's JWT (RFC 7519, RS256): iat a minute back for clock drift, exp 9 minutes ahead (GitHub allows 10). */
export async function appJwt(appId: string, key: SigningKey, now: number): Promise<string> {
  const seconds = Math.floor(now / 1000);
  const iss: string | number = /^\d+$/.test(appId) ? Number(appId) : appId; // an App ID is a number; a client ID ("Iv1.…") a string
  const encoder = new TextEncoder();
  const head = `${toBase64url(encoder.encode(JSON.stringify({ alg: "RS256", typ: "JWT" })))}.${toBase64url(encoder.encode(JSON.stringify({ iat: seconds - 60, exp: seconds + 9 * 60, iss })))}`;
  const signature = await crypto.subtle.sign(ALGORITHM, key, encoder.encode(head));
  return `${head}.${toBase64url(new Uint8Array(signature))}`;
}

export function importSigningKey(pkcs8: Uint8Array<ArrayBuffer>): Promise<SigningKey> {
  if (importedKey === null || !sameBytes(importedKey.pkcs8, pkcs8)) {
    const key = crypto.subtle.importKey("pkcs8", pkcs8, ALGORITHM, false, ["sign"]);
    importedKey = { pkcs8, key };
    key.catch(() => {
      if (importedKey?.key === key) importedKey = null;
    });
  }
  return importedKey.key;
}

export class GitHubAppAuth implements GitHubAuth {
  readonly label: string;
  readonly secrets = "the GitHub App's installation token (minted with GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY)";
  readonly #apiUrl: string;
  readonly #appId: string;
  readonly #pkcs8: Uint8Array<ArrayBuffer>;

  constructor(apiUrl: string, appId: string, pkcs8: Uint8Array<ArrayBuffer>) {
    this.#apiUrl = apiUrl;
    this.#appId = appId;
    this.#pkcs8 = pkcs8;
    this.label = `GitHub App ${appId}`;
  }

  async tokenFor(repo: string, now: number): Promise<TokenResult> {
    const repoKey = `${this.#apiUrl} ${this.#appId} ${repo}`;
    let installation = installationByRepo.get(repoKey);
    let jwt: string | SendOutcome | null = null;
    if (installation === undefined) {
      jwt = await this.#jwt(now);
      if (typeof jwt !== "string") return { outcome: jwt };
      const { outcome: found, status } = await callGitHub(this.#apiUrl, { method: "GET", path: `${repoPath(repo)}/installation`, token: jwt, step: `App: finding its installation on ${repo}`, unauthorized: APP_SECRETS }, now);
      if (found.kind !== "sent") return { outcome: status === 404 && found.kind === "fail" ? { kind: "fail", error: `${found.error} — is the App installed on ${repo}?` } : found };
      const id = objectField(found.body, "id");
      if (typeof id !== "number" || !Number.isSafeInteger(id)) return { outcome: { kind: "retry", error: `GitHub App: the installation answer for ${repo} has no id`, notBefore: null } };
      installation = id;
      installationByRepo.set(repoKey, id);
    }
    const tokenKey = `${this.#apiUrl} ${this.#appId} ${installation}`;
    const cached = tokenByInstallation.get(tokenKey);
    if (cached && now < cached.expiresAt - TOKEN_REFRESH_MARGIN_MS) return { token: cached.token };
    jwt ??= await this.#jwt(now);
    if (typeof jwt !== "string") return { outcome: jwt };
    const { outcome: minted } = await callGitHub(this.#apiUrl, { method: "POST", path: `/app/installations/${installation}/access_tokens`, token: jwt, step: `App: minting a token for installation ${installation}`, unauthorized: APP_SECRETS }, now);
    if (minted.kind !== "sent") {
      if (minted.kind === "fail") installationByRepo.delete(repoKey); // uninstalled meanwhile: look it up again next time
      return { outcome: minted };
    }
    const token = objectField(minted.body, "token");
    const expiresAt = Date.parse(String(objectField(minted.body, "expires_at")));
    if (typeof token !== "string" || token === "" || Number.isNaN(expiresAt)) return { outcome: { kind: "retry", error: `GitHub App: the access token answer for installation ${installation} has no token or expires_at`, notBefore: null } };
    tokenByInstallation.set(tokenKey, { token, expiresAt });
    return { token };
  }

  refused(repo: string): void {
    const repoKey = `${this.#apiUrl} ${this.#appId} ${repo}`;
    const installation = installationByRepo.get(repoKey);
    installationByRepo.delete(repoKey);
    if (installation !== undefined) tokenByInstallation.delete(`${this.#apiUrl} ${this.#appId} ${installation}`);
  }

  async #jwt(now: number): Promise<string | SendOutcome> {
    try {
      return await appJwt(this.#appId, await importSigningKey(this.#pkcs8), now);
    } catch (e) {
      // The PEM parsed, but WebCrypto refused the key (not RSA, say): the secret has to be fixed; retry meanwhile.
      return { kind: "retry", error: `GitHub App: GITHUB_APP_PRIVATE_KEY could not be used to sign: ${e instanceof Error ? e.message : String(e)}`, notBefore: null };
    }
  }
}

function objectField(body: unknown, name: string): unknown {
  return typeof body === "object" && body !== null && Object.hasOwn(body, name) ? Reflect.get(body, name) : undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
