/**
 * What `npm pack` ships, as a user's `npm install` gets it: the built SDK and
 * provider with their types, the protos, LICENSE, README and CHANGELOG; no tests,
 * benchmarks, scripts or TypeScript sources outside the maps; source maps whose
 * sources resolve (carried inline); @pulumi/pulumi as a peer, never bundled.
 * Needs the build (npm run test:unit builds first). No daemon, no root.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as Record<string, unknown> & {
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  exports: Record<string, string>;
};

const packed: string[] = (JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--silent", "--ignore-scripts"], { cwd: REPO_ROOT, encoding: "utf8" })) as { files: { path: string }[] }[])[0].files.map(
  (f) => f.path,
);

test("the tarball holds the built SDK and provider, protos, LICENSE, README and CHANGELOG, and nothing else", () => {
  for (const file of ["package.json", "LICENSE", "README.md", "CHANGELOG.md", "dist/sdk/index.js", "dist/sdk/index.d.ts", "dist/provider/pulumi/index.js", "proto/services/tasks/v1/tasks.proto"]) {
    assert.ok(packed.includes(file), `${file} is shipped`);
  }
  const stray = packed.filter((f) => !/^(dist\/(sdk|provider)\/|proto\/)/.test(f) && !["package.json", "LICENSE", "README.md", "CHANGELOG.md"].includes(f));
  assert.deepEqual(stray, [], "nothing outside dist/sdk, dist/provider, proto and the four top-level files");
  assert.deepEqual(packed.filter((f) => /(^|\/)(test|bench|scripts|node_modules)\//.test(f)), []);
  assert.deepEqual(packed.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), [], "no TypeScript sources (the maps carry them)");
  assert.ok(fs.readFileSync(path.join(REPO_ROOT, "LICENSE"), "utf8").startsWith("Apache License"), "LICENSE is the Apache 2.0 text");
  assert.equal(pkg.license, "Apache-2.0");
});

test("every export target and its types are shipped", () => {
  for (const [entry, target] of Object.entries(pkg.exports)) {
    const file = target.replace(/^\.\//, "");
    assert.ok(packed.includes(file), `export ${entry} → ${file} is shipped`);
    if (file.endsWith(".js")) assert.ok(packed.includes(file.replace(/\.js$/, ".d.ts")), `types of ${entry} are shipped`);
  }
});

test("every shipped source map resolves: each source it names is carried inline", () => {
  const maps = packed.filter((f) => f.endsWith(".js.map"));
  assert.ok(maps.length > 10, `${maps.length} maps`);
  const unresolved = maps.flatMap((m) => {
    const map = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, m), "utf8")) as { sources: string[]; sourcesContent?: (string | null)[] };
    return map.sources
      .map((source, i) => ({ source, content: map.sourcesContent?.[i] }))
      .filter(({ source, content }) => typeof content !== "string" && !packed.includes(path.posix.normalize(path.posix.join(path.posix.dirname(m), source))))
      .map(({ source }) => `${m}: ${source}`);
  });
  assert.deepEqual(unresolved, []);
  for (const js of packed.filter((f) => f.endsWith(".js"))) {
    const ref = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(fs.readFileSync(path.join(REPO_ROOT, js), "utf8"))?.[1];
    if (ref) assert.ok(packed.includes(path.posix.join(path.posix.dirname(js), ref)), `${js} points at a shipped map`);
  }
});

test("@pulumi/pulumi is a peer with a 3.x range (the user's copy), a dev dependency for the repo, never a dependency", () => {
  assert.equal(pkg.dependencies["@pulumi/pulumi"], undefined);
  assert.match(pkg.peerDependencies["@pulumi/pulumi"], /^>=3\.\d+\.\d+ <4(\.0\.0)?$/);
  assert.ok(pkg.devDependencies["@pulumi/pulumi"]);
  // No repository, bugs or homepage until the project has a public address: a made-up URL would send users nowhere.
  for (const key of ["repository", "bugs", "homepage"]) assert.equal(pkg[key], undefined, `package.json has no placeholder ${key}`);
});
