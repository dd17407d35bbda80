/**
 * The provider's layering, read from its import statements (type imports too):
 * pulumi → library barrel → transfer → restore → checkpoint → (transaction,
 * errors, policy) → containerd. No file imports a layer above its own, transfer/ takes
 * nothing from restore/, other folders are reached through their barrel
 * (index.ts), and no import cycle exists.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import ts from "typescript";

/** The repo root, from this file's place in dist/test/unit/ (not the cwd). */
const PROVIDER = path.resolve(__dirname, "..", "..", "..", "provider");

/** Each layer's rank: a file may import its own rank or lower. */
const RANK: Record<string, number> = {
  pulumi: 6,
  "index.ts": 5,
  transfer: 4,
  restore: 3,
  checkpoint: 2,
  // The runner and the error vocabulary every write path shares; the restore
  // policy, pure (it reads a spec and imports only errors).
  transaction: 1,
  policy: 1,
  "errors.ts": 1,
  "labels.ts": 1,
  containerd: 0,
};

/** The layer of a file: its first path segment under provider/. */
const layerOf = (file: string): string => path.relative(PROVIDER, file).split(path.sep)[0];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [full] : [];
  });
}

/** The provider files `file` imports (relative specifiers resolved; packages left out). */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true);
  return importedFiles
    .map((ref) => ref.fileName)
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => {
      const target = path.resolve(path.dirname(file), specifier);
      const candidates = [`${target}.ts`, path.join(target, "index.ts")];
      const found = candidates.find((c) => fs.existsSync(c));
      assert.ok(found, `${path.relative(PROVIDER, file)}: cannot resolve ${specifier}`);
      return found;
    });
}

const files = sourceFiles(PROVIDER);
const graph = new Map(files.map((file) => [file, importsOf(file)]));
const rel = (file: string) => path.relative(PROVIDER, file);

describe("provider layering", () => {
  test("every file sits in a known layer", () => {
    assert.ok(files.length > 30, `read ${files.length} files`);
    assert.deepEqual(files.map(layerOf).filter((layer) => !(layer in RANK)), []);
  });

  test("no file imports a layer above its own", () => {
    const upward = [...graph].flatMap(([file, targets]) =>
      targets.filter((target) => RANK[layerOf(target)] > RANK[layerOf(file)]).map((target) => `${rel(file)} → ${rel(target)}`),
    );
    assert.deepEqual(upward, []);
  });

  test("transfer/ imports nothing from restore/", () => {
    const sideways = [...graph].filter(([file]) => layerOf(file) === "transfer").flatMap(([file, targets]) => targets.filter((t) => layerOf(t) === "restore").map((t) => `${rel(file)} → ${rel(t)}`));
    assert.deepEqual(sideways, []);
  });

  test("another folder is reached through its barrel", () => {
    const deep = [...graph].flatMap(([file, targets]) =>
      targets
        .filter((target) => layerOf(target) !== layerOf(file) && fs.existsSync(path.join(PROVIDER, layerOf(target), "index.ts")))
        .filter((target) => path.basename(target) !== "index.ts" || path.dirname(target) !== path.join(PROVIDER, layerOf(target)))
        .map((target) => `${rel(file)} → ${rel(target)}`),
    );
    assert.deepEqual(deep, []);
  });

  test("there is no import cycle", () => {
    const state = new Map<string, "visiting" | "done">();
    const cycles: string[] = [];
    const visit = (file: string, trail: string[]): void => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "visiting") {
        cycles.push([...trail.slice(trail.indexOf(file)), file].map(rel).join(" → "));
        return;
      }
      state.set(file, "visiting");
      for (const target of graph.get(file) ?? []) visit(target, [...trail, file]);
      state.set(file, "done");
    };
    for (const file of files) visit(file, []);
    assert.deepEqual(cycles, []);
  });
});
