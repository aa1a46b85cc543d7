#!/usr/bin/env node
/**
 * Layers whose imports run down only (docs/architecture.md): a file imports from its own layer or a
 * lower one — never up. The Target Durable Object: the shell hands each runtime entry point to a
 * handler; handlers call the aggregates; deployments hand their changes to reports; jobs send through
 * agents' sockets; types are plain values everyone may use. The agent: its commands (the operator's
 * CLI, install) use the runtime (the path of a job), which uses common pieces. Tests may reach any layer.
 * Run by `npm test` (check:imports); exits 1 naming each upward import.
 */
import fs from "node:fs";
import path from "node:path";

/** Per root, its layers top to bottom. A file's layer: its folder under the root, or for a top-level file its name. */
const TREES = [
  {
    root: "worker/target-object",
    layers: [
      ["shell", ["target.ts", "alarm.ts", "schema.ts", "target-unavailable.ts"]],
      ["handlers", ["handlers/"]],
      ["deployments", ["deployments/"]],
      ["reports", ["reports/"]],
      ["jobs", ["jobs/"]],
      ["agents", ["agents/"]],
      ["values", ["types.ts", "deadline-settings.ts"]],
    ],
  },
  {
    root: "agent",
    layers: [
      ["commands", ["commands/"]],
      ["runtime", ["runtime/"]],
      ["common", ["common/"]],
    ],
  },
];

function layerOf(layers, rel) {
  for (let i = 0; i < layers.length; i++) {
    for (const p of layers[i][1]) if (p.endsWith("/") ? rel.startsWith(p) : rel === p) return i;
  }
  return -1;
}

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
}

const problems = [];
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']/g;
for (const { root, layers } of TREES) {
  for (const file of walk(root)) {
    if (file.endsWith(".test.ts")) continue; // tests may reach any layer
    const rel = path.relative(root, file).split(path.sep).join("/");
    const from = layerOf(layers, rel);
    if (from < 0) {
      problems.push(`${file}: in no layer (add it to scripts/check-layers.mjs)`);
      continue;
    }
    for (const m of fs.readFileSync(file, "utf8").matchAll(IMPORT)) {
      const target = path.relative(root, path.resolve(path.dirname(file), m[1])).split(path.sep).join("/");
      if (target.startsWith("..")) continue; // outside the tree: shared/, the rest of worker/
      const to = layerOf(layers, target);
      if (to >= 0 && to < from) problems.push(`${file} (${layers[from][0]}) imports ${m[1]} (${layers[to][0]}): an arrow up`);
    }
  }
}
if (problems.length > 0) {
  console.error(`check-layers: ${problems.length} import(s) against the layers:\n${problems.join("\n")}`);
  process.exit(1);
}
for (const { root, layers } of TREES) console.log(`check-layers: ${root} imports run down only (${layers.map((l) => l[0]).join(" → ")})`);
