/**
 * What the mixed-fault soak runs against: the real worker (`wrangler dev`, storage persisted so a
 * SIGKILL and restart keep it), a fake GitHub and a notification receiver it reports to, and four real
 * agents — web-1..3 in a rollout pipeline (`app`, batch 1, halt on failure) and solo-1 alone in its own
 * (`solo`) — each behind its own TCP proxy (partitions and resets), each with its state_dir on a small
 * disk of its own (full disks) and a wall clock that can jump (testing/clock-shim.ts).
 *
 * Every job's `count` step prints numbered lines (`line 1` … `line N`), records each line it wrote in
 * `runs` before printing it, and makes a marker directory per job id (a second run of the same job on a
 * host finds it there and says so in `doubles`). A push fails on purpose on the hosts its FAIL file names.
 */
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import { startAgent, type AgentProcess } from "../../dev/agent-process.ts";
import { waitForAgent } from "../../dev/api.ts";
import { createRepo, type GitRepo } from "../../dev/git-repo.ts";
import { REPO_ROOT, startWorker, TEST_SECRETS, type WorkerProcess } from "../../dev/worker-process.ts";
import { type FakeGitHub, startFakeGitHub } from "../fake-github.ts";
import { killByEnvMarker } from "../liveness.ts";
import { type NotifyReceiver, startNotifyReceiver } from "../notify-receiver.ts";
import { redeliverer, type Redeliverer } from "../redeliver.ts";
import { startTcpProxy, type TcpProxy } from "../tcp-proxy.ts";
import { mountSmallDisk, type SmallDisk } from "./small-disk.ts";

export const TARGET = "soak";
export const REPO = "acme/soak";
export const ROLLOUT_HOSTS = ["web-1", "web-2", "web-3"] as const;
export const SOLO_HOST = "solo-1";
export const LINES = 20;
export const FULL_LOG = Array.from({ length: LINES }, (_, i) => `line ${i + 1}\n`).join("");
export const STALE_SECONDS = 3;
export const HEARTBEAT_MS = 1000;
const MARK = "HOOKRELAY_SOAK_MARK";
const GITHUB_TOKEN = "soak-github-token";

export interface SoakHost {
  readonly name: string;
  readonly pipeline: "app" | "solo";
  readonly proxy: TcpProxy;
  readonly agent: AgentProcess;
  /** Its state_dir's own small filesystem; null when this machine cannot mount one. */
  readonly disk: SmallDisk | null;
  /** Write a millisecond offset here to move its wall clock. */
  readonly clockFile: string;
  /** Whether its agent process is meant to be up (false between a kill and its restart). */
  up: boolean;
  /** Whether a partition cuts it off now (it is then not expected to be connected). */
  cutOff: boolean;
  /** A fault still running alongside the others on this host (a long partition), until it is waited out. */
  lane: Promise<unknown> | null;
  /** SIGKILL the agent and every step it started (a power loss). */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export interface SoakWorld {
  readonly dir: string;
  readonly repo: GitRepo;
  readonly worker: WorkerProcess;
  workerUp: boolean;
  /** When the worker last came up (its start, or its latest restart): it cannot notice anything while down. */
  workerUpAt: number;
  /** While true the traffic sends nothing (an `evict` fault lets the object fall idle). */
  quiet: boolean;
  /** Set by the traffic once it has seen `quiet` and sends nothing more (its push under way is answered). */
  trafficStill: boolean;
  readonly github: FakeGitHub;
  readonly receiver: NotifyReceiver;
  readonly hosts: SoakHost[];
  readonly sender: Redeliverer;
  /** `<job id> start` and `<job id> <line>` lines, written by the steps. */
  readonly runsFile: string;
  /** Job ids whose marker already existed when their step started (a job run twice on a host). */
  readonly doublesFile: string;
  /** Why the full-disk fault cannot be produced here, or null. */
  readonly diskUnavailable: string | null;
  /** Output of every process that has exited (for a failure's story). */
  readonly outputs: string[];
  note(line: string): void;
  /** Stops every process it started (and waits for a start under way), unmounts the small disks; nothing starts after it. */
  stop(): Promise<void>;
}

function countStep(runs: string, marks: string, doubles: string, origin: string, host: string): string {
  return [
    `mkdir "${marks}/$HOOKRELAY_JOB_ID" 2>/dev/null || echo "$HOOKRELAY_JOB_ID ${host}" >> ${doubles}`,
    `echo "$HOOKRELAY_JOB_ID start" >> ${runs}`,
    `for i in $(seq 1 ${LINES}); do echo "$HOOKRELAY_JOB_ID $i" >> ${runs}; echo "line $i"; sleep 0.05; done`,
    `if git --git-dir=${origin} show "$HOOKRELAY_SHA:FAIL" 2>/dev/null | grep -qx ${host}; then exit 3; fi`,
  ].join("; ");
}

export async function startSoakWorld(dir: string, opts: { diskMb?: number } = {}): Promise<SoakWorld> {
  const runsFile = join(dir, "runs");
  const doublesFile = join(dir, "doubles");
  writeFileSync(runsFile, "");
  writeFileSync(doublesFile, "");
  const mark = randomUUID();
  const outputs: string[] = [];
  const note = (line: string) => appendFileSync(join(dir, "soak.log"), `${new Date().toISOString()} ${line}\n`);
  const repo = createRepo({ VERSION: "0\n", FAIL: "\n" });
  const github = await startFakeGitHub({ tokens: [GITHUB_TOKEN] });
  const notifySecret = `whsec_${randomBytes(32).toString("base64")}`;
  const receiver = await startNotifyReceiver({ secret: notifySecret });
  const worker = await startWorker({
    persistTo: join(dir, "worker-state"),
    // Its own lines (a socket closed as silent, a job ended interrupted) and a line each time the object
    // is built go to processes.log: what a finding is traced with afterwards.
    vars: { AGENT_STALE_SECONDS: String(STALE_SECONDS), REPORT_RETRY_SECONDS: "1", GITHUB_API_URL: github.url, PUBLIC_URL: "https://hookrelay.soak.test", TRACE_DO_ENTRIES: "constructed" },
    secrets: { GITHUB_TOKEN, NOTIFY_URLS: receiver.standardUrl(), NOTIFY_SECRET: notifySecret },
    logLevel: "log",
  });

  // Once stopping began (the end, or ^C) nothing is started again, and a start under way is waited for
  // before the kill: the soak's processes are detached (a group each), so one started after the kill
  // would outlive the soak.
  let stopped = false;
  const starting = new Set<Promise<void>>();
  const guarded = async (start: () => Promise<void>): Promise<void> => {
    if (stopped) return;
    const p = start();
    starting.add(p);
    try {
      await p;
    } finally {
      starting.delete(p);
    }
  };
  const restartWorker = worker.restart.bind(worker);
  worker.restart = () => guarded(restartWorker);

  let diskUnavailable: string | null = null;
  const hosts: SoakHost[] = [];
  for (const name of [...ROLLOUT_HOSTS, SOLO_HOST]) {
    const pipeline = name === SOLO_HOST ? "solo" : "app";
    const proxy = await startTcpProxy(worker.port);
    const mounted: { disk: SmallDisk | null; why?: string } = diskUnavailable === null ? mountSmallDisk(join(dir, `disk-${name}`), opts.diskMb ?? 16) : { disk: null, why: diskUnavailable };
    if (!mounted.disk) diskUnavailable = mounted.why ?? "no small disk";
    const stateDir = join(mounted.disk?.dir ?? join(dir, `disk-${name}`), "state");
    const marks = join(dir, "marks", name);
    mkdirSync(marks, { recursive: true });
    const clockFile = join(dir, `clock-${name}`);
    writeFileSync(clockFile, "0\n");
    const agent = await startAgent({
      server: proxy.url,
      target: TARGET,
      name,
      stateDir,
      extra: { heartbeat: `${HEARTBEAT_MS}ms`, kill_grace: "1s" },
      env: { [MARK]: `${mark}-${name}`, HOOKRELAY_RECONNECT_MAX_MS: "1000", HOOKRELAY_TEST_CLOCK_FILE: clockFile },
      command: [process.execPath, "--import", join(REPO_ROOT, "testing/clock-shim.ts"), join(REPO_ROOT, "agent/commands/cli.ts")],
      pipelines: [
        {
          name: pipeline,
          repo: REPO,
          branches: ["main"],
          workdir: repo.live,
          timeout: "2m",
          ...(pipeline === "app" ? { rollout: { batch: 1, halt_on_failure: true } } : {}),
          steps: [
            { name: "verify", run: `git --git-dir=${repo.origin} cat-file -e "$HOOKRELAY_SHA^{commit}"` },
            { name: "count", run: countStep(runsFile, marks, doublesFile, repo.origin, name) },
            // A step after the long one: a job deadline read off a jumped wall clock would end the job here.
            { name: "after", run: "true" },
          ],
        },
      ],
    });
    const host: SoakHost = {
      name,
      pipeline,
      proxy,
      agent,
      disk: mounted.disk,
      clockFile,
      up: true,
      cutOff: false,
      lane: null,
      async kill() {
        host.up = false;
        outputs.push(`--- agent ${name} pid ${agent.process.pid}\n${agent.process.output()}`);
        await agent.process.stop("SIGKILL");
        killByEnvMarker(MARK, `${mark}-${name}`); // its steps, in their own process groups
      },
      async start() {
        await guarded(async () => {
          await agent.restart("SIGKILL");
          host.up = true;
        });
      },
    };
    hosts.push(host);
  }
  for (const h of hosts) await waitForAgent(worker.url, TARGET, h.name, 60_000);
  const sender = redeliverer({ url: () => worker.url, target: TARGET, secret: TEST_SECRETS.GITHUB_WEBHOOK_SECRET });

  const world: SoakWorld = {
    dir,
    repo,
    worker,
    workerUp: true,
    workerUpAt: Date.now(),
    quiet: false,
    trafficStill: false,
    github,
    receiver,
    hosts,
    sender,
    runsFile,
    doublesFile,
    diskUnavailable,
    outputs,
    note,
    async stop() {
      stopped = true;
      await Promise.allSettled([...starting]);
      for (const h of hosts) {
        await h.agent.stop("SIGKILL").catch(() => undefined);
        killByEnvMarker(MARK, `${mark}-${h.name}`);
        await h.proxy.close().catch(() => undefined);
        h.disk?.unmount();
      }
      await worker.stop("SIGKILL").catch(() => undefined);
      await github.close().catch(() => undefined);
      await receiver.close().catch(() => undefined);
    },
  };
  return world;
}
