#!/usr/bin/env node
/**
 * The Target Durable Object's layers (docs/architecture.md): a file imports only from its own layer or
 * a lower one — never up. The shell hands each runtime entry point to a handler; handlers call the
 * aggregates; deployments hand their changes to reports; jobs send through agents' sockets; types are
 * plain values everyone may use. Run by `npm test` (check:imports); exits 1 naming each upward import.
 */
import fs from "node:fs";
import path from "node:path";

const ROOT = "worker/target-object";
/** Top to bottom. A file's layer: its folder under ROOT, or for a top-level file its name. */
const LAYERS = [
  ["shell", ["target.ts", "alarm.ts", "schema.ts", "target-unavailable.ts"]],
  ["handlers", ["handlers/"]],
  ["deployments", ["deployments/"]],
  ["reports", ["reports/"]],
  ["jobs", ["jobs/"]],
  ["agents", ["agents/"]],
  ["values", ["types.ts", "deadline-settings.ts"]],
];

function layerOf(rel) {
  for (let i = 0; i < LAYERS.length; i++) {
    for (const p of LAYERS[i][1]) if (p.endsWith("/") ? rel.startsWith(p) : rel === p) return i;
  }
  return -1;
}

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
}

const problems = [];
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']/g;
for (const file of walk(ROOT)) {
  if (file.endsWith(".test.ts")) continue; // tests may reach any layer
  const rel = path.relative(ROOT, file).split(path.sep).join("/");
  const from = layerOf(rel);
  if (from < 0) {
    problems.push(`${file}: in no layer (add it to scripts/check-layers.mjs)`);
    continue;
  }
  for (const m of fs.readFileSync(file, "utf8").matchAll(IMPORT)) {
    const target = path.relative(ROOT, path.resolve(path.dirname(file), m[1])).split(path.sep).join("/");
    if (target.startsWith("..")) continue; // outside the object: worker/, shared/
    const to = layerOf(target);
    if (to >= 0 && to < from) problems.push(`${file} (${LAYERS[from][0]}) imports ${m[1]} (${LAYERS[to][0]}): an arrow up`);
  }
}
if (problems.length > 0) {
  console.error(`check-layers: ${problems.length} import(s) against the layers of ${ROOT}:\n${problems.join("\n")}`);
  process.exit(1);
}
console.log(`check-layers: ${ROOT} imports run down only (${LAYERS.map((l) => l[0]).join(" → ")})`);
