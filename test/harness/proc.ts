/**
 * Small process and /proc helpers shared by the harness modules.
 *
 * Only Node built-ins are used. Nothing here knows about containerd.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";

/** Result of a finished child process. */
export interface ProcessResult {
  /** Exit code, or null when the process was killed by a signal. */
  code: number | null;
  /** Signal that ended the process, if any. */
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** Options for {@link runProcess}. */
export interface RunProcessOptions {
  /** Data written to the child's stdin (stdin is closed afterwards). */
  input?: Buffer | string;
  /** Kill the child with SIGKILL after this many milliseconds (default: no limit). */
  timeoutMs?: number;
  /** Environment for the child (default: this process's environment). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a command to completion and collects its output. Never rejects for a
 * non-zero exit: callers decide what a failure is. Rejects only when the
 * command cannot be spawned at all.
 */
export function runProcess(
  command: string,
  args: readonly string[],
  opts: RunProcessOptions = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: opts.env ?? process.env,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    }
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) });
    });
    child.stdin.on("error", () => {
      /* the child may exit before reading its input; ignore EPIPE */
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` every `intervalMs` until it returns a value other than
 * `undefined`, or throws after `timeoutMs` with `describe()` in the message.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  describe: () => string,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`);
    }
    await sleep(intervalMs);
  }
}

/** True when a process with this pid exists (and is not a zombie we could reap). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z";
  } catch {
    return false;
  }
}

/** Sends a signal, ignoring "no such process". */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/** Information about one process, read from /proc. */
export interface ProcInfo {
  pid: number;
  /** argv, split on NUL. */
  argv: string[];
  /** Target of /proc/<pid>/cwd, or "" when unreadable. */
  cwd: string;
}

/** Lists all processes visible in /proc (best effort: vanished ones are skipped). */
export function listProcesses(): ProcInfo[] {
  const result: ProcInfo[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const raw = fs.readFileSync(`/proc/${pid}/cmdline`);
      const argv = raw.toString("utf8").split("\0");
      if (argv.length > 0 && argv[argv.length - 1] === "") argv.pop();
      let cwd = "";
      try {
        cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        /* kernel thread or exited */
      }
      result.push({ pid, argv, cwd });
    } catch {
      /* exited while scanning */
    }
  }
  return result;
}

/** Decodes the octal escapes (\040 etc.) used in /proc/self/mountinfo. */
function decodeMountPath(raw: string): string {
  return raw.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Mount points of this process's mount namespace that are `dir` itself or lie
 * below it, deepest (last mounted) first.
 */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith("/") ? dir : dir + "/";
  const lines = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n");
  const points: string[] = [];
  for (const line of lines) {
    const fields = line.split(" ");
    if (fields.length < 5) continue;
    const mountPoint = decodeMountPath(fields[4]);
    if (mountPoint === dir || mountPoint.startsWith(prefix)) points.push(mountPoint);
  }
  // Later mounts may sit on top of earlier ones: unmount in reverse order,
  // deeper paths first among equals.
  return points
    .map((p, i) => ({ p, i }))
    .sort((a, b) => b.p.split("/").length - a.p.split("/").length || b.i - a.i)
    .map((x) => x.p);
}
