/**
 * The provider and the SDK talk to containerd over gRPC only: no source file
 * under provider/ or sdk/ loads child_process (or a process-spawning package)
 * or starts a process. Reading a file such as CRIU's restore.log is fine.
 *
 * The sources are parsed with the TypeScript compiler (a dev dependency), so
 * comments, strings and `RegExp#exec` on regex literals are told apart from
 * real imports and calls.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import ts from "typescript";

/** The repo root, from this file's place in dist/test/unit/ (not the cwd). */
const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
const SCANNED_DIRS = ["provider", "sdk"];

/** Modules that run other programs. */
const PROCESS_MODULES = new Set(["child_process", "cluster", "worker_threads", "execa", "shelljs", "cross-spawn", "node-pty", "zx", "@npmcli/promise-spawn"]);
/** Functions (or methods) that start processes. */
const PROCESS_FUNCTIONS = new Set(["spawn", "spawnSync", "exec", "execSync", "execFile", "execFileSync", "fork", "execa", "execaSync", "execaCommand", "execaCommandSync", "execaNode"]);

const isProcessModule = (specifier: string): boolean => {
  const name = specifier.replace(/^node:/, "");
  return PROCESS_MODULES.has(name) || PROCESS_MODULES.has(name.split("/")[0]);
};

interface Finding {
  file: string;
  line: number;
  what: string;
  text: string;
}

/** Rule violations in one TypeScript source text. */
function scanSource(source: string, file: string): Finding[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const findings: Finding[] = [];
  const report = (node: ts.Node, what: string): void => {
    const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    findings.push({ file, line: line + 1, what, text: node.getText(sf).split("\n")[0].slice(0, 120) });
  };

  // `const X = "literal"` and `const X = require.resolve("literal")`: module names loaded through a constant.
  const constants = new Map<string, string>();
  const collect = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer) {
      const init = node.initializer;
      if (ts.isStringLiteralLike(init)) constants.set(node.name.text, init.text);
      else if (
        ts.isCallExpression(init) &&
        init.expression.getText(sf) === "require.resolve" &&
        init.arguments.length >= 1 &&
        ts.isStringLiteralLike(init.arguments[0])
      ) {
        constants.set(node.name.text, init.arguments[0].text);
      }
    }
    ts.forEachChild(node, collect);
  };
  collect(sf);

  const checkSpecifier = (node: ts.Node, specifier: ts.Expression | undefined, how: string): void => {
    if (!specifier) return;
    if (ts.isStringLiteralLike(specifier)) {
      if (isProcessModule(specifier.text)) report(node, `${how} ${specifier.text}`);
    } else if (ts.isIdentifier(specifier) && constants.has(specifier.text)) {
      if (isProcessModule(constants.get(specifier.text)!)) report(node, `${how} ${constants.get(specifier.text)}`);
    } else {
      report(node, `${how} a module whose name is computed`);
    }
  };

  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      checkSpecifier(node, node.moduleSpecifier, "imports");
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      checkSpecifier(node, node.moduleReference.expression, "imports");
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword) {
        checkSpecifier(node, node.arguments[0], "imports");
      } else if (ts.isIdentifier(callee) && callee.text === "require") {
        checkSpecifier(node, node.arguments[0], "requires");
      } else if (ts.isIdentifier(callee) && PROCESS_FUNCTIONS.has(callee.text)) {
        report(node, `calls ${callee.text}()`);
      } else if (ts.isPropertyAccessExpression(callee) || ts.isElementAccessExpression(callee)) {
        const name = ts.isPropertyAccessExpression(callee)
          ? callee.name.text
          : ts.isStringLiteralLike(callee.argumentExpression)
            ? callee.argumentExpression.text
            : undefined;
        const target = callee.expression.getText(sf);
        const onRegexLiteral = ts.isRegularExpressionLiteral(ts.skipPartiallyEmittedExpressions(callee.expression));
        if (name !== undefined && PROCESS_FUNCTIONS.has(name) && !(name === "exec" && onRegexLiteral)) {
          report(node, `calls ${target}.${name}()`);
        }
        if (target === "process" && (name === "binding" || name === "_linkedBinding" || name === "dlopen")) {
          report(node, `calls process.${name}()`);
        }
      }
    } else if (ts.isTaggedTemplateExpression(node) && ["$", "execa", "sh"].includes(node.tag.getText(sf))) {
      report(node, `runs a command template ${node.tag.getText(sf)}\`…\``);
    } else if (ts.isStringLiteralLike(node) && /child_process|spawn_sync|process_wrap/.test(node.text)) {
      report(node, `names ${node.text}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return findings;
}

/** Every .ts file under `dir` (no node_modules, no dist). */
function tsFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name === "dist") continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...tsFiles(full));
    else if (entry.isFile() && entry.name.endsWith(".ts")) files.push(full);
  }
  return files.sort();
}

describe("the scanner itself", () => {
  test("the repo root is found from __dirname, not the cwd", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { name: string };
    assert.equal(pkg.name, "pulumi-containerd-restore");
    for (const dir of SCANNED_DIRS) assert.ok(fs.statSync(path.join(REPO_ROOT, dir)).isDirectory(), `${dir}/ exists`);
  });

  test("catches every way of shelling out it looks for", () => {
    const bad = [
      `import { spawn } from "node:child_process";`,
      `import * as cp from 'child_process';`,
      `import "child_process";`,
      `import cp = require("child_process");`,
      `export { execFile } from "node:child_process";`,
      `const cp = require("child_process");`,
      `const { execSync } = require('node:child_process');`,
      `async function f() { return import("node:child_process"); }`,
      `const CP = "node:child_process"; const cp = require(CP);`,
      `const m = require(process.env.MOD!);`,
      `import { execa } from "execa";`,
      `const sh = require("shelljs");`,
      `cp.spawn("ctr", ["version"]);`,
      `spawnSync("runc", ["list"]);`,
      `execFile("criu", ["check"], cb);`,
      `execFileSync("tar", ["-xf", f]);`,
      `execSync("ctr tasks ls");`,
      `fork("./worker.js");`,
      `exec("ctr version", cb);`,
      `cp.exec("ctr version", cb);`,
      `cp["spawn"]("ctr");`,
      `runner.exec(cmd);`,
      `(process as any).binding("spawn_sync");`,
      `process.binding("fs");`,
      'await $`ctr version`;',
    ];
    for (const line of bad) assert.ok(scanSource(line, "sample.ts").length > 0, `not caught: ${line}`);
  });

  test("leaves regex matching, comments, exec ids, file reads and local module loading alone", () => {
    const fine = [
      `const match = /^([a-z]+):\\/\\/(.*)$/.exec(address);`,
      `const p = /log file: (\\/\\S+?\\.log)/.exec(daemonMessage)?.[1];`,
      `const hostPort = /^(\\[[0-9a-f:.]+\\]):(\\d{1,5})$/i.exec(rest);`,
      `type T = { "tasks.Start": [{ containerId: string; execId?: string }, { pid: number }] };`,
      `const tail = fs.readFileSync(restoreLogPath, "utf8").split("\\n").slice(-20);`,
      `// no ctr, no spawn(), no require("child_process") here`,
      `/** we never exec( anything;\n * see child_process docs */ const x = 1;`,
      `const IMPL = require.resolve("../provider/pulumi/dynamic"); const m = require(IMPL);`,
      `const ENTRY = "pulumi-containerd-restore/dynamic-provider"; const m = require(ENTRY);`,
      `import * as grpc from "@grpc/grpc-js"; import { z } from "zod";`,
    ];
    for (const line of fine) assert.deepEqual(scanSource(line, "sample.ts"), [], `false positive: ${line}`);
  });
});

describe("provider/ and sdk/ never shell out", () => {
  const files = SCANNED_DIRS.flatMap((dir) => tsFiles(path.join(REPO_ROOT, dir)));

  test("the scan covers the provider and the SDK", () => {
    const rel = files.map((f) => path.relative(REPO_ROOT, f));
    assert.ok(files.length >= 20, `only ${files.length} files found under ${SCANNED_DIRS.join(", ")}`);
    for (const expected of [
      "provider/containerd/client.ts",
      "provider/restore/plan.ts",
      "provider/restore/steps/start-task.ts",
      "provider/pulumi/restored-container.ts",
      "sdk/provider.ts",
      "sdk/restored-container.ts",
    ]) {
      assert.ok(rel.includes(expected), `${expected} is scanned`);
    }
  });

  test("no child_process, no spawn/exec/fork, no shell", () => {
    const findings = files.flatMap((file) => scanSource(fs.readFileSync(file, "utf8"), path.relative(REPO_ROOT, file)));
    assert.deepEqual(
      findings.map((f) => `${f.file}:${f.line}: ${f.what}: ${f.text}`),
      [],
      "provider and SDK code must talk to containerd over gRPC only",
    );
  });

  test("no process-spawning package among the runtime dependencies", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    assert.deepEqual(Object.keys(pkg.dependencies ?? {}).filter(isProcessModule), []);
  });
});
