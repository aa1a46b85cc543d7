import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { testDir } from "../../testing/test-agent.ts";
import { resolveToken } from "./token.ts";
import { MINIMAL_CONFIG, parseValidConfig } from "../../testing/agent-config.ts";

const minimal = MINIMAL_CONFIG;
const ok = parseValidConfig;

describe("token", () => {
  const dir = testDir();
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "from-file\n");
  chmodSync(tokenFile, 0o600);
  const config = ok(minimal.replace("token_file: token", `token_file: ${tokenFile}`));

  it("takes HOOKRELAY_AGENT_TOKEN over the token file", () => {
    expect(resolveToken(config, { HOOKRELAY_AGENT_TOKEN: "from-env" })).toMatchObject({ ok: true, token: "from-env" });
    expect(resolveToken(config, {})).toMatchObject({ ok: true, token: "from-file", warnings: [] });
  });

  it("reads the systemd credential from $CREDENTIALS_DIRECTORY", () => {
    const creds = join(dir, "creds");
    mkdirSync(creds);
    writeFileSync(join(creds, "agent-token"), "from-credential\n");
    expect(resolveToken(config, { CREDENTIALS_DIRECTORY: creds })).toMatchObject({ ok: true, token: "from-credential" });
  });

  it("warns when the token file is readable by group or others", () => {
    const loose = join(dir, "loose");
    writeFileSync(loose, "t");
    chmodSync(loose, 0o644);
    const r = resolveToken({ ...config, tokenFile: loose }, {});
    expect(r.warnings).toEqual([`token_file ${loose} is readable by group or others (mode 0644); run chmod 600 on it`]);
  });

  it("names a missing token", () => {
    expect(resolveToken({ ...config, tokenFile: null }, {})).toMatchObject({ ok: false, problem: expect.stringMatching(/^no agent token/) });
    expect(resolveToken({ ...config, tokenFile: join(dir, "absent") }, {})).toMatchObject({ ok: false, problem: expect.stringMatching(/cannot read: ENOENT/) });
  });
});
