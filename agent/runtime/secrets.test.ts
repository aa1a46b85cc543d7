import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkHost, secretLooking } from "../commands/check.ts";
import { parseConfig } from "../common/config.ts";
import { loadSecrets, MAX_SECRET_BYTES, secretCredentials } from "./secrets.ts";
import { CONFIG_FILE, MINIMAL_CONFIG, parseValidConfig } from "../../testing/agent-config.ts";
import { testDir } from "../../testing/test-agent.ts";

/** A secret file with the given mode (0600 unless said). */
function secretFile(dir: string, name: string, value: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, value);
  chmodSync(path, mode);
  return path;
}

function configWith(dir: string, top: Record<string, string>, own: Record<string, string> = {}, env: Record<string, string> = {}) {
  const yaml = (o: Record<string, string>) => `{ ${Object.entries(o).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ")} }`;
  return parseValidConfig(`${MINIMAL_CONFIG}    secrets: ${yaml(own)}
    env: ${yaml(env)}
  - name: other
    repo: owner/other
    branches: [main]
    workdir: ${dir}
    steps: [{ name: s, run: "true" }]
secrets: ${yaml(top)}
`);
}

describe("secrets: in the config", () => {
  it("reads top-level and per-pipeline secrets, paths relative to the config's directory", () => {
    const c = parseValidConfig(`${MINIMAL_CONFIG}    secrets: { API_KEY: keys/api }\nsecrets: { DATABASE_URL: /etc/hookrelay/secrets/db }\n`);
    expect(c.secrets).toEqual({ DATABASE_URL: "/etc/hookrelay/secrets/db" });
    expect(c.pipelines[0]!.secrets).toEqual({ API_KEY: "/etc/hookrelay/keys/api" });
  });

  it("names every bad key: a bad name, HOOKRELAY_*, no path, a value in both env and secrets", () => {
    const r = parseConfig(`${MINIMAL_CONFIG}    env: { TOKEN: x, DB: y }
    secrets: { DB: /s/db, "bad-name": /s/x, HOOKRELAY_SHA: /s/y, EMPTY: "" }
secrets: { TOKEN: /s/token, LIST: [a] }
`, CONFIG_FILE);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems).toEqual([
      `${CONFIG_FILE}: secrets.LIST: expected a string, got a list`,
      `${CONFIG_FILE}: pipelines[0].secrets.bad-name: not a valid environment variable name`,
      `${CONFIG_FILE}: pipelines[0].secrets.HOOKRELAY_SHA: HOOKRELAY_* names are set by the agent`,
      `${CONFIG_FILE}: pipelines[0].secrets.EMPTY: expected the path of a file holding the value (the value itself never goes in the config)`,
      `${CONFIG_FILE}: pipelines[0].env.DB: also in secrets: a value is either a secret or not (remove it from env)`,
    ]);
  });
});

describe("loadSecrets", () => {
  it("reads the files, the pipeline's own over the top level, without the final line break", () => {
    const dir = testDir();
    const c = configWith(
      dir,
      { DATABASE_URL: secretFile(dir, "db", "postgres://app:pw-123456@db/app\n"), API_KEY: secretFile(dir, "api", "top-level-key") },
      { API_KEY: secretFile(dir, "api-own", "pipeline-own-key\r\n") },
    );
    const r = loadSecrets(c, {});
    if (!r.ok) throw new Error(r.problems.join("\n"));
    expect(r.secrets.env.get("app")).toEqual({ DATABASE_URL: "postgres://app:pw-123456@db/app", API_KEY: "pipeline-own-key" });
    expect(r.secrets.env.get("other")).toEqual({ DATABASE_URL: "postgres://app:pw-123456@db/app", API_KEY: "top-level-key" });
    // Every value is masked in every pipeline's output, the other pipeline's too.
    expect(r.secrets.masker!.maskText("top-level-key pipeline-own-key postgres://app:pw-123456@db/app")).toBe("*** *** ***");
    expect(r.secrets.described.join("; ")).toBe(`DATABASE_URL from file ${dir}/db; API_KEY from file ${dir}/api; app: API_KEY from file ${dir}/api-own`);
    expect(JSON.stringify(r)).not.toContain("pw-123456@");
  });

  it("refuses a file group or others can read, naming the file, its mode and the fix, never the value", () => {
    const dir = testDir();
    for (const mode of [0o640, 0o604, 0o620]) {
      const c = configWith(dir, { DB_PASSWORD: secretFile(dir, "db", "correct-horse-battery", mode) });
      const r = loadSecrets(c, {});
      expect(r.ok).toBe(false);
      expect(!r.ok && r.problems).toEqual([
        `${CONFIG_FILE}: secrets.DB_PASSWORD: ${dir}/db: group or others have access to it (mode 0${mode.toString(8)}): run chmod 600 ${dir}/db`,
      ]);
    }
    chmodSync(join(dir, "db"), 0o400);
    expect(loadSecrets(configWith(dir, { DB_PASSWORD: join(dir, "db") }), {}).ok).toBe(true);
  });

  it("refuses values shorter than 4 characters, empty, NUL, not UTF-8, too big, missing, a directory, a symlink", () => {
    const dir = testDir();
    mkdirSync(join(dir, "a-dir"));
    symlinkSync(secretFile(dir, "real", "a-long-enough-value"), join(dir, "link"));
    const files: Record<string, string> = {
      SHORT: secretFile(dir, "short", "abc\n"),
      EMPTY: secretFile(dir, "empty", "\n"),
      NUL: secretFile(dir, "nul", "abcd\u0000efgh"),
      BINARY: (() => {
        const p = join(dir, "binary");
        writeFileSync(p, Buffer.from([0xff, 0xfe, 0x41, 0x42, 0x43]), { mode: 0o600 });
        return p;
      })(),
      BIG: secretFile(dir, "big", "x".repeat(MAX_SECRET_BYTES + 1)),
      MISSING: join(dir, "missing"),
      DIR: join(dir, "a-dir"),
      LINK: join(dir, "link"),
    };
    const r = loadSecrets(configWith(dir, files), {});
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems.map((p) => p.replace(`${CONFIG_FILE}: `, ""))).toEqual([
      `secrets.SHORT: ${dir}/short holds 3 character(s): a secret must be at least 4 (masking shorter values would shred the log)`,
      `secrets.EMPTY: ${dir}/empty is empty`,
      `secrets.NUL: ${dir}/nul contains a NUL character (U+0000), which no process environment can hold`,
      `secrets.BINARY: ${dir}/binary: is not UTF-8 text: an environment value must be text (base64 it, and decode it in the step)`,
      `secrets.BIG: ${dir}/big: is ${MAX_SECRET_BYTES + 1} bytes: a secret value is at most ${MAX_SECRET_BYTES}`,
      `secrets.MISSING: ${dir}/missing: cannot read: ENOENT`,
      `secrets.DIR: ${dir}/a-dir: is not a regular file`,
      `secrets.LINK: ${dir}/link: is a symbolic link: name the file itself`,
    ]);
  });

  it("takes a systemd credential first (NAME, or PIPELINE.NAME for a pipeline's own), without a mode check", () => {
    const dir = testDir();
    const creds = join(dir, "credentials");
    mkdirSync(creds);
    secretFile(creds, "DATABASE_URL", "from-the-credential", 0o440);
    secretFile(creds, "app.API_KEY", "own-from-credential", 0o440);
    // The configured file itself is root's (unreadable here): the credential is what counts.
    const c = configWith(dir, { DATABASE_URL: join(dir, "root-only"), OTHER: secretFile(dir, "other", "from-the-file") }, { API_KEY: join(dir, "root-only-2") });
    const r = loadSecrets(c, { CREDENTIALS_DIRECTORY: creds });
    if (!r.ok) throw new Error(r.problems.join("\n"));
    expect(r.secrets.env.get("app")).toEqual({ DATABASE_URL: "from-the-credential", OTHER: "from-the-file", API_KEY: "own-from-credential" });
    expect(r.secrets.described).toContain(`DATABASE_URL from systemd credential ${creds}/DATABASE_URL`);
    // Without the credentials directory, the file is read and its absence named.
    const plain = loadSecrets(c, {});
    expect(!plain.ok && plain.problems[0]).toBe(`${CONFIG_FILE}: secrets.DATABASE_URL: ${dir}/root-only: cannot read: ENOENT`);
  });

  it("warns about the lines of a multi-line value too short to be masked alone", () => {
    const dir = testDir();
    const r = loadSecrets(configWith(dir, { CERT: secretFile(dir, "cert", "-----BEGIN KEY-----\nAAAAbbbbCCCC\nZg\n-----END KEY-----\n") }), {});
    expect(r.ok).toBe(true);
    expect(r.warnings).toEqual([`${CONFIG_FILE}: secrets.CERT: line(s) 3 of ${dir}/cert are shorter than 4 characters: a multi-line value is masked line by line, and those lines are not masked`]);
  });
});

describe("check", () => {
  it("reports a too-open secret file as a problem and lists the secrets by name and source", () => {
    const dir = testDir();
    const state = join(dir, "state");
    const good = configWith(dir, { DATABASE_URL: secretFile(dir, "db", "postgres://a:b@c/d") });
    const config = { ...good, stateDir: state, token: "t".repeat(40), tokenFile: null, pipelines: good.pipelines.map((p) => ({ ...p, workdir: dir })) };
    const report = checkHost(config, {});
    expect(report.problems).toEqual([]);
    expect(report.summary).toContain(`secrets:   DATABASE_URL from file ${dir}/db (masked in every job's output)`);
    chmodSync(join(dir, "db"), 0o644);
    expect(checkHost(config, {}).problems).toEqual([
      `${CONFIG_FILE}: secrets.DATABASE_URL: ${dir}/db: group or others have access to it (mode 0644): run chmod 600 ${dir}/db`,
    ]);
  });

  it("warns when an env value looks like a secret, and suggests secrets:", () => {
    const dir = testDir();
    const c = configWith(dir, {}, {}, { DATABASE_URL: "postgres://app:hunter2@db.internal/app", PATH: "/home/app/venv/bin:/usr/bin:/bin" });
    const report = checkHost({ ...c, stateDir: join(dir, "state"), token: "t".repeat(40), tokenFile: null }, {});
    expect(report.warnings).toContain(
      `${CONFIG_FILE}: pipelines[0].env.DATABASE_URL: the value looks like a URL with a password in it (://user:pass@); env values are stored in the config and not masked in logs: put it in a file (chmod 600) and name it under secrets:`,
    );
    expect(report.warnings.filter((w) => w.includes("env.PATH"))).toEqual([]);
  });

  it("tells secret-looking values from ordinary ones", () => {
    const looks = (name: string, value: string) => secretLooking(name, value);
    expect(looks("DSN", "mysql://root:s3cret@localhost/db")).toMatch(/URL with a password/);
    expect(looks("OPTS", "--user=app --password=hunter22")).toMatch(/password=/);
    expect(looks("KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n")).toMatch(/private key/);
    expect(looks("STRIPE", "sk_live_4eC39HqLyjWDarjtT1zdp7dc")).toMatch(/high-entropy/);
    expect(looks("GH", "ghp_16C7e42F292c6912E7710c838347Ae178B4a")).toMatch(/high-entropy/);
    expect(looks("SESSION_SECRET", "changeme")).toMatch(/name says/);
    for (const [name, value] of [
      ["PATH", "/home/OldManInfo_env/bin:/usr/local/bin:/usr/bin:/bin"],
      ["FLASK_APP", "app.py"],
      ["DATABASE_URL", "sqlite:////home/app/instance/app.db"],
      ["PIP_INDEX_URL", "https://pypi.org/simple"],
      ["LANG", "en_US.UTF-8"],
      ["GUNICORN_CMD_ARGS", "--workers 3 --bind 127.0.0.1:8000 --timeout 30"],
      ["REQUIREMENTS", "requirements-production.txt"],
      ["SECRET_KEY_FILE", ""],
    ] as const) {
      expect([name, looks(name, value)]).toEqual([name, null]);
    }
  });
});

describe("secretCredentials", () => {
  it("names each secret file's systemd credential: NAME, or PIPELINE.NAME for a pipeline's own", () => {
    const c = parseValidConfig(`${MINIMAL_CONFIG}    secrets: { API_KEY: /s/api }\nsecrets: { DATABASE_URL: /s/db }\n`);
    expect(secretCredentials(c)).toEqual([
      { id: "DATABASE_URL", path: "/s/db", comment: "secret DATABASE_URL" },
      { id: "app.API_KEY", path: "/s/api", comment: "secret API_KEY of pipeline app" },
    ]);
  });
});
