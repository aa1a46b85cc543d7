/** A signed GitHub push to the worker under test, as the end-to-end tests send it. */
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { TEST_SECRETS } from "../dev/worker-process.ts";

export async function push(url: string, target: string, repo: string, after: string, opts: { branch?: string; before?: string; delivery?: string } = {}) {
  const res = await sendWebhook(url, {
    target,
    delivery: opts.delivery,
    secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET,
    payload: pushPayload({ repo, ref: `refs/heads/${opts.branch ?? "main"}`, after, before: opts.before }),
  });
  return res;
}
