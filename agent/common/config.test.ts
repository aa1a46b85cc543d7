import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeEnvironmentKind, checkHost } from "../commands/check.ts";
import { loadConfig, parseConfig } from "./config.ts";
import { CONFIG_FILE, MINIMAL_CONFIG, parseValidConfig } from "../../testing/agent-config.ts";

const FILE = CONFIG_FILE;
const minimal = MINIMAL_CONFIG;
const ok = parseValidConfig;

function problems(text: string): string[] {
  const r = parseConfig(text, FILE);
  return r.ok ? [] : r.problems;
}

describe("config", () => {
  it("refuses what the worker would refuse in hello: 51 pipelines, 51 branch globs, 101 steps", () => {
    const pipe = (name: string, branches: string[], steps: number, onFailure = 0) =>
      `  - name: ${name}\n    repo: owner/app\n    branches: [${branches.join(", ")}]\n    workdir: /srv/app\n    steps:\n` +
      Array.from({ length: steps }, (_, i) => `      - { name: s${i}, run: "true" }\n`).join("") +
      (onFailure > 0 ? "    on_failure:\n" + Array.from({ length: onFailure }, (_, i) => `      - { name: f${i}, run: "true" }\n`).join("") : "");
    const head = "server: wss://relay.example.workers.dev/\nstate_dir: /var/lib/hookrelay\ntoken_file: token\npipelines:\n";
    const many = (n: number) => Array.from({ length: n }, (_, i) => `b${i}`);
    expect(problems(head + Array.from({ length: 51 }, (_, i) => pipe(`p${i}`, ["main"], 1)).join(""))).toEqual([`${FILE}: pipelines: more than 50 items`]);
    expect(problems(head + pipe("app", many(51), 1))).toEqual([`${FILE}: pipelines[0].branches: more than 50 items`]);
    expect(problems(head + pipe("app", ["main"], 60, 41))).toEqual([`${FILE}: pipelines[0]: 101 steps (steps and on_failure together): at most 100`]);
    expect(problems(head + Array.from({ length: 50 }, (_, i) => pipe(`p${i}`, many(50), 50, 50)).join(""))).toEqual([]);
  });

  it("refuses a pipeline timeout longer than the worker takes (24h), naming the key", () => {
    const withTimeout = (t: string) => minimal.replace("pipelines:\n  - name: app\n", `pipelines:\n  - name: app\n    timeout: ${t}\n`);
    expect(withTimeout("1m")).not.toBe(minimal);
    expect(problems(withTimeout("25h"))).toEqual([`${FILE}: pipelines[0].timeout: 25h is longer than a pipeline may run: at most 24h (the worker refuses a longer timeout)`]);
    expect(problems(withTimeout("24h"))).toEqual([]);
  });

  it("fills in the defaults", () => {
    const c = ok(minimal);
    expect(c).toMatchObject({
      file: FILE,
      server: "wss://relay.example.workers.dev",
      target: "default",
      tokenFile: "/etc/hookrelay/token",
      token: null,
      stateDir: "/var/lib/hookrelay",
      heartbeatMs: 30_000,
      killGraceMs: 10_000,
      logCapBytes: 8 * 1024 * 1024,
    });
    expect(c.name).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
    expect(c.pipelines[0]).toEqual({
      name: "app", repo: "owner/app", events: ["push"], branches: ["main"], workdir: "/srv/app", env: {},
      timeoutMs: 30 * 60_000, steps: [{ name: "fetch", run: "git fetch", timeoutMs: null }], onFailure: [],
      rollout: { batch: 1, haltOnFailure: true }, environment: null, environmentUrl: null, productionEnvironment: null, transientEnvironment: null, secrets: {},
      tags: [], paths: null, pathsIgnore: null, waitFor: null,
    });
  });

  it("reads durations, sizes, env and on_failure", () => {
    const c = ok(`${minimal}
    env: { PATH: /venv/bin, RETRIES: 3 }
    timeout: 15m
    on_failure:
      - { name: rollback, run: git reset, timeout: 90s }
heartbeat: 500ms
kill_grace: 2s
log_cap: 1MiB
`);
    expect(c).toMatchObject({ heartbeatMs: 500, killGraceMs: 2000, logCapBytes: 1024 * 1024 });
    expect(c.pipelines[0]).toMatchObject({ env: { PATH: "/venv/bin", RETRIES: "3" }, timeoutMs: 900_000, onFailure: [{ name: "rollback", run: "git reset", timeoutMs: 90_000 }] });
  });

  it("names the file, the key path and why for every problem at once", () => {
    const found = problems(`
server: http://relay.example
state_dir: /var/lib/hookrelay
heartbeat: soon
colour: blue
pipelines:
  - name: app
    repo: app
    events: [push, pull_request]
    workdir: relative/dir
    stepz: []
    steps:
      - { name: fetch, run: git fetch }
      - { name: fetch, run: "" }
      - { name: build }
    on_failure:
      - { name: fetch, run: x, timeout: 5 minutes }
`);
    expect(found).toEqual(
      expect.arrayContaining([
        `${FILE}: colour: unknown key; allowed: server, target, name, token_file, token, state_dir, heartbeat, kill_grace, log_cap, secrets, pipelines`,
        `${FILE}: server: must start with ws:// or wss://`,
        `${FILE}: heartbeat: expected a duration like 500ms, 10s, 15m or 1h, got "soon"`,
        expect.stringMatching(/^\/etc\/hookrelay\/agent.yml: pipelines\[0\]\.stepz: unknown key \(did you mean steps\?\)/),
        `${FILE}: pipelines[0].repo: must be owner/name (the repository's full_name)`,
        `${FILE}: pipelines[0].events[1]: unsupported event "pull_request": only push is supported for now`,
        `${FILE}: pipelines[0].branches: required for push: a list of branch globs, e.g. [main] (or leave it out and list tags to deploy tag pushes only)`,
        `${FILE}: pipelines[0].workdir: must be an absolute path`,
        `${FILE}: pipelines[0].steps[1].run: must not be empty`,
        `${FILE}: pipelines[0].steps[2].run: expected a string, got nothing`,
        expect.stringMatching(/^\/etc\/hookrelay\/agent.yml: pipelines\[0\]\.on_failure\[0\]\.timeout: expected a duration/),
      ]),
    );
    expect(found.length).toBeGreaterThanOrEqual(11);
  });

  it("names the branches entry and why for an invalid filter pattern or a list of only ! patterns", () => {
    const withBranches = (list: string) => minimal.replace("branches: [main]", `branches: ${list}`);
    expect(problems(withBranches(`[main, "release/[0-9", "v*?", "!refs/heads/x"]`))).toEqual([
      `${FILE}: pipelines[0].branches[1]: unclosed [ at character 9`,
      `${FILE}: pipelines[0].branches[2]: ? at character 3 must follow a character or [...] (write \\? for a literal ?)`,
      `${FILE}: pipelines[0].branches[3]: must be a branch name or glob without refs/heads/, e.g. main or release/*`,
    ]);
    expect(problems(withBranches(`["!main", "!dev"]`))).toEqual([
      `${FILE}: pipelines[0].branches: needs at least one pattern without a leading ! (a list of only ! patterns selects nothing)`,
    ]);
    expect(ok(withBranches(`["releases/**", "!releases/**-alpha", 'v[12].[0-9]+']`)).pipelines[0]?.branches).toEqual(["releases/**", "!releases/**-alpha", "v[12].[0-9]+"]);
  });

  it("refuses env values no process environment can hold, and unusable env names, naming each", () => {
    const found = problems(`${minimal}
    env:
      NUL: "a\\0b"
      ESC: "red \\e[31m"
      HALF: "\\uD800"
      HUGE: "${"x".repeat(40 * 1024)}"
      PEM: "-----BEGIN-----\\n\\tline\\n-----END-----\\n"
      BAD-NAME: x
      ${"N".repeat(300)}: x
      HOOKRELAY_SHA: x
`);
    expect(found).toEqual([
      `${FILE}: pipelines[0].env.NUL: contains a NUL character (U+0000), which no process environment can hold`,
      `${FILE}: pipelines[0].env.ESC: contains the control character U+001B`,
      `${FILE}: pipelines[0].env.HALF: contains an unpaired surrogate (U+D800): not valid Unicode text`,
      `${FILE}: pipelines[0].env.HUGE: is 40960 bytes long, more than the 32768 allowed`,
      `${FILE}: pipelines[0].env.BAD-NAME: not a valid environment variable name`,
      `${FILE}: pipelines[0].env.${"N".repeat(300)}: not a valid environment variable name (at most 255 characters)`,
      `${FILE}: pipelines[0].env.HOOKRELAY_SHA: HOOKRELAY_* names are set by the agent`,
    ]);
  });

  it("reads rollout: a batch of hosts or a percentage, halt_on_failure; either may be left out", () => {
    const rollout = (yaml: string) => ok(`${minimal}    rollout: ${yaml}\n`).pipelines[0]!.rollout;
    expect(rollout('{ batch: "50%", halt_on_failure: false }')).toEqual({ batch: "50%", haltOnFailure: false });
    expect(rollout("{ batch: 50% }")).toEqual({ batch: "50%", haltOnFailure: true });
    expect(rollout("{ batch: 2 }")).toEqual({ batch: 2, haltOnFailure: true });
    expect(rollout("{ halt_on_failure: false }")).toEqual({ batch: 1, haltOnFailure: false });
    expect(rollout("{}")).toEqual({ batch: 1, haltOnFailure: true });
  });

  it("reads GitHub's environment and its URL; refuses a name GitHub would not take and a URL that is not https", () => {
    const c = ok(`${minimal}    environment: production\n    environment_url: https://app.example.com/\n`);
    expect(c.pipelines[0]).toMatchObject({ environment: "production", environmentUrl: "https://app.example.com/" });
    expect(problems(`${minimal}    environment: "a,b"\n`)).toEqual([`${FILE}: pipelines[0].environment: must be 1-255 characters, no control characters or commas`]);
    for (const url of ["javascript:alert(1)", "http://app.example.com/"]) {
      expect(problems(`${minimal}    environment_url: ${url}\n`)).toEqual([
        `${FILE}: pipelines[0].environment_url: must be an https:// URL of at most 2000 characters, without spaces`,
      ]);
    }
  });

  it("reads production_environment and transient_environment (unset: null, GitHub's default); check prints what GitHub is told", () => {
    expect(ok(minimal).pipelines[0]).toMatchObject({ productionEnvironment: null, transientEnvironment: null });
    const c = ok(`${minimal}    environment: review-7\n    production_environment: false\n    transient_environment: true\n`);
    expect(c.pipelines[0]).toMatchObject({ environment: "review-7", productionEnvironment: false, transientEnvironment: true });
    expect(problems(`${minimal}    production_environment: "yes"\n`)).toEqual([`${FILE}: pipelines[0].production_environment: expected true or false, got a string ("yes")`]);
    const kind = (yaml: string) => describeEnvironmentKind(ok(`${minimal}${yaml}`).pipelines[0]!, "default");
    expect(kind("    environment: Production\n")).toBe("production (the default for its name), not transient");
    expect(kind("    environment: PROD\n")).toBe("production (the default for its name), not transient");
    expect(kind("    environment: staging\n")).toBe("not production (the default for its name), not transient");
    expect(kind("")).toBe("not production (the default for its name), not transient");
    expect(kind("    environment: staging\n    production_environment: true\n    transient_environment: true\n")).toBe("production, transient");
    expect(describeEnvironmentKind(ok(minimal).pipelines[0]!, "prod")).toBe("production (the default for its name), not transient");
    expect(checkHost(ok(`${minimal}    environment: staging\n`), {}).summary).toContain("  GitHub:     environment staging; not production (the default for its name), not transient");
  });

  it("names the key and why for a bad rollout, a typo in it included", () => {
    const rollout = (yaml: string) => problems(`${minimal}    rollout: ${yaml}\n`);
    expect(rollout("{ batch: 0 }")).toEqual([`${FILE}: pipelines[0].rollout.batch: must be a whole number of hosts from 1 to 100, or "N%"`]);
    expect(rollout("{ batch: 101 }")).toEqual([`${FILE}: pipelines[0].rollout.batch: must be a whole number of hosts from 1 to 100, or "N%"`]);
    expect(rollout("{ batch: 1.5 }")).toEqual([`${FILE}: pipelines[0].rollout.batch: must be a whole number of hosts from 1 to 100, or "N%"`]);
    expect(rollout('{ batch: "0%" }')).toEqual([`${FILE}: pipelines[0].rollout.batch: must be "N%" with N from 1 to 100 (like "50%"), or a whole number of hosts`]);
    expect(rollout('{ batch: "150%" }')).toEqual([`${FILE}: pipelines[0].rollout.batch: must be "N%" with N from 1 to 100 (like "50%"), or a whole number of hosts`]);
    expect(rollout("{ batch: [1] }")).toEqual([`${FILE}: pipelines[0].rollout.batch: must be a number of hosts (like 1) or a percentage (like "50%")`]);
    expect(rollout('{ halt_on_failure: "yes" }')).toEqual([`${FILE}: pipelines[0].rollout.halt_on_failure: expected true or false, got a string ("yes")`]);
    expect(rollout("{ halt_on_failur: true, batch: 2 }")).toEqual([
      `${FILE}: pipelines[0].rollout.halt_on_failur: unknown key (did you mean halt_on_failure?); allowed: batch, halt_on_failure`,
    ]);
    expect(rollout("{ serial: 2 }")).toEqual([`${FILE}: pipelines[0].rollout.serial: unknown key; allowed: batch, halt_on_failure`]);
    expect(rollout("2")).toEqual([`${FILE}: pipelines[0].rollout: expected a mapping like { batch: 1, halt_on_failure: true } (or "50%" as the batch)`]);
    expect(rollout("")).toEqual([`${FILE}: pipelines[0].rollout: expected a mapping like { batch: 1, halt_on_failure: true } (or "50%" as the batch)`]);
    // every problem at once, beside the pipeline's others
    expect(rollout('{ batch: "half", halt_on_failure: 1 }')).toEqual([
      `${FILE}: pipelines[0].rollout.batch: must be "N%" with N from 1 to 100 (like "50%"), or a whole number of hosts`,
      `${FILE}: pipelines[0].rollout.halt_on_failure: expected true or false, got number 1`,
    ]);
    expect(problems(`${minimal}    rollut: { batch: 2 }\n`)).toEqual([expect.stringMatching(/^\/etc\/hookrelay\/agent.yml: pipelines\[0\]\.rollut: unknown key \(did you mean rollout\?\)/)]);
  });

  describe("gates: tags, paths, paths_ignore, wait_for", () => {
    const gates = (yaml: string) => ok(`${minimal}${yaml}`).pipelines[0]!;
    const refused = (yaml: string) => problems(`${minimal}${yaml}`);

    it("reads them, with wait_for's defaults (nothing but what is named, a 2h timeout)", () => {
      const p = gates(`    tags: ["v*", "!v0.*"]\n    paths: ["app/**", requirements.txt, "!app/**/*.md"]\n    wait_for:\n      workflows: [CI]\n      checks: [lint, test (3.12)]\n      approval: true\n      timeout: 90m\n`);
      expect(p).toMatchObject({
        tags: ["v*", "!v0.*"], paths: ["app/**", "requirements.txt", "!app/**/*.md"], pathsIgnore: null,
        waitFor: { workflows: ["CI"], checks: ["lint", "test (3.12)"], approval: true, timeoutMs: 90 * 60_000 },
      });
      expect(gates("    paths_ignore: [docs/**, \"*.md\"]\n")).toMatchObject({ paths: null, pathsIgnore: ["docs/**", "*.md"] });
      expect(gates("    wait_for: { workflows: [CI] }\n").waitFor).toEqual({ workflows: ["CI"], checks: [], approval: false, timeoutMs: 2 * 60 * 60_000 });
      expect(gates("    wait_for: { approval: true }\n").waitFor).toEqual({ workflows: [], checks: [], approval: true, timeoutMs: 2 * 60 * 60_000 });
    });

    it("lets a pipeline leave branches out when it lists tags (tag pushes only)", () => {
      const tagOnly = minimal.replace("    branches: [main]\n", "    tags: [v*]\n");
      expect(tagOnly).not.toBe(minimal);
      expect(ok(tagOnly).pipelines[0]).toMatchObject({ branches: [], tags: ["v*"] });
      expect(problems(minimal.replace("    branches: [main]\n", ""))).toEqual([
        `${FILE}: pipelines[0].branches: required for push: a list of branch globs, e.g. [main] (or leave it out and list tags to deploy tag pushes only)`,
      ]);
    });

    it("names the entry and why for a bad glob, a refs/ prefix, a rooted path, only ! patterns, an empty list", () => {
      expect(refused(`    tags: ["refs/tags/v1", "v[0-9", "!v0*"]\n`)).toEqual([
        `${FILE}: pipelines[0].tags[0]: must be a tag name or glob without refs/tags/, e.g. v* or v[0-9]+.[0-9]+.[0-9]+`,
        `${FILE}: pipelines[0].tags[1]: unclosed [ at character 2`,
      ]);
      expect(refused(`    tags: ["!v0*"]\n`)).toEqual([`${FILE}: pipelines[0].tags: needs at least one pattern without a leading ! (a list of only ! patterns selects nothing)`]);
      expect(refused(`    paths: ["/app/**", "./lib/*", "x+?", ""]\n`)).toEqual([
        `${FILE}: pipelines[0].paths[0]: paths are relative to the repository's root: write app/**, not /app/** or ./app/**`,
        `${FILE}: pipelines[0].paths[1]: paths are relative to the repository's root: write app/**, not /app/** or ./app/**`,
        `${FILE}: pipelines[0].paths[2]: ? at character 3 must follow a character or [...] (write \\? for a literal ?)`,
        `${FILE}: pipelines[0].paths[3]: must be a path or glob from the repository's root, e.g. app/** or requirements.txt`,
      ]);
      expect(refused("    paths_ignore: []\n")).toEqual([`${FILE}: pipelines[0].paths_ignore: must list at least one glob (leave the key out for none)`]);
      expect(refused("    tags: v*\n")).toEqual([`${FILE}: pipelines[0].tags: expected a list, got a string ("v*")`]);
    });

    it("refuses paths and paths_ignore together, as GitHub Actions does", () => {
      expect(refused("    paths: [app/**]\n    paths_ignore: [docs/**]\n")).toEqual([
        `${FILE}: pipelines[0].paths_ignore: paths and paths_ignore together: GitHub Actions refuses both for one event, and so does hookrelay; use paths with ! patterns to leave files out (e.g. [app/**, "!app/**/*.md"])`,
      ]);
    });

    it("bounds every list and the timeout, naming the key", () => {
      const list = (n: number, f: (i: number) => string) => `[${Array.from({ length: n }, (_, i) => JSON.stringify(f(i))).join(", ")}]`;
      expect(refused(`    tags: ${list(51, (i) => `v${i}`)}\n`)).toEqual([`${FILE}: pipelines[0].tags: more than 50 items`]);
      expect(refused(`    paths: ${list(51, (i) => `d${i}/**`)}\n`)).toEqual([`${FILE}: pipelines[0].paths: more than 50 items`]);
      expect(refused(`    paths: ${list(50, (i) => `d${i}/**`)}\n`)).toEqual([]);
      expect(refused(`    paths: ["${"a".repeat(256)}"]\n`)).toEqual([`${FILE}: pipelines[0].paths[0]: longer than 255 characters`]);
      expect(refused(`    wait_for: { checks: ${list(21, (i) => `c${i}`)} }\n`)).toEqual([`${FILE}: pipelines[0].wait_for.checks: more than 20 items`]);
      expect(refused(`    wait_for: { checks: ${list(20, (i) => `c${i}`)} }\n`)).toEqual([]);
      expect(refused(`    wait_for: { workflows: ["${"w".repeat(256)}"] }\n`)).toEqual([
        `${FILE}: pipelines[0].wait_for.workflows[0]: must be a workflow's or check run's name as GitHub shows it: 1-255 characters, not blank, no control characters`,
      ]);
      expect(refused("    wait_for: { approval: true, timeout: 8d }\n")).toEqual([`${FILE}: pipelines[0].wait_for.timeout: expected a duration like 500ms, 10s, 15m or 1h, got "8d"`]);
      expect(refused("    wait_for: { approval: true, timeout: 169h }\n")).toEqual([`${FILE}: pipelines[0].wait_for.timeout: 169h is longer than a deployment may wait: at most 168h`]);
      expect(refused("    wait_for: { approval: true, timeout: 168h }\n")).toEqual([]);
    });

    it("names every wait_for problem at once: unknown key, blank or repeated name, a non-boolean approval", () => {
      expect(refused(`    wait_for:\n      workflow: [CI]\n      checks: [lint, "  ", lint, 3]\n      approval: "yes"\n`)).toEqual([
        `${FILE}: pipelines[0].wait_for.workflow: unknown key (did you mean workflows?); allowed: workflows, checks, approval, timeout`,
        `${FILE}: pipelines[0].wait_for.checks[1]: must be a workflow's or check run's name as GitHub shows it: 1-255 characters, not blank, no control characters`,
        `${FILE}: pipelines[0].wait_for.approval: expected true or false, got a string ("yes")`,
      ]);
      expect(refused(`    wait_for: { checks: [lint, lint] }\n`)).toEqual([`${FILE}: pipelines[0].wait_for.checks[1]: "lint" is listed twice`]);
      expect(refused(`    wait_for: { checks: [3] }\n`)).toEqual([`${FILE}: pipelines[0].wait_for.checks[0]: expected a string, got number 3`]);
    });

    it("refuses a wait_for that waits for nothing, and one that is not a mapping", () => {
      expect(refused("    wait_for: { approval: false, timeout: 1h }\n")).toEqual([
        `${FILE}: pipelines[0].wait_for: waits for nothing: name workflows (GitHub Actions workflow names), checks (check run names) or set approval: true; or leave wait_for out`,
      ]);
      expect(refused("    wait_for: [CI]\n")).toEqual([`${FILE}: pipelines[0].wait_for: expected a mapping like { workflows: [CI], checks: [lint], approval: true, timeout: 2h }`]);
    });

    it("check prints each pipeline's gates", () => {
      const c = ok(`${minimal}    tags: [v*]\n    paths_ignore: [docs/**]\n    wait_for: { workflows: [CI], checks: [lint, "test (3.12)"], approval: true }\n`);
      const report = checkHost(c, {});
      expect(report.summary).toEqual(expect.arrayContaining([
        "  tags:       v* (HOOKRELAY_TAG is the tag, HOOKRELAY_BRANCH empty)",
        "  paths_ignore: docs/** (deploys only when a pushed commit changed a file outside these)",
        '  wait_for:   workflows "CI"; checks "lint", "test (3.12)"; approval; at most 2h, then blocked',
      ]));
      expect(report.warnings).toContain(`${FILE}: pipelines[0].wait_for: the repository's GitHub webhook must send workflow_run and check_run events (besides push), or every deployment waits until its timeout and ends blocked`);
      const plain = checkHost(ok(minimal), {});
      expect(plain.summary.filter((l) => /^ {2}(tags|paths|paths_ignore|wait_for):/.test(l))).toEqual([]);
      expect(plain.warnings.filter((w) => w.includes("wait_for"))).toEqual([]);
      expect(checkHost(ok(minimal.replace("    branches: [main]\n", "    tags: [v*]\n")), {}).summary).toContain(`pipeline app: owner/app, push to no branch (tags only); workdir /srv/app; timeout 30m`);
    });
  });

  it("refuses a step command with a NUL character (no command line can hold one)", () => {
    expect(problems(minimal.replace("run: git fetch", 'run: "git fetch\\0"'))).toEqual([`${FILE}: pipelines[0].steps[0].run: contains a NUL character (U+0000), which no command line can hold`]);
  });

  it("rejects step names used twice across steps and on_failure", () => {
    expect(problems(`${minimal}
    on_failure:
      - { name: fetch, run: git reset }
`)).toEqual([`${FILE}: pipelines[0].on_failure[0].name: duplicate step name "fetch" (names are unique across steps and on_failure)`]);
  });

  it("requires at least one step and one pipeline", () => {
    expect(problems("server: ws://x\nstate_dir: /s\npipelines: []\n")).toEqual([`${FILE}: pipelines: at least one pipeline is required`]);
    expect(problems(minimal.replace("      - { name: fetch, run: git fetch }", "").replace("steps:", "steps: []"))).toEqual([`${FILE}: pipelines[0].steps: at least one step is required`]);
  });

  it("reports YAML syntax errors with a line and an unreadable file by name", () => {
    expect(problems("server: [unclosed\n")[0]).toMatch(/^\/etc\/hookrelay\/agent.yml: line \d+: /);
    expect(loadConfig("/nonexistent/agent.yml")).toEqual({ ok: false, problems: ["/nonexistent/agent.yml: cannot read: ENOENT"] });
  });
});
