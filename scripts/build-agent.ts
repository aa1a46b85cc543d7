/**
 * `npm run build`: bundle the agent into one file, dist/hookrelay-agent.mjs, that runs with plain
 * `node` (22+) and no node_modules — copy it to the server and run it.
 */
import { build } from "esbuild";
import { chmodSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../", import.meta.url).pathname;
const outfile = join(root, "dist/hookrelay-agent.mjs");

await build({
  entryPoints: [join(root, "agent/cli.ts")],
  outfile,
  bundle: true,
  platform: "node",
  target: "node22",
  format: "esm",
  // ws loads these optional native speed-ups inside try/catch; without them it uses plain JS.
  external: ["bufferutil", "utf-8-validate"],
  // ws and yaml are CommonJS: give the ESM bundle a `require` for Node's built-ins.
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __hookrelayCreateRequire } from 'node:module';\nconst require = __hookrelayCreateRequire(import.meta.url);" },
  legalComments: "none",
  logLevel: "warning",
});
chmodSync(outfile, 0o755);
console.log(`built ${outfile}`);
