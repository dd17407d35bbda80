/**
 * Helpers the benchmarks share: argument parsing, statistics, number
 * formatting, the result table and the --json switch, tool look-up and
 * versions, timing a spawned command (optionally under GNU time, for peak RSS
 * and CPU), and the entry point's error handling.
 */
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ContainerdClient } from "../provider/containerd";

// ---- arguments ----------------------------------------------------------------------

/**
 * Walks `argv`: `--flag value` or `--flag=value`. `--help`/`-h` prints `usage`
 * and exits; every other argument goes to `set` with a getter for its value
 * (the part after `=`, else the next argument), and `set` returns false for
 * one it does not know, which throws.
 */
export function parseFlags(argv: string[], usage: string, set: (flag: string, value: () => string | undefined) => boolean): void {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith("--") && a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    if (flag === "--help" || flag === "-h") {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    }
    if (!set(flag, value)) throw new Error(`unknown argument ${a}\n${usage}`);
  }
}

/** A flag's value as an integer >= `min`; throws with `usage` otherwise. */
export function intFlag(flag: string, value: string | undefined, min: number, usage: string): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < min) throw new Error(`${flag} needs an integer >= ${min}, got ${value ?? "nothing"}\n${usage}`);
  return n;
}

// ---- statistics ---------------------------------------------------------------------

/** The q-quantile of the non-NaN values, linear interpolation between closest ranks; NaN if there are none. */
export function quantile(values: number[], q: number): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const pos = (v.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

export const median = (values: number[]): number => quantile(values, 0.5);

// ---- output -------------------------------------------------------------------------

/** `x` with `digits` decimals, "n/a" for NaN. */
const fixed = (digits: number) => (x: number): string => (Number.isNaN(x) ? "n/a" : x.toFixed(digits));

export const f0 = fixed(0);
export const f1 = fixed(1);

/** Aligned columns, two spaces apart: the first left-aligned, the rest right-aligned. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ")).join("\n");
}

/**
 * Prints the report: on stdout, or with `json` on stderr followed by
 * `result()` as JSON on stdout.
 */
export function printReport(report: string, json: boolean, result: () => object): void {
  if (json) {
    process.stderr.write(report);
    process.stdout.write(`${JSON.stringify(result(), null, 2)}\n`);
  } else {
    process.stdout.write(report);
  }
}

// ---- tools --------------------------------------------------------------------------

/** First line of `cmd args` (e.g. `--version`), "unknown" if it fails. */
export function versionOf(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim().split("\n")[0];
  } catch {
    return "unknown";
  }
}

/** Versions of the tools a benchmark drives, and the host's kernel and CPU count, for the JSON results. */
export function systemInfo(ctr: string): { containerd: string; ctr: string; runc: string; criu: string; kernel: string; cpus: number } {
  return {
    containerd: versionOf("containerd", ["--version"]),
    ctr: versionOf(ctr, ["--version"]),
    runc: versionOf("runc", ["--version"]),
    criu: versionOf("criu", ["--version"]),
    kernel: os.release(),
    cpus: os.cpus().length,
  };
}

/** The first executable `cmd` on PATH; throws if there is none. */
export function which(cmd: string): string {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const p = path.join(dir || ".", cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw new Error(`${cmd} not found on PATH`);
}

/** How a timed command ended. */
export interface TimedExit {
  /** Wall time from spawn() until the process exited, ms. */
  wallMs: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Spawns `cmd args` (stdout ignored, stderr collected) and resolves once it
 * is closed, whatever its exit status; SIGKILLs it after `timeoutMs`. Rejects
 * only if it cannot be spawned.
 */
export function timeSpawn(cmd: string, args: string[], timeoutMs: number): Promise<TimedExit> {
  return new Promise((resolve, reject) => {
    const stderr: Buffer[] = [];
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    let wallMs = NaN;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", () => {
      wallMs = performance.now() - t0;
    });
    child.stderr.on("data", (c: Buffer) => stderr.push(c));
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ wallMs, code, signal, stderr: Buffer.concat(stderr).toString("utf8") });
    });
  });
}

/** Spawns ctr and resolves its wall time (spawn → exit); rejects on a non-zero exit. */
export async function timeCtr(ctr: string, args: string[], timeoutMs: number): Promise<number> {
  const r = await timeSpawn(ctr, args, timeoutMs);
  if (r.code !== 0) throw new Error(`ctr ${args.join(" ")} failed (${r.code ?? r.signal}): ${r.stderr.trim()}`);
  return r.wallMs;
}

/** Marks the records `underGnuTime` makes /usr/bin/time write to stderr. */
const TIME_MARK = "@@bench-time";

/** A command's wall time and the /usr/bin/time records of the processes it ran under {@link underGnuTime}. */
export interface TimedRun {
  wallMs: number;
  /** Per process under /usr/bin/time: peak RSS (KiB) and CPU (ms), in command order. */
  procs: Array<{ name: string; maxRssKiB: number; cpuMs: number }>;
}

/** `argv` run under GNU time, which writes a marked record (`name`, peak RSS, user and system CPU) to stderr. */
export const underGnuTime = (name: string, argv: string[]): string[] => ["/usr/bin/time", "-f", `${TIME_MARK} ${name} %M %U %S`, ...argv];

/** Runs `cmd args`, resolves wall time (spawn → exit) and the /usr/bin/time records from stderr; rejects on a non-zero exit. */
export async function timeCommand(cmd: string, args: string[], timeoutMs: number): Promise<TimedRun> {
  const { wallMs, code, signal, stderr } = await timeSpawn(cmd, args, timeoutMs);
  const procs: TimedRun["procs"] = [];
  const rest: string[] = [];
  for (const line of stderr.split("\n")) {
    const m = new RegExp(`^${TIME_MARK} (\\S+) (\\d+) ([\\d.]+) ([\\d.]+)$`).exec(line.trim());
    if (m) procs.push({ name: m[1], maxRssKiB: Number(m[2]), cpuMs: (Number(m[3]) + Number(m[4])) * 1000 });
    else if (line.trim() !== "") rest.push(line);
  }
  if (code === 0) return { wallMs, procs };
  throw new Error(`${cmd} ${args.join(" ")} failed (${code ?? signal}): ${rest.join("\n").trim()}`);
}

// ---- containerd calls --------------------------------------------------------------

/** The rest of a wrapped call: ContainerdClient.prototype.call with these arguments (request first). */
export type NextCall = (args: unknown[]) => Promise<unknown>;

/**
 * Wraps ContainerdClient.prototype.call for every client of this process:
 * `around(method, args, next)` answers each call, `next(args)` makes it.
 * For benchmarks that watch or alter single RPCs without touching provider/.
 */
export function aroundClientCall(around: (method: string, args: unknown[], next: NextCall) => Promise<unknown>): void {
  const proto = ContainerdClient.prototype as unknown as { call: (this: unknown, method: string, ...args: unknown[]) => Promise<unknown> };
  const original = proto.call;
  proto.call = function (this: unknown, method: string, ...args: unknown[]): Promise<unknown> {
    return around(method, args, (a) => original.call(this, method, ...a));
  };
}

// ---- entry point -------------------------------------------------------------------

/** Runs a benchmark's main; on failure prints the error to stderr and sets exit status 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
