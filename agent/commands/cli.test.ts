import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isAlive } from "../../testing/liveness.ts";
import { groupAlive } from "../runtime/process-group.ts";
import { type CliRun, runCli, startCli } from "../../testing/agent-cli.ts";
import { eventually } from "../../dev/eventually.ts";
import { type FakeWorker, jobMessage, SHA_A, startFakeWorker } from "../../testing/fake-worker.ts";
import { TEST_TOKEN, writeTestConfig } from "../../testing/test-agent.ts";
import { AGENT_VERSION } from "../common/version.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function track(run: CliRun): CliRun {
  cleanups.push(async () => {
    if (run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill("SIGKILL");
      await run.exited;
    }
  });
  return run;
}

async function fakeWorker(): Promise<FakeWorker> {
  const fake = await startFakeWorker();
  cleanups.push(() => fake.close());
  return fake;
}

const FAST = { HOOKRELAY_RECONNECT_MIN_MS: "50", HOOKRELAY_RECONNECT_MAX_MS: "200" };

describe("command line", () => {
  it("prints its version and help, and exits 2 on usage errors", async () => {
    expect(await runCli(["--version"])).toMatchObject({ code: 0, stdout: `hookrelay-agent ${AGENT_VERSION}\n` });
    expect((await runCli(["--help"])).stdout).toMatch(/^Usage: hookrelay-agent <command> --config FILE/);
    for (const [args, why] of [
      [[], /missing command/],
      [["deploy"], /unknown command "deploy"/],
      [["run"], /run: --config FILE is required/],
      [["check", "--config"], /--config/],
      [["exec", "--config", "x.yml", "--bogus"], /bogus/],
    ] as const) {
      const r = await runCli([...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).toContain("Run hookrelay-agent --help for usage.");
    }
  });

  it("keeps its version in step with package.json", () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8")) as { version: string };
    expect(AGENT_VERSION).toBe(pkg.version);
  });

  it("check prints the pipelines of a good config and exits 0", async () => {
    const { file, workdir, dir } = writeTestConfig({ server: "ws://127.0.0.1:9", onFailure: [{ name: "undo", run: "true" }] });
    const r = await runCli(["check", "--config", file], { HOOKRELAY_AGENT_TOKEN: "t" });
    expect(r.stdout).toContain(`pipeline app: owner/app, push to main, x*; workdir ${workdir}; timeout 30m\n  steps:      hello\n  on_failure: undo\n  rollout:    batch 1 host, halt on failure\n`);
    expect(r.stdout).toContain(`token:     environment variable HOOKRELAY_AGENT_TOKEN`);
    expect(r.stdout).toContain(`${file}: OK`);
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, "state"))).toBe(false); // check creates nothing
    const half = writeTestConfig({ server: "ws://127.0.0.1:9", dir: join(dir, "half"), pipeline: { rollout: { batch: "50%" } } });
    expect((await runCli(["check", "--config", half.file], { HOOKRELAY_AGENT_TOKEN: "t" })).stdout).toContain("  steps:      hello\n  rollout:    batch 50%, halt on failure\n");
  });

  it("check lists every problem with file and key, and exits 1", async () => {
    const { file, dir } = writeTestConfig({ server: "ws://127.0.0.1:9" });
    writeFileSync(file, readFileSync(file, "utf8").replace("server: ws://127.0.0.1:9", "server: http://x\nstate_dri: /tmp").replace("run: echo hello", "rum: echo hello"));
    const r = await runCli(["check", "--config", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}: server: must start with ws:// or wss://`);
    expect(r.stderr).toContain(`${file}: state_dri: unknown key (did you mean state_dir?)`);
    expect(r.stderr).toContain(`${file}: pipelines[0].steps[0].rum: unknown key (did you mean run?)`);
    expect(r.stderr).toContain(`${file}: pipelines[0].steps[0].run: expected a string, got nothing`);
    // A valid config on a host without its token, workdir or a usable state_dir: also named.
    const other = writeTestConfig({ server: "ws://127.0.0.1:9", dir: join(dir, "second"), pipeline: { workdir: "/nonexistent/app" }, extra: { state_dir: join(file, "state") } });
    const r2 = await runCli(["check", "--config", other.file]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(`${other.file}: no agent token`);
    expect(r2.stderr).toContain(`${other.file}: pipelines[0].workdir: /nonexistent/app does not exist or is not a directory`);
    expect(r2.stderr).toMatch(/state_dir: .* is not a directory/);
    expect(r2.stderr).toContain("3 problem(s) found");
  });

  it("check and run refuse an env value no process environment can hold, naming file, key and why", async () => {
    const { file } = writeTestConfig({ server: "ws://127.0.0.1:9", pipeline: { env: { GREETING: "hi" } } });
    writeFileSync(file, readFileSync(file, "utf8").replace("GREETING: hi", 'GREETING: "hi\\0there"'));
    const line = `${file}: pipelines[0].env.GREETING: contains a NUL character (U+0000), which no process environment can hold`;
    for (const command of ["check", "run"]) {
      const r = await runCli([command, "--config", file], { HOOKRELAY_AGENT_TOKEN: TEST_TOKEN }, 15_000);
      expect(r.stderr, command).toContain(line);
      expect(r.code, command).toBe(1);
    }
  });

  it("systemd prints a hardened unit that passes the token as a credential", async () => {
    const { file, workdir, dir, config } = writeTestConfig({ server: "ws://127.0.0.1:9", extra: { token_file: "token", kill_grace: "20s" } });
    const r = await runCli(["systemd", "--config", file, "--user", "deploy"]);
    expect(r.code).toBe(0);
    const unit = r.stdout;
    for (const line of [
      "User=deploy",
      "Restart=on-failure",
      "KillMode=control-group",
      "TimeoutStopSec=50s",
      `LoadCredential=agent-token:${join(dir, "token")}`,
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      `ReadWritePaths=${workdir} ${config.stateDir}`,
      "PrivateTmp=yes",
      "WantedBy=multi-user.target",
    ]) {
      expect(unit).toContain(`\n${line}\n`);
    }
    expect(unit).toMatch(new RegExp(`\\nExecStart=\\S+node\\S* --max-semi-space-size=1 \\S+/agent/commands/cli\\.ts run --config ${file}\\n`));
    // No token in argv (paths aside: a checkout may live in a directory named like "…tokens").
    const argv = (/^ExecStart=(.*)$/m.exec(unit)?.[1] ?? "").split(" ").filter((arg) => !arg.startsWith("/"));
    expect(argv.join(" ")).not.toMatch(/token/i);
  });

  it("exec runs a pipeline here and exits 0 only when it succeeded", async () => {
    const good = writeTestConfig({ server: "ws://127.0.0.1:9", steps: [{ name: "greet", run: 'echo "deploying $HOOKRELAY_SHA on $HOOKRELAY_BRANCH"' }] });
    const r = await runCli(["exec", "--config", good.file, "--pipeline", "app", "--sha", SHA_A]);
    expect(r.stdout).toBe(`deploying ${SHA_A} on main\n`);
    expect(r.stderr).toMatch(/==> greet\n<== greet: succeeded \(exit 0\)\n==> job local-\d+: succeeded\n/);
    expect(r.code).toBe(0);
    const bad = writeTestConfig({ server: "ws://127.0.0.1:9", steps: [{ name: "fail", run: "exit 7" }] });
    const r2 = await runCli(["exec", "--config", bad.file, "--pipeline", "app", "--sha", SHA_A, "--ref", "refs/heads/main"]);
    expect(r2.stderr).toContain("<== fail: failed (exit 7)");
    expect(r2.code).toBe(1);
    expect((await runCli(["exec", "--config", bad.file, "--pipeline", "nope", "--sha", SHA_A])).code).toBe(2);
  });

  it("exec runs a tag the pipeline names (HOOKRELAY_TAG set, HOOKRELAY_BRANCH empty) and refuses one it does not", async () => {
    const run = 'echo "tag=[$HOOKRELAY_TAG] branch=[$HOOKRELAY_BRANCH]"';
    const tagged = writeTestConfig({ server: "ws://127.0.0.1:9", pipeline: { tags: ["v*"] }, steps: [{ name: "show", run }] });
    const r = await runCli(["exec", "--config", tagged.file, "--pipeline", "app", "--sha", SHA_A, "--ref", "refs/tags/v1.0"]);
    expect(r.stdout).toBe("tag=[v1.0] branch=[]\n");
    expect(r.code).toBe(0);
    const refused = await runCli(["exec", "--config", tagged.file, "--pipeline", "app", "--sha", SHA_A, "--ref", "refs/tags/nightly"]);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toContain(`[hookrelay] not run: tag "nightly" does not match this pipeline's tags (configured: v*)`);
    expect(refused.code).toBe(1);
    const pull = await runCli(["exec", "--config", tagged.file, "--pipeline", "app", "--sha", SHA_A, "--ref", "refs/pull/1/merge"]);
    expect(pull.stderr).toContain(`--ref must be refs/heads/<branch> or refs/tags/<tag>, got "refs/pull/1/merge"`);
  });
});

describe("agent process", () => {
  it("refuses to start without a token or with a state_dir another agent holds", async () => {
    const fake = await fakeWorker();
    const { file } = writeTestConfig({ server: fake.url });
    const r = await runCli(["run", "--config", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no agent token/);
    const first = track(startCli(["run", "--config", file], { HOOKRELAY_AGENT_TOKEN: TEST_TOKEN }));
    await eventually("the first agent to connect", () => first.output().includes("connected to "));
    const second = await runCli(["run", "--config", file], { HOOKRELAY_AGENT_TOKEN: TEST_TOKEN });
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/is in use by another agent \(pid \d+/);
  });

  it("after a crash mid-job, reports the job interrupted on restart and never re-runs it", async () => {
    const fake = await fakeWorker();
    const { file, workdir } = writeTestConfig({ server: fake.url, steps: [{ name: "deploy", run: "echo run >> count; echo $$ > step.pid; echo started; sleep 30" }] });
    const env = { HOOKRELAY_AGENT_TOKEN: TEST_TOKEN, ...FAST };
    const first = track(startCli(["run", "--config", file], env));
    await eventually("hello", () => fake.latest()?.messages.some((m) => m.type === "hello"));
    fake.latest()!.send(jobMessage("crash1"));
    await eventually("the step to start", () => fake.output("crash1", "deploy").includes("started"));
    // Power loss: the agent and the step's process group die together.
    first.child.kill("SIGKILL");
    await first.exited;
    const stepPid = Number(readFileSync(join(workdir, "step.pid"), "utf8"));
    process.kill(-stepPid, "SIGKILL");
    await eventually("the step group to die", () => !groupAlive(stepPid));

    const second = track(startCli(["run", "--config", file], env));
    expect(await eventually("job-end", () => fake.jobEnd("crash1"))).toEqual({ kind: "job-end", status: "interrupted" });
    expect(fake.output("crash1", null)).toMatch(/agent stopped while this job was running/);
    expect(fake.output("crash1", "deploy")).toBe("started\n");
    const seqs = fake.events.get("crash1")!.map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    // The worker, not knowing, sends the job again: answered accepted, not run.
    fake.latest()!.send(jobMessage("crash1"));
    await eventually("accepted again", () => fake.latest()!.messages.some((m) => m.type === "accepted" && m.jobId === "crash1"));
    await new Promise((r) => setTimeout(r, 300));
    expect(readFileSync(join(workdir, "count"), "utf8")).toBe("run\n");
    expect(second.output()).toContain("[job crash1] interrupted by an agent restart");
  });

  it("on SIGTERM stops the running step's processes, reports the job interrupted and exits 0", async () => {
    const fake = await fakeWorker();
    const { file, workdir } = writeTestConfig({ server: fake.url, steps: [{ name: "long", run: "echo $$ > step.pid; echo started; sleep 30" }], extra: { kill_grace: "500ms" } });
    const agent = track(startCli(["run", "--config", file], { HOOKRELAY_AGENT_TOKEN: TEST_TOKEN, ...FAST }));
    await eventually("hello", () => fake.latest()?.messages.some((m) => m.type === "hello"));
    fake.latest()!.send(jobMessage("term1"));
    await eventually("the step to start", () => fake.output("term1", "long").includes("started"));
    agent.child.kill("SIGTERM");
    expect(await agent.exited).toBe(0);
    expect(fake.jobEnd("term1")).toEqual({ kind: "job-end", status: "interrupted" });
    expect(groupAlive(Number(readFileSync(join(workdir, "step.pid"), "utf8")))).toBe(false);
    expect(agent.output()).toContain("received SIGTERM: stopping");
  });

  it("on a second SIGTERM kills the step's processes at once, and still reports the job interrupted before exiting", async () => {
    const fake = await fakeWorker();
    // The step and its background child ignore SIGTERM; with a 10-minute grace only SIGKILL ends them in time.
    const { file, workdir } = writeTestConfig({
      server: fake.url,
      steps: [{ name: "stubborn", run: "trap '' TERM; sleep 600 & echo $! > child.pid; echo $$ > step.pid; echo started; wait" }],
      extra: { kill_grace: "10m" },
    });
    const agent = track(startCli(["run", "--config", file], { HOOKRELAY_AGENT_TOKEN: TEST_TOKEN, ...FAST }));
    await eventually("hello", () => fake.latest()?.messages.some((m) => m.type === "hello"));
    fake.latest()!.send(jobMessage("twice1"));
    await eventually("the step to start", () => fake.output("twice1", "stubborn").includes("started"));
    const stepPid = Number(readFileSync(join(workdir, "step.pid"), "utf8"));
    const childPid = Number(readFileSync(join(workdir, "child.pid"), "utf8"));
    cleanups.push(() => {
      for (const pid of [childPid, stepPid]) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    });
    agent.child.kill("SIGTERM");
    // Two signals sent back to back may arrive as one: send the second once the first is handled.
    await eventually("the first SIGTERM to be handled", () => agent.output().includes("received SIGTERM: stopping"));
    agent.child.kill("SIGTERM");
    const code = await eventually("the agent to exit", () => (agent.child.exitCode ?? agent.child.signalCode ?? undefined), 20_000);
    expect(isAlive(stepPid)).toBe(false);
    expect(isAlive(childPid)).toBe(false);
    expect(groupAlive(stepPid)).toBe(false);
    expect(fake.jobEnd("twice1")).toEqual({ kind: "job-end", status: "interrupted" });
    expect(code).toBe(0);
  });

  it("streams 20 MB of output byte-exact under the cap, and caps 260 MB with bounded memory", async () => {
    const fake = await fakeWorker();
    const { file } = writeTestConfig({
      server: fake.url,
      steps: [{ name: "big", run: 'if [ "$HOOKRELAY_BRANCH" = main ]; then seq 1 2700000; else seq 1 8500000; { yes 0123456789 | head -c 200000000; } || true; fi' }],
      extra: { log_cap: "24MiB", heartbeat: "5s" },
    });
    const agent = track(startCli(["run", "--config", file], { HOOKRELAY_AGENT_TOKEN: TEST_TOKEN, ...FAST }));
    await eventually("hello", () => fake.latest()?.messages.some((m) => m.type === "hello"));
    fake.latest()!.send(jobMessage("big1"));
    expect(await eventually("job-end", () => fake.jobEnd("big1"), 60_000)).toMatchObject({ status: "succeeded" });
    const expected = `${Array.from({ length: 2_700_000 }, (_, i) => i + 1).join("\n")}\n`;
    const got = fake.output("big1", "big");
    expect(got.length).toBe(expected.length);
    expect(got === expected).toBe(true);

    fake.latest()!.send(jobMessage("big2", { ref: "refs/heads/x" }));
    expect(await eventually("job-end", () => fake.jobEnd("big2"), 60_000)).toMatchObject({ status: "succeeded" });
    const capped = fake.output("big2", "big");
    const head = 23 * 1024 * 1024; // the cap minus the tail's MiB
    const full = `${Array.from({ length: 8_500_000 }, (_, i) => i + 1).join("\n")}\n`; // 64 MB
    // Job 2 has its own cap: head, marker, last MiB.
    expect(capped.slice(0, head) === full.slice(0, head)).toBe(true);
    const total = 200_000_000;
    const tail = Array.from({ length: 1024 * 1024 }, (_, i) => "0123456789\n"[(total - 1024 * 1024 + i) % 11]).join("");
    expect(capped.slice(-1024 * 1024) === tail).toBe(true);
    expect(capped).toMatch(/\n\[hookrelay\] … \d+ bytes of output omitted \(log cap 24MiB\); the last 1048576 bytes follow …\n/);
    expect(capped.length).toBeLessThan(24 * 1024 * 1024 + 200);
    const rss = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${agent.child.pid}/status`, "utf8"))![1]) * 1024;
    // 280 MB went through the agent; its memory must not have grown with it.
    expect(rss).toBeLessThan(250 * 1024 * 1024);
  });
});
