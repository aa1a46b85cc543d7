/**
 * Secret masking as steps really print: real bash child processes writing a secret whole, byte by
 * byte with pauses (separate pipe reads), inside a 1 MB line, past the log cap, on both streams;
 * and the StepOutput (head, tail, batching) fed random chunks against masking the whole stream.
 */
import { describe, expect, it } from "vitest";
import { seededRandom as rng } from "../../testing/redeliver.ts";
import type { JobEventBody, OutputStream } from "../../shared/protocol.ts";
import type { PipelineConfig } from "../common/config.ts";
import { Masker } from "./mask.ts";
import { LogBudget, StepOutput } from "./output.ts";
import { startJob } from "./runner.ts";
import type { LoadedSecrets } from "./secrets.ts";
import { SHA_A, SHA_B } from "../../testing/fake-worker.ts";
import { testDir } from "../../testing/test-agent.ts";

const SECRET = "pg-Pa55word-9f8e7d6c";
const PEM = ["-----BEGIN PRIVATE KEY-----", "MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAq7BFUpkGp3+XQ", "-----END PRIVATE KEY-----"].join("\n");

function secretsOf(env: Record<string, string>): LoadedSecrets {
  return { env: new Map([["app", env]]), masker: Masker.forValues(Object.values(env)), described: [] };
}

/** Runs one pipeline of real bash steps; returns each step's output as stored (stream-tagged) and the job's end. */
async function runSteps(steps: { name: string; run: string }[], opts: { logCapBytes?: number; secrets?: LoadedSecrets } = {}) {
  const pipeline: PipelineConfig = {
    name: "app", repo: "owner/app", events: ["push"], branches: ["main"], workdir: testDir(), env: {}, timeoutMs: 60_000,
    steps: steps.map((s) => ({ ...s, timeoutMs: null })), onFailure: [], rollout: { batch: 1, haltOnFailure: true },
    environment: null, environmentUrl: null, productionEnvironment: null, transientEnvironment: null, secrets: {},
    tags: [], paths: null, pathsIgnore: null, waitFor: null,
  };
  const events: JobEventBody[] = [];
  const job = startJob(
    { jobId: "j-1", pipeline: "app", fields: { delivery: "d", event: "push", repo: "owner/app", ref: "refs/heads/main", sha: SHA_A, before: SHA_B, pusher: "octocat" } },
    {
      pipelines: [pipeline], killGraceMs: 1000, logCapBytes: opts.logCapBytes ?? 8 * 1024 * 1024, baseEnv: { PATH: process.env.PATH },
      secrets: opts.secrets ?? secretsOf({ DB_PASSWORD: SECRET, TLS_KEY: PEM }),
      log: { info: () => {}, warn: () => {}, error: () => {} },
      // Output's data copied: its buffer is reused once emit has settled.
      emit: async (body) => void events.push(body.kind === "output" && typeof body.data !== "string" ? { ...body, data: Buffer.from(body.data) } : body),
    },
  );
  const status = await job.done;
  const out = (step: string, stream?: OutputStream) =>
    events.flatMap((e) => (e.kind === "output" && e.step === step && (stream === undefined || e.stream === stream) ? [e.data] : [])).join("");
  const ends = events.flatMap((e) => (e.kind === "step-end" ? [[e.step, e.status]] : []));
  return { status, out, ends };
}

describe("a step's output, masked before it leaves the agent (real child processes)", () => {
  it("masks a secret printed whole, on stdout and stderr, and reaches the step only as env NAME", async () => {
    const r = await runSteps([
      { name: "whole", run: 'echo "url=postgres://app:$DB_PASSWORD@db/app"; echo "err: $DB_PASSWORD" >&2; test -n "$DB_PASSWORD"' },
    ]);
    expect(r.status).toBe("succeeded");
    expect(r.out("whole", "stdout")).toBe("url=postgres://app:***@db/app\n");
    expect(r.out("whole", "stderr")).toBe("err: ***\n");
  });

  it("masks a secret written byte by byte with pauses between, so that every byte is a read of its own", async () => {
    const r = await runSteps([
      { name: "drip", run: 's="[$DB_PASSWORD]"; for ((i = 0; i < ${#s}; i++)); do printf "%s" "${s:i:1}"; sleep 0.02; done; echo' },
    ]);
    expect(r.out("drip")).toBe("[***]\n");
  });

  it("masks a secret in the middle of a 1 MB line", async () => {
    const r = await runSteps([
      { name: "long", run: 'head -c 524288 /dev/zero | tr "\\0" a; printf "%s" "$DB_PASSWORD"; head -c 524288 /dev/zero | tr "\\0" b; echo' },
    ]);
    const got = r.out("long");
    expect(got).toBe(`${"a".repeat(524288)}***${"b".repeat(524288)}\n`);
  });

  it("masks a secret in the tail kept past the log cap", async () => {
    const cap = 64 * 1024; // head 48 KiB, tail 16 KiB
    const r = await runSteps(
      [{ name: "flood", run: 'for i in $(seq 1 20000); do echo "filler line $i"; done; echo "at the end: $DB_PASSWORD"; echo "done"' }],
      { logCapBytes: cap },
    );
    const got = r.out("flood");
    expect(got).toMatch(/bytes of output omitted \(log cap 64KiB\)/);
    expect(got.endsWith("at the end: ***\ndone\n")).toBe(true);
    expect(got).not.toContain(SECRET);
  });

  it("does not mask an encoding of the secret (base64): values are masked, not encodings", async () => {
    const r = await runSteps([{ name: "b64", run: 'printf "%s" "$DB_PASSWORD" | base64' }]);
    expect(r.out("b64")).toBe(`${Buffer.from(SECRET).toString("base64")}\n`);
  });

  it("masks one line of a multi-line value (a PEM key) printed alone, and the whole key line by line", async () => {
    const r = await runSteps([
      { name: "one-line", run: 'echo "key body: $(printf "%s\\n" "$TLS_KEY" | sed -n 2p)"' },
      { name: "whole-key", run: 'printf "%s\\n" "$TLS_KEY"' },
    ]);
    expect(r.out("one-line")).toBe("key body: ***\n");
    expect(r.out("whole-key")).toBe("***\n***\n***\n");
  });

  it("without secrets, output passes as it is", async () => {
    const r = await runSteps([{ name: "plain", run: 'echo "pg-Pa55word-9f8e7d6c"' }], { secrets: secretsOf({}) });
    expect(r.out("plain")).toBe(`${SECRET}\n`);
  });
});


describe("StepOutput fuzz: masking in random chunks across both streams equals masking each stream whole", () => {
  it("holds for 300 seeded cases, with batching", async () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const int = (n: number) => Math.floor(r() * n);
      const alphabet = ["x", "y", "\n", "ü", "🔑", "-"];
      const word = (min: number, max: number) => Array.from({ length: min + int(max - min + 1) }, () => alphabet[int(alphabet.length)]).join("");
      const values = Array.from({ length: 1 + int(3) }, () => word(4, 10));
      const masker = Masker.forValues(values)!;
      if (!masker) continue;
      const streams = { stdout: [] as string[], stderr: [] as string[] };
      for (let i = int(40); i >= 0; i--) (r() < 0.5 ? streams.stdout : streams.stderr).push(r() < 0.4 ? values[int(values.length)]! : word(0, 8));
      const bytes = { stdout: Buffer.from(streams.stdout.join("")), stderr: Buffer.from(streams.stderr.join("")) };
      const got = { stdout: "", stderr: "" };
      const out = new StepOutput({ budget: new LogBudget(1024 * 1024), masker, flushBytes: 1 + int(16), emit: async (s, d) => void (got[s] += d) });
      const at = { stdout: 0, stderr: 0 };
      while (at.stdout < bytes.stdout.length || at.stderr < bytes.stderr.length) {
        const s: OutputStream = at.stdout >= bytes.stdout.length ? "stderr" : at.stderr >= bytes.stderr.length ? "stdout" : r() < 0.5 ? "stdout" : "stderr";
        const n = 1 + int(12);
        await out.write(s, bytes[s].subarray(at[s], at[s] + n));
        at[s] += n;
      }
      await out.finish();
      for (const s of ["stdout", "stderr"] as const) {
        const expected = masker.maskAll(bytes[s]).toString();
        if (got[s] !== expected) throw new Error(`seed ${seed} ${s}: values ${JSON.stringify(values)}: got ${JSON.stringify(got[s])}, expected ${JSON.stringify(expected)}`);
      }
    }
  });
});
