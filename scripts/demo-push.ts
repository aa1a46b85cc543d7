/**
 * `npm run demo:push`: commit a new version to the demo repo and send GitHub's signed push webhook
 * for it to the local worker, exactly as GitHub would. Prints the worker's answer.
 */
import { createHmac, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEMO_REPO, git, loadDemo } from "./demo.ts";

export async function demoPush(): Promise<{ status: number; body: unknown; sha: string }> {
  const demo = loadDemo();
  const before = git(demo.work, "rev-parse", "HEAD");
  const version = Number(readFileSync(join(demo.work, "VERSION"), "utf8").trim()) + 1;
  writeFileSync(join(demo.work, "VERSION"), `${version}\n`);
  git(demo.work, "commit", "-q", "-am", `version ${version}`);
  git(demo.work, "push", "-q", "origin", "HEAD:refs/heads/main");
  const after = git(demo.work, "rev-parse", "HEAD");
  const body = JSON.stringify({
    ref: "refs/heads/main",
    before,
    after,
    deleted: false,
    repository: { full_name: DEMO_REPO, name: "hello-app" },
    pusher: { name: process.env.USER ?? "demo" },
    head_commit: { id: after, message: `version ${version}` },
  });
  const signature = `sha256=${createHmac("sha256", demo.secrets.GITHUB_WEBHOOK_SECRET).update(body).digest("hex")}`;
  const res = await fetch(`http://127.0.0.1:${demo.port}/webhook`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": "push",
      "x-github-delivery": randomUUID(),
      "x-github-hook-id": "1",
      "x-hub-signature-256": signature,
    },
    body,
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, sha: after };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await demoPush();
  console.log(`pushed ${r.sha}; worker answered ${r.status}: ${JSON.stringify(r.body)}`);
  process.exit(r.status >= 200 && r.status < 300 ? 0 : 1);
}
