#!/usr/bin/env node
// The import-layer check (run by scripts/test.sh): every TypeScript file may import only
// from its own folder and the folders below it. Product code, bottom to top:
//
//   api ← program ← engine, health ← controller ← cli
//
// localcluster/ (a real control plane for the demo, tests and benchmarks) and samples/
// (the MCP servers the demo, tests and benchmarks run) are infrastructure beside that
// stack: they import no other product folder, and only cli/ (and tests, benchmarks) use
// them. controller/testing/ holds fakes for the unit tests: no product code imports it.
// test/ and bench/ may import any product folder; nothing imports bench/, and of test/
// only bench/ may import test/support/ (the shared test helpers). examples/ (user programs)
// import the npm package by name (`vmcp-operator/pulumi`), no folder of the repo.
//
// Prints one line per offending import, `file:line: …`, and exits 1 when there is any.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const PRODUCT = ["api", "program", "engine", "health", "controller", "cli", "localcluster", "samples"];
/** Folder → the folders it may import besides itself. */
const ALLOWED = {
  api: [],
  program: ["api"],
  engine: ["api", "program"],
  health: ["api", "program"],
  controller: ["api", "program", "engine", "health"],
  cli: ["api", "program", "engine", "health", "controller", "localcluster", "samples"],
  localcluster: [],
  samples: [],
  test: [...PRODUCT, "controller/testing"],
  bench: [...PRODUCT, "test/support"],
  // Pulumi programs as a user writes them: they import the package by name, never a folder.
  examples: [],
};

/** The area a repo-relative path belongs to: `controller/testing`, `test/support`, or its top folder. */
function areaOf(path) {
  const parts = path.split(sep);
  const two = parts.slice(0, 2).join("/");
  if (two === "controller/testing" || two === "test/support") return two;
  return parts[0];
}

const top = (area) => area.split("/")[0];

function allowed(from, to) {
  if (to === "controller/testing" && from !== to) return (ALLOWED[from] ?? []).includes(to);
  if (top(to) === top(from)) return true;
  const list = ALLOWED[from] ?? ALLOWED[top(from)];
  return list.includes(to) || list.includes(top(to));
}

function* tsFiles(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* tsFiles(p);
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) yield p;
  }
}

const problems = [];
for (const folder of Object.keys(ALLOWED)) {
  for (const file of tsFiles(join(ROOT, folder))) {
    const rel = relative(ROOT, file);
    const from = areaOf(rel);
    const text = readFileSync(file, "utf8");
    const { importedFiles } = ts.preProcessFile(text, true, true);
    for (const imp of importedFiles) {
      if (!imp.fileName.startsWith(".")) continue; // a package or node: built-in
      const target = relative(ROOT, resolve(dirname(file), imp.fileName));
      if (target.startsWith("..")) {
        problems.push(`${rel}:${lineOf(text, imp.pos)}: imports "${imp.fileName}", outside the repository`);
        continue;
      }
      const to = areaOf(target);
      if (!(top(to) in ALLOWED))
        problems.push(
          `${rel}:${lineOf(text, imp.pos)}: imports "${imp.fileName}" from ${to}/, a folder with no layer`,
        );
      else if (!allowed(from, to))
        problems.push(
          `${rel}:${lineOf(text, imp.pos)}: imports "${imp.fileName}" (${to}/), but ${from}/ may import only ${
            (ALLOWED[from] ?? ALLOWED[top(from)]).join(", ") || "nothing else"
          }`,
        );
    }
  }
}

// A new top-level folder of TypeScript needs a place in the layers before it can be used.
const known = new Set([...Object.keys(ALLOWED), "node_modules", "dist"]);
for (const e of readdirSync(ROOT, { withFileTypes: true }))
  if (
    e.isDirectory() &&
    !e.name.startsWith(".") &&
    !known.has(e.name) &&
    tsFiles(join(ROOT, e.name)).next().value
  )
    problems.push(
      `${e.name}/: TypeScript folder without a layer: add it to ALLOWED in scripts/check-layers.mjs`,
    );

function lineOf(text, pos) {
  return text.slice(0, pos).split("\n").length;
}

if (problems.length) {
  console.error(`import layers: ${problems.length} problem(s)\n${problems.join("\n")}`);
  process.exit(1);
}
console.log("import layers: ok");
