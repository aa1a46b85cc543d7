/**
 * `npm run demo:push`: commit a new version to the demo repo and send GitHub's signed push webhook
 * for it to the local worker, exactly as GitHub would (the same signed delivery the end-to-end tests send).
 * Prints the worker's answer.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { git } from "../dev/git-repo.ts";
import { DEMO_REPO, loadDemo } from "./demo.ts";

export async function demoPush(): Promise<{ status: number; body: unknown; sha: string }> {
  const demo = loadDemo();
  const before = git(demo.work, "rev-parse", "HEAD");
  const version = Number(readFileSync(join(demo.work, "VERSION"), "utf8").trim()) + 1;
  writeFileSync(join(demo.work, "VERSION"), `${version}\n`);
  git(demo.work, "commit", "-q", "-am", `version ${version}`);
  git(demo.work, "push", "-q", "origin", "HEAD:refs/heads/main");
  const after = git(demo.work, "rev-parse", "HEAD");
  const res = await sendWebhook(`http://127.0.0.1:${demo.port}`, {
    secret: demo.secrets.GITHUB_WEBHOOK_SECRET,
    payload: pushPayload({ repo: DEMO_REPO, ref: "refs/heads/main", after, before, pusher: process.env.USER ?? "demo" }),
  });
  return { status: res.status, body: res.body, sha: after };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await demoPush();
  console.log(`pushed ${r.sha}; worker answered ${r.status}: ${JSON.stringify(r.body)}`);
  process.exit(r.status >= 200 && r.status < 300 ? 0 : 1);
}
