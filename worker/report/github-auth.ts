/** How the GitHub client gets its bearer token: a fine-grained token as is, or a GitHub App's installation token (github-app.ts). */
import type { SendOutcome } from "./outcome.ts";

/** The token for a call, or the outcome that stopped getting one (the App's installation lookup failed, say). */
export type TokenResult = { token: string } | { outcome: SendOutcome };

export interface GitHubAuth {
  /** For logs and the API: "GITHUB_TOKEN", "GitHub App 123". */
  readonly label: string;
  /** What a 401 on a repository call says to check. */
  readonly secrets: string;
  tokenFor(repo: string, now: number): Promise<TokenResult>;
  /** GitHub refused the token for this repo (401/404): forget what is cached for it. */
  refused(repo: string): void;
}

export class TokenAuth implements GitHubAuth {
  readonly label = "GITHUB_TOKEN";
  readonly secrets = "GITHUB_TOKEN";
  readonly #token: string;

  constructor(token: string) {
    this.#token = token;
  }

  tokenFor(): Promise<TokenResult> {
    return Promise.resolve({ token: this.#token });
  }

  refused(): void {}
}
