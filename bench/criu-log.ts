/**
 * Reading CRIU's restore.log for the benchmarks: its `(SS.uuuuuu)` line
 * timestamps, CRIU's total restore time (bench/restore.ts) and its phases
 * (bench/criu-phases.ts), all pure functions of the log text; and where
 * restore.log is found for ctr and for the library (which removes its CRIU
 * work dir before restore() returns).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { aroundClientCall } from "./common";

/** CRIU's marker for a completed restore (criu/cr-restore.c). */
export const CRIU_DONE = "Restore finished successfully";

/** One timestamped line of a CRIU log. */
export interface CriuLogLine {
  /** Milliseconds since CRIU opened its log (the `(SS.uuuuuu)` prefix). */
  ms: number;
  /** The line as written, timestamp included. */
  text: string;
}

/** The timestamped lines of a CRIU log, in order; lines without a `(SS.uuuuuu)` prefix are skipped. */
export function criuLogLines(log: string): CriuLogLine[] {
  const lines: CriuLogLine[] = [];
  for (const text of log.split("\n")) {
    const m = /^\((\d+)\.(\d+)\)/.exec(text);
    if (m) lines.push({ ms: Number(m[1]) * 1000 + Number(m[2]) / 10 ** (m[2].length - 3), text });
  }
  return lines;
}

/**
 * CRIU's restore time in ms from its log text: the timestamp of the last
 * "Restore finished successfully" line, or, flagged as `fallback`, of the
 * last line when there is no such line (NaN for no log, or one without timestamps).
 */
export function criuRestoreMs(log: string | undefined): { ms: number; fallback: boolean } {
  const lines = criuLogLines(log ?? "");
  const done = lines.findLast((l) => l.text.includes(CRIU_DONE));
  return done ? { ms: done.ms, fallback: false } : { ms: lines.at(-1)?.ms ?? NaN, fallback: true };
}

// ---- phases ---------------------------------------------------------------------------

/**
 * A phase of a restore: from the first line containing `from` (or the log's
 * start) to the first line containing `to` after it.
 */
export interface CriuPhase {
  name: string;
  from: string | "start";
  to: string;
  /** What CRIU does in between (criu/cr-restore.c, net.c, kerndat.c of CRIU 4.1.1). */
  what: string;
}

/**
 * The phases, with the exact marker lines (substrings of restore.log lines,
 * CRIU 4.1.1 at runc's log level 4). The top-level ones follow each other, so
 * they add up to the total; names with a `/` are parts of the phase before.
 */
export const PHASES: readonly CriuPhase[] = [
  { name: "init", from: "start", to: "Reading image tree", what: "option parsing and kernel feature probes (kerndat), unless loaded from the /run/criu.kdat cache" },
  {
    name: "init/netns-probe",
    from: "net: Restoring netdev veth",
    to: "vdso: Parsing at",
    what: "kerndat's link-nsid probe: a veth pair in a scratch netns, dumped over netlink",
  },
  { name: "prepare", from: "Reading image tree", to: "Forking task with", what: "image tree, cgroup yard, pre-restore script (RPC to runc), mount images" },
  {
    name: "namespaces",
    from: "Forking task with",
    to: "Running post-setup-namespaces scripts",
    what: "clone of the root task into new namespaces; IPC, UTS and mount namespace restore",
  },
  { name: "namespaces/mounts", from: "mnt: Restoring mount namespace", to: "Running post-setup-namespaces scripts", what: "the mount tree" },
  { name: "tasks", from: "Running post-setup-namespaces scripts", to: "Running post-restore scripts", what: "fork of the tree, files, memory pages, restorer blob" },
  { name: "post-restore", from: "Running post-restore scripts", to: "net: Unlock network", what: "post-restore script (RPC: runc records the restored pid), ghost files" },
  {
    name: "unlock",
    from: "net: Unlock network",
    to: "Running pre-resume scripts",
    what: "network-unlock script (RPC), then the lock method's cleanup in the netns (no log line), then seccomp and ptrace release of the tasks",
  },
  { name: "resume", from: "Running pre-resume scripts", to: CRIU_DONE, what: "pre-resume script (RPC), tasks resumed" },
];

/** Milliseconds per phase name; a phase with a missing marker (or one out of order) is absent, never 0. */
export type CriuPhases = Partial<Record<string, number>>;

/** The phases of one restore from its log text (see PHASES for the marker lines). Pure. */
export function criuPhases(log: string, phases: readonly CriuPhase[] = PHASES): CriuPhases {
  const lines = criuLogLines(log);
  const out: CriuPhases = {};
  for (const p of phases) {
    const from = p.from === "start" ? 0 : lines.findIndex((l) => l.text.includes(p.from));
    if (from < 0 || lines.length === 0) continue;
    const to = lines.findIndex((l, i) => i > from && l.text.includes(p.to));
    if (to < 0) continue;
    out[p.name] = lines[to].ms - (p.from === "start" ? 0 : lines[from].ms);
  }
  return out;
}

// ---- where restore.log is ---------------------------------------------------------------

/**
 * The restore.log of a restore whose CRIU work dir containerd chose (ctr's):
 * in the task's bundle, `<state>/io.containerd.runtime.v2.task/<ns>/<id>/work/`,
 * until the task is deleted. Undefined when there is none.
 */
export function readCtrRestoreLog(daemonDir: string, namespace: string, id: string): string | undefined {
  try {
    return fs.readFileSync(path.join(daemonDir, "state", "io.containerd.runtime.v2.task", namespace, id, "work", "restore.log"), "utf8");
  } catch {
    return undefined;
  }
}

/** The prefix of the CRIU work dirs the library makes under os.tmpdir() (provider/restore/criu-log.ts). */
const LIBRARY_WORK_DIR_PREFIX = "containerd-restore-criu-";

/**
 * Captures the restore.log of this process's library restores. A local
 * restore() gives CRIU a work dir of its own (`containerd-restore-criu-*`
 * under os.tmpdir(), passed as runc's criu_work_path) and removes it before
 * returning, so restore.log is read as tasks.Start returns or fails
 * (aroundClientCall), from a TMPDIR made private to this process here (other
 * processes' restores never land in it). Call once per process; returns a
 * function that hands out the last capture, once (undefined if none).
 */
export function captureLibraryRestoreLogs(): () => string | undefined {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-criu-"));
  process.env.TMPDIR = tmp;
  process.once("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
  const read = (): string | undefined => {
    const dir = fs.readdirSync(tmp).find((name) => name.startsWith(LIBRARY_WORK_DIR_PREFIX) && fs.existsSync(path.join(tmp, name, "restore.log")));
    return dir === undefined ? undefined : fs.readFileSync(path.join(tmp, dir, "restore.log"), "utf8");
  };
  let last: string | undefined;
  aroundClientCall(async (method, args, next) => {
    try {
      return await next(args);
    } finally {
      if (method === "tasks.Start") last = read();
    }
  });
  return () => {
    const taken = last;
    last = undefined;
    return taken;
  };
}
