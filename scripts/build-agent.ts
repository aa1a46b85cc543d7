/**
 * `npm run build`: the agent as files to copy to a server.
 * - dist/hookrelay-agent.mjs: one file that runs with plain `node` 18, 20 or 22 and no node_modules
 *   (Debian 12 and Ubuntu 24.04 ship Node 18: `apt install nodejs` is enough). The same bytes, with their
 *   SHA-256, are the worker's static assets (AGENT_ASSET_DIR): `GET /agent/hookrelay-agent.mjs` and
 *   `/agent/hookrelay-agent.mjs.sha256` serve the bundle the worker was built with. wrangler.toml's
 *   [build] runs this script with --no-sea before every `wrangler dev` and `wrangler deploy`; a file is
 *   rewritten only when its bytes change (atomically), so a running `wrangler dev` sees no change.
 * - dist/hookrelay-agent-linux-x64 and dist/hookrelay-agent-linux-arm64: single executables (Node's SEA:
 *   the CommonJS bundle injected with postject into a stripped copy of a Node binary), for servers with
 *   no Node. One blob, made by the Node that builds it, goes into both: this machine's own Node for its
 *   architecture, and for the other one npm's build of the same Node version (the `node-linux-<arch>`
 *   package, fetched with `npm pack` once and cached in node_modules/.cache/hookrelay-node/). No V8 code
 *   cache: it is rejected (a warning at every start) when the unit's --max-semi-space-size differs from
 *   the build's, and compiling 0.5 MB of JS at start costs less than that noise.
 *   Built on linux (x64 or arm64) only; elsewhere it says so and skips. `--no-sea` skips both,
 *   `--no-arm64` (or `--no-x64`) only that one: on an x64 machine no npm registry is needed then.
 */
import { build, type BuildOptions } from "esbuild";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";

const root = new URL("../", import.meta.url).pathname;
const dist = join(root, "dist");
const outfile = join(dist, "hookrelay-agent.mjs");
/** The worker's static assets (wrangler.toml [assets] directory) hold the bundle under agent/. */
export const AGENT_ASSET_DIR = join(root, "worker/dashboard/client/agent");
export const SEA_FILES = { x64: join(dist, "hookrelay-agent-linux-x64"), arm64: join(dist, "hookrelay-agent-linux-arm64") } as const;
export const SEA_FILE = SEA_FILES.x64;
type Arch = keyof typeof SEA_FILES;
/** The fuse postject flips so the binary runs its blob (Node's documented sentinel). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
/** ELF e_machine of each architecture: what a fetched Node binary must be. */
const ELF_MACHINE: Record<Arch, number> = { x64: 0x3e, arm64: 0xb7 };
const GNU_TRIPLE: Record<Arch, string> = { x64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu" };
const NODE_CACHE = join(root, "node_modules/.cache/hookrelay-node");

const common: BuildOptions = {
  entryPoints: [join(root, "agent/commands/cli.ts")],
  bundle: true,
  platform: "node",
  // ws loads these optional native speed-ups inside try/catch; without them it uses plain JS.
  external: ["bufferutil", "utf-8-validate"],
  legalComments: "none",
  logLevel: "warning",
};

/** Writes `bytes` to `file` unless it holds them already (then not even its mode is touched); atomic. */
function writeIfChanged(file: string, bytes: Uint8Array, mode: number): boolean {
  if (existsSync(file) && Buffer.compare(readFileSync(file), bytes) === 0) return false;
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
  return true;
}

mkdirSync(dist, { recursive: true });
const bundled = await build({
  ...common,
  outfile,
  write: false,
  target: "node18",
  format: "esm",
  // ws and yaml are CommonJS: give the ESM bundle a `require` for Node's built-ins.
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __hookrelayCreateRequire } from 'node:module';\nconst require = __hookrelayCreateRequire(import.meta.url);" },
});
const bundle = bundled.outputFiles[0]!.contents;
const sha256 = createHash("sha256").update(bundle).digest("hex");
const changed = [
  writeIfChanged(outfile, bundle, 0o755),
  writeIfChanged(join(AGENT_ASSET_DIR, "hookrelay-agent.mjs"), bundle, 0o644),
  // `sha256sum -c` reads this line: the file is checked under the name it is downloaded as.
  writeIfChanged(join(AGENT_ASSET_DIR, "hookrelay-agent.mjs.sha256"), Buffer.from(`${sha256}  hookrelay-agent.mjs\n`), 0o644),
].some(Boolean);
console.log(`${changed ? "built" : "up to date:"} ${outfile} (${(bundle.length / 1e3).toFixed(0)} kB, sha256 ${sha256.slice(0, 12)}…; served by the worker at /agent/hookrelay-agent.mjs)`);

/** The first tool of `tools` that strips `from` into `to`; null when none can (none here, or not for this architecture). */
function strip(from: string, to: string, tools: string[]): string | null {
  for (const tool of tools) {
    try {
      execFileSync(tool, ["-o", to, from], { stdio: "pipe" });
      return tool;
    } catch {
      rmSync(to, { force: true });
    }
  }
  return null;
}

function elfMachine(file: string): number {
  const fd = openSync(file, "r");
  try {
    const head = Buffer.alloc(20);
    readSync(fd, head, 0, 20, 0);
    return head.subarray(0, 4).toString("latin1") === "\x7fELF" ? head.readUInt16LE(18) : -1;
  } finally {
    closeSync(fd);
  }
}

/**
 * npm's Node binary for linux-`arch`, of this very Node version (the blob must go into the Node version
 * that made it): the `node-linux-<arch>` package from the npm registry, fetched once with `npm pack`
 * (npm checks it against the registry's integrity hash) and kept in node_modules/.cache/hookrelay-node/.
 */
function npmNode(arch: Arch): string {
  const version = process.versions.node;
  const spec = `node-linux-${arch}@${version}`;
  const cached = join(NODE_CACHE, `node-v${version}-linux-${arch}`);
  if (existsSync(cached) && elfMachine(cached) === ELF_MACHINE[arch]) {
    console.log(`Node ${version} for linux-${arch}: ${cached} (from npm's ${spec}, cached)`);
    return cached;
  }
  console.log(`fetching Node ${version} for linux-${arch} from the npm registry: npm pack ${spec} (~50 MB, once; cached in ${NODE_CACHE})`);
  const work = mkdtempSync(join(tmpdir(), "hookrelay-node-"));
  try {
    let tgz: string;
    try {
      const out = execFileSync("npm", ["pack", spec, "--pack-destination", work, "--loglevel=error"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 300_000 });
      tgz = join(work, out.trim().split("\n").at(-1) ?? "");
    } catch (e) {
      const why = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
      throw new Error(
        `cannot build ${basename(SEA_FILES[arch])}: fetching ${spec} (npm's Node ${version} for linux-${arch}) from the npm registry failed:\n${why}\n` +
          `It needs the npm registry (npm config get registry) and that exact version there; \`npm run build -- --no-${arch}\` builds the rest without it.`,
      );
    }
    execFileSync("tar", ["-xzf", tgz, "-C", work, "package/bin/node"], { stdio: "pipe" });
    const node = join(work, "package/bin/node");
    if (elfMachine(node) !== ELF_MACHINE[arch]) throw new Error(`cannot build ${basename(SEA_FILES[arch])}: ${spec}'s bin/node is not a linux-${arch} executable`);
    mkdirSync(NODE_CACHE, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    copyFileSync(node, tmp);
    chmodSync(tmp, 0o755);
    renameSync(tmp, cached);
    console.log(`Node ${version} for linux-${arch}: ${cached}`);
    return cached;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const hostArch = process.arch === "x64" || process.arch === "arm64" ? process.arch : null;
if (process.argv.includes("--no-sea")) {
  console.log("single executables: skipped (--no-sea)");
} else if (process.platform !== "linux" || hostArch === null) {
  console.log(`single executables: skipped (built on linux-x64 or linux-arm64 only; this is ${process.platform}-${process.arch})`);
} else {
  const arches: Arch[] = [hostArch, ...(["x64", "arm64"] as const).filter((a) => a !== hostArch)];
  const work = mkdtempSync(join(tmpdir(), "hookrelay-sea-"));
  try {
    // A SEA runs one CommonJS script; __HOOKRELAY_SEA__ tells the agent it is one (for its systemd unit).
    const main = join(work, "agent.cjs");
    await build({ ...common, outfile: main, target: `node${process.versions.node.split(".")[0]}`, format: "cjs", define: { __HOOKRELAY_SEA__: "true" } });
    const blob = join(work, "agent.blob");
    const config = join(work, "sea-config.json");
    writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false }));
    // The blob must be made by the Node version it is injected into: this one (without a code cache it
    // holds no machine code, so the same blob serves both architectures).
    execFileSync(process.execPath, ["--experimental-sea-config", config], { stdio: "pipe" });
    const postject = join(root, "node_modules/postject/dist/cli.js");
    for (const arch of arches) {
      if (process.argv.includes(`--no-${arch}`)) {
        console.log(`${SEA_FILES[arch]}: skipped (--no-${arch})`);
        continue;
      }
      const started = Date.now();
      let node: string;
      try {
        node = arch === hostArch ? process.execPath : npmNode(arch);
      } catch (e) {
        // No stale file of an older build left next to the new ones.
        rmSync(SEA_FILES[arch], { force: true });
        console.error(e instanceof Error ? e.message : String(e));
        process.exitCode = 1;
        continue;
      }
      // Built aside (in dist/: a rename does not cross file systems) and renamed into place: a build running
      // alongside, or a running agent, never sees half a file.
      const file = `${SEA_FILES[arch]}.${process.pid}.tmp`;
      let stripper: string | null;
      try {
        // Symbols are ~18 MB of the binary and nothing a server needs: stripped when a strip for this architecture is here.
        stripper = strip(node, file, ["strip", `${GNU_TRIPLE[arch]}-strip`, "llvm-strip"]);
        if (stripper === null) copyFileSync(node, file);
        chmodSync(file, 0o755);
        execFileSync(process.execPath, [postject, file, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE], { stdio: "pipe" });
        renameSync(file, SEA_FILES[arch]);
      } finally {
        rmSync(file, { force: true });
      }
      const how = stripper !== null ? "stripped" : `not stripped: install ${arch === hostArch ? "binutils" : "llvm (llvm-strip) or binutils-" + GNU_TRIPLE[arch]} to strip ~18 MB of symbols`;
      console.log(
        `built ${SEA_FILES[arch]} (${(statSync(SEA_FILES[arch]).size / 1e6).toFixed(0)} MB, Node ${process.versions.node} for linux-${arch} inside${arch === hostArch ? "" : ", from npm"}, ${how}; ${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
