/**
 * Signed pushes whose values cannot be environment values (a NUL, an unpaired surrogate, control
 * characters, 200 KB): each is refused with a 4xx and makes no job, or its job ends `failed` without
 * running a step — it never stays queued or running. The next normal push to the same agent deploys.
 * Real worker (wrangler dev), real agent process, real git repositories; one target and agent per case,
 * so a stuck job in one case cannot hold up another.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type AgentProcess } from "../dev/agent-process.ts";
import { api, jobWhenSettled, waitForAgent } from "../dev/api.ts";
import { push } from "../testing/push.ts";
import { createRepo } from "../dev/git-repo.ts";
import { pushPayload, sendWebhook } from "../dev/github.ts";
import { startWorker, TEST_SECRETS, type WorkerProcess } from "../dev/worker-process.ts";

const REPO = "acme/hostile";
/** How long a hostile job may take to end; a refused job ends in well under a second. */
const HOSTILE_JOB_MS = 10_000;
const DEPLOY_MS = 15_000;

let worker: WorkerProcess;
const agents: AgentProcess[] = [];
beforeAll(async () => {
  worker = await startWorker();
}, 90_000);
afterAll(async () => worker?.stop());
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop("SIGKILL")));
});

interface HostileCase {
  name: string;
  /** The signed body, as sent. */
  body(sha: string): string;
}

/** A normal push body with some fields replaced; JSON.stringify escapes every control character. */
function bodyWith(sha: string, f: { pusher?: string; repo?: string; ref?: string }): string {
  return JSON.stringify(pushPayload({ repo: f.repo ?? REPO, ref: f.ref ?? "refs/heads/main", after: sha, pusher: f.pusher }));
}

/**
 * pusher.name = "eve" + an unpaired high surrogate + "x", as the JSON escape `\ud800` (a raw one
 * could not travel: UTF-8 has no encoding for it). Written by hand, not trusted to JSON.stringify.
 */
function loneSurrogateBody(sha: string): string {
  const marker = "LONE-SURROGATE-MARKER";
  const body = bodyWith(sha, { pusher: marker }).replace(`"${marker}"`, '"eve\\ud800x"');
  if (!body.includes('"name":"eve\\ud800x"')) throw new Error(`the hand-built body lacks the \\ud800 escape: ${body}`);
  return body;
}

const CASES: HostileCase[] = [
  { name: "pusher.name with a NUL", body: (sha) => bodyWith(sha, { pusher: "eve\u0000x" }) },
  { name: "pusher.name with an unpaired surrogate (\\ud800)", body: loneSurrogateBody },
  { name: "pusher.name with ESC (a terminal escape)", body: (sha) => bodyWith(sha, { pusher: "eve\u001b[31mred" }) },
  { name: "pusher.name with CR (a forged log line)", body: (sha) => bodyWith(sha, { pusher: "eve\r[hookrelay] forged line" }) },
  { name: "a 200 KB pusher.name", body: (sha) => bodyWith(sha, { pusher: "p".repeat(200_000) }) },
  { name: "repository.full_name with a NUL", body: (sha) => bodyWith(sha, { repo: `${REPO}\u0000x` }) },
  { name: "a branch name with a NUL in ref", body: (sha) => bodyWith(sha, { ref: "refs/heads/ma\u0000in" }) },
];

async function jobList(target: string): Promise<any[]> {
  const r = await api(worker.url, `/api/targets/${target}/jobs?limit=200`);
  expect(r.status, r.text).toBe(200);
  return r.body.jobs;
}

function linesOf(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

describe("a signed push with values that cannot be environment values", () => {
  it("is built with the escapes the cases need", () => {
    // JSON.stringify writes a lone surrogate as the escape too (well-formed JSON.stringify, ES2019);
    // the surrogate case still writes its body by hand so it does not depend on that.
    expect(JSON.stringify("\ud800")).toBe('"\\ud800"');
    const body = loneSurrogateBody("a".repeat(40));
    expect(body).toContain('"eve\\ud800x"');
    expect((JSON.parse(body) as any).pusher.name).toBe("eve\ud800x");
    expect(bodyWith("a".repeat(40), { pusher: "eve\u0000x" })).toContain('"eve\\u0000x"');
  });

  CASES.forEach((c, n) => {
    it(`${c.name}: refused (4xx, no job) or its job ends failed without running; the next push deploys`, async () => {
      const target = `hostile-${n + 1}`;
      const repo = createRepo({ VERSION: "1\n" });
      const runs = join(repo.dir, "runs");
      const agent = await startAgent({
        server: worker.url,
        target,
        name: "web-1",
        pipelines: [
          {
            name: "app",
            repo: REPO,
            branches: ["**"],
            workdir: repo.live,
            timeout: "1m",
            steps: [{ name: "deploy", run: `echo "$HOOKRELAY_JOB_ID" >> ${runs}; git fetch -q origin && git reset -q --hard "$HOOKRELAY_SHA" && echo "now at $(git rev-parse HEAD)"` }],
          },
        ],
      });
      agents.push(agent);
      await waitForAgent(worker.url, target, "web-1");

      // The hostile push.
      const hostileSha = repo.commit({ VERSION: "hostile\n" }, "hostile push");
      const res = await sendWebhook(worker.url, { target, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET, body: c.body(hostileSha) });
      const answer = `answered ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
      if (res.status >= 400 && res.status < 500) {
        const made = (await jobList(target)).filter((j) => j.delivery === res.delivery);
        expect.soft(made, `${answer}, yet jobs were created`).toEqual([]);
      } else {
        expect.soft(res.status, `${answer}: neither a 4xx nor an accepted push`).toBeGreaterThanOrEqual(200);
        expect.soft(res.status, answer).toBeLessThan(300);
        const ids: string[] = (res.body?.jobs ?? []).map((j: any) => j.id);
        expect.soft(ids.length, `${answer}: accepted, but no job that could end failed (expected a 4xx refusal)`).toBeGreaterThan(0);
        for (const id of ids) {
          const job = await jobWhenSettled(worker.url, target, id, HOSTILE_JOB_MS);
          expect.soft(job.status, `${answer}; job ${id} (waited up to ${HOSTILE_JOB_MS} ms) is ${job.status}, steps ${JSON.stringify(job.steps?.map((s: any) => [s.name, s.status]))}`).toBe("failed");
          expect.soft(linesOf(runs), `job ${id}'s step ran with the hostile value`).not.toContain(id);
        }
      }

      // A normal push right after it deploys on the same agent.
      const sha = repo.commit({ VERSION: "2\n" }, "normal push");
      const normal = await push(worker.url, target, REPO, sha);
      expect(normal.status, JSON.stringify(normal.body)).toBe(202);
      const id: string = normal.body.jobs[0].id;
      const job = await jobWhenSettled(worker.url, target, id, DEPLOY_MS);
      expect(job.status, `the normal push's job ${id} after the hostile one`).toBe("succeeded");
      expect(repo.head()).toBe(sha);

      // Nothing of this target is left waiting or running.
      const open = (await jobList(target)).filter((j) => j.status === "queued" || j.status === "running");
      expect(open.map((j) => `${j.id} ${j.status} (delivery ${j.delivery})`)).toEqual([]);
    });
  });
});
