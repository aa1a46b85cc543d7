/**
 * `npm run build`: the agent as files to copy to a server.
 * - dist/hookrelay-agent.mjs: one file that runs with plain `node` 18, 20 or 22 and no node_modules
 *   (Debian 12 and Ubuntu 24.04 ship Node 18: `apt install nodejs` is enough).
 * - dist/hookrelay-agent-linux-x64: a single executable (Node's SEA: the CommonJS bundle injected with
 *   postject into a stripped copy of the Node binary that builds it), for servers with no Node. No V8
 *   code cache: it is rejected (a warning at every start) when the unit's --max-semi-space-size differs
 *   from the build's, and compiling 0.5 MB of JS at start costs less than that noise.
 *   Built on linux-x64 only; elsewhere it says so and skips. `--no-sea` skips it too.
 */
import { build, type BuildOptions } from "esbuild";
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("../", import.meta.url).pathname;
const dist = join(root, "dist");
const outfile = join(dist, "hookrelay-agent.mjs");
export const SEA_FILE = join(dist, "hookrelay-agent-linux-x64");
/** The fuse postject flips so the binary runs its blob (Node's documented sentinel). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

const common: BuildOptions = {
  entryPoints: [join(root, "agent/commands/cli.ts")],
  bundle: true,
  platform: "node",
  // ws loads these optional native speed-ups inside try/catch; without them it uses plain JS.
  external: ["bufferutil", "utf-8-validate"],
  legalComments: "none",
  logLevel: "warning",
};

mkdirSync(dist, { recursive: true });
await build({
  ...common,
  outfile,
  target: "node18",
  format: "esm",
  // ws and yaml are CommonJS: give the ESM bundle a `require` for Node's built-ins.
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __hookrelayCreateRequire } from 'node:module';\nconst require = __hookrelayCreateRequire(import.meta.url);" },
});
chmodSync(outfile, 0o755);
console.log(`built ${outfile}`);

if (process.argv.includes("--no-sea")) {
  console.log("single executable: skipped (--no-sea)");
} else if (process.platform !== "linux" || process.arch !== "x64") {
  console.log(`single executable: skipped (built on linux-x64 only; this is ${process.platform}-${process.arch})`);
} else {
  const work = mkdtempSync(join(tmpdir(), "hookrelay-sea-"));
  try {
    // A SEA runs one CommonJS script; __HOOKRELAY_SEA__ tells the agent it is one (for its systemd unit).
    const main = join(work, "agent.cjs");
    await build({ ...common, outfile: main, target: `node${process.versions.node.split(".")[0]}`, format: "cjs", define: { __HOOKRELAY_SEA__: "true" } });
    const blob = join(work, "agent.blob");
    const config = join(work, "sea-config.json");
    writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false }));
    // The blob must be made by the very Node it is injected into: this one.
    execFileSync(process.execPath, ["--experimental-sea-config", config], { stdio: "pipe" });
    rmSync(SEA_FILE, { force: true });
    // Symbols are ~18 MB of the binary and nothing a server needs: stripped when `strip` (binutils) is here.
    let stripped = false;
    try {
      execFileSync("strip", ["-o", SEA_FILE, process.execPath], { stdio: "pipe" });
      stripped = true;
    } catch {
      copyFileSync(process.execPath, SEA_FILE);
    }
    chmodSync(SEA_FILE, 0o755);
    const postject = join(root, "node_modules/postject/dist/cli.js");
    execFileSync(process.execPath, [postject, SEA_FILE, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE], { stdio: "pipe" });
    console.log(`built ${SEA_FILE} (${(statSync(SEA_FILE).size / 1e6).toFixed(0)} MB, Node ${process.versions.node} inside${stripped ? ", stripped" : "; install binutils to strip ~18 MB of symbols"})`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
