/**
 * Large-checkpoint restore benchmark: restores of processes holding 64 MiB,
 * 256 MiB and 1 GiB of random memory, the library (planRestore + restore)
 * against `ctr containers restore --rw --live`, on one private containerd.
 *
 *   bash bench/large.sh [--sizes 64,256,1024] [--rounds 3] [--warmup 1] [--json] [--out FILE]
 *
 * Method, per size (MiB)
 *   - The memory filler (bench/memory.ts: busybox dd holding N MiB of
 *     /dev/urandom bytes) is run and checkpointed once with
 *     checkpointContainer (task left running, rw layer included), then
 *     removed. criu.tar is then N MiB of incompressible pages plus a little.
 *   - A fresh child Node process (this file with --library-child) does the
 *     library's restores, so its memory is the library's alone: it reports
 *     its idle VmRSS after connecting, before its first restore, and its VmHWM
 *     (/proc/self/status) after its last. The library never reads the CRIU
 *     blob (containerd does), so the peak should not grow with N.
 *   - `--warmup` untimed rounds, then `--rounds` timed rounds; a round is one
 *     restore per path (library, ctr and the experiment below), the order
 *     rotating between rounds so page cache and drift hit every path alike.
 *   - Library wall time: planRestore + restore, measured in the child. Its
 *     result.steps give the daemon-side phases: create-task (Tasks.Create:
 *     containerd reads criu.tar from its content store and untars it into a
 *     temp dir, then starts the shim) and start-task (Tasks.Start: runc
 *     restore, i.e. CRIU); start-task − CRIU is the shim and runc around CRIU.
 *   - ctr wall time: spawn → exit of `ctr containers restore --rw --live`,
 *     under /usr/bin/time (when installed) for its peak RSS; time's own
 *     fork/exec adds about a millisecond.
 *   - CRIU's share: restore.log's "Restore finished successfully" timestamp
 *     (criuRestoreMs, see bench/criu-log.ts): for ctr read right after the
 *     restore, for the library in the child as tasks.Start returns
 *     (captureLibraryCriuLogs; restore() removes its CRIU work dir).
 *   - Untimed, after every restore: the restored task must be RUNNING (ctr
 *     tasks ls) and a process in it must again hold N MiB of anonymous
 *     memory, or the bench fails. Then the container is torn down (library
 *     teardown, SIGKILL at once, `force` for ctr's), ctr's fifo dir removed,
 *     and the `ctrd-checkpoint*` dir containerd leaves per Tasks.Create
 *     (it never removes the untarred CRIU image) deleted from its TMPDIR.
 *
 * Experiment: the faster path (a third path per round, "unpacked dir")
 *   The CRIU image untarred once per size (`tar -xf` of the criu.tar blob
 *   into the daemon's directory; its time is reported) and kept, as a cache
 *   per checkpoint digest would. The child then restores exactly as the
 *   library does, except that its tasks.Create request's runc options also
 *   carry `criu_image_path` = that directory (the request rewritten in the
 *   child by aroundClientCall; provider/ is unchanged and its policy would
 *   refuse such a path from a checkpoint). containerd then skips its unpack
 *   (services/tasks/local.go Create: getRestorePath wins over the checkpoint
 *   descriptor) and the shim hands the directory to `runc restore
 *   --image-path`. CRIU does not write to its image directory, so one
 *   directory serves every round. Same checks, teardown and clean-up.
 *
 * The daemon is stopped at the end, also on error (the harness removes its
 * containers, shims, mounts and directories). The table goes to stdout, or
 * with `--json` to stderr and the results as JSON to stdout; `--out FILE`
 * also writes the JSON to FILE. A measurement, not a test: there are no
 * targets, and the exit status is 0 unless a restore failed.
 */
import { fork, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RUNC_OPTIONS_TYPE_URL, decodeRuncOptions, encodeRuncOptions, type Any } from "../provider/containerd";
import { checkpointContainer, connect, planRestore, restore, teardown, type ContainerdClient, type StepTiming } from "../provider/index";
import { MediaType, fifoDirs, findEntry, importBaseImage, readIndex, removeContainer, removeCtrFifos, startContainerd, taskPid, taskStatus, type PrivateContainerd } from "../test/harness/index";
import { aroundClientCall, f0, f1, intFlag, median, parseFlags, printReport, runMain, systemInfo, table, timeCommand, timeSpawn, underGnuTime, which } from "./common";
import { childHolding, runMemoryFiller, statusKiB } from "./memory";
import { captureLibraryCriuLogs, readCriuMs } from "./restore";

const CTR_TIMEOUT_MS = 600_000;
/** Teardown: no grace; the restored shell is pid 1 of its namespace and ignores SIGTERM anyway. */
const TEARDOWN = { graceMs: 0, stopSignal: "SIGKILL" } as const;
const GNU_TIME = "/usr/bin/time";
const CHILD_FLAG = "--library-child";
const CHILD_ENV = "BENCH_LARGE_CHILD";
/** containerd's prefix for the temp dir it untars a CRIU image into (services/tasks/local.go Create). */
const UNPACK_DIR_PREFIX = "ctrd-checkpoint";

interface Args {
  sizes: number[];
  rounds: number;
  warmup: number;
  json: boolean;
  out?: string;
}

const USAGE = `usage: node dist/bench/large.js [--sizes 64,256,1024] [--rounds R] [--warmup W] [--json] [--out FILE]
  --sizes LIST  memory of the checkpointed process, MiB, comma-separated (default 64,256,1024)
  --rounds R    timed restores per path and size (default 3)
  --warmup W    untimed restores per path and size first (default 1)
  --json        print the results as JSON on stdout (the table goes to stderr)
  --out FILE    also write the JSON results to FILE`;

function parseSizes(value: string | undefined): number[] {
  const sizes = (value ?? "").split(",").map((s) => intFlag("--sizes", s.trim(), 1, USAGE));
  if (sizes.length === 0) throw new Error(`--sizes needs at least one size\n${USAGE}`);
  return sizes;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { sizes: [64, 256, 1024], rounds: 3, warmup: 1, json: false };
  parseFlags(argv, USAGE, (flag, value) => {
    if (flag === "--sizes") args.sizes = parseSizes(value());
    else if (flag === "--rounds") args.rounds = intFlag("--rounds", value(), 1, USAGE);
    else if (flag === "--warmup") args.warmup = intFlag("--warmup", value(), 0, USAGE);
    else if (flag === "--json") args.json = true;
    else if (flag === "--out") args.out = value();
    else return false;
    return true;
  });
  return args;
}

// ---- the library child process ------------------------------------------------------

interface ChildInit {
  address: string;
  namespace: string;
  ref: string;
}
/** `criuImagePath`: the experiment's unpacked CRIU image (see the header); none: the library as it is. */
type ToChild = { cmd: "restore"; id: string; criuImagePath?: string } | { cmd: "exit" };
/** One library restore as the child timed it. */
interface LibraryRestore {
  wallMs: number;
  planMs: number;
  pid: number;
  steps: StepTiming[];
  /** CRIU's share, from the restore.log of the work dir restore() chose (see captureLibraryCriuLogs). */
  criu: { ms: number; fallback: boolean };
}
type FromChild =
  | { kind: "ready"; rssKiB: number; hwmKiB: number }
  | { kind: "restored"; restore: LibraryRestore }
  | { kind: "exiting"; rssKiB: number; hwmKiB: number }
  | { kind: "error"; message: string };

/**
 * While `path()` names a directory, tasks.Create requests of this process also
 * carry it as runc's `criu_image_path` (the options restore() sent, decoded and
 * re-encoded with it; the checkpoint descriptor is left in, containerd ignores it).
 */
function redirectCriuImage(path: () => string | undefined): void {
  aroundClientCall((method, args, next) => {
    const dir = path();
    if (method !== "tasks.Create" || dir === undefined) return next(args);
    const [request, ...rest] = args as [{ options?: Any }, ...unknown[]];
    const options = request.options ? decodeRuncOptions(request.options.value).options : {};
    const typeUrl = request.options?.typeUrl ?? RUNC_OPTIONS_TYPE_URL;
    return next([{ ...request, options: { typeUrl, value: encodeRuncOptions({ ...options, criuImagePath: dir }) } }, ...rest]);
  });
}

/** The child: restores on request (planRestore + restore, timed), reports its memory when it starts and exits. */
function childMain(): Promise<void> {
  const init = JSON.parse(process.env[CHILD_ENV] ?? "") as ChildInit;
  const takeCriu = captureLibraryCriuLogs();
  let criuImagePath: string | undefined;
  redirectCriuImage(() => criuImagePath);
  const client = connect(init.address, { namespace: init.namespace });
  const send = (m: FromChild): void => void process.send!(m);
  const memory = (): { rssKiB: number; hwmKiB: number } => ({ rssKiB: statusKiB("self", "VmRSS"), hwmKiB: statusKiB("self", "VmHWM") });
  process.on("disconnect", () => process.exit(0));
  process.on("message", (m: ToChild) => {
    if (m.cmd === "exit") {
      send({ kind: "exiting", ...memory() });
      client.close();
      process.disconnect();
      return;
    }
    void (async () => {
      try {
        criuImagePath = m.criuImagePath;
        const t0 = performance.now();
        const plan = await planRestore(client, init.ref);
        const t1 = performance.now();
        const result = await restore(client, plan, { id: m.id });
        send({ kind: "restored", restore: { wallMs: performance.now() - t0, planMs: t1 - t0, pid: result.pid, steps: result.steps, criu: takeCriu() } });
      } catch (err) {
        send({ kind: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
    })();
  });
  send({ kind: "ready", ...memory() });
  return Promise.resolve();
}

/** The child's next message; rejects if it exits first or reports an error. */
function nextMessage(child: ChildProcess): Promise<FromChild> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromChild): void => {
      off();
      if (m.kind === "error") reject(new Error(`library child: ${m.message}`));
      else resolve(m);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      off();
      reject(new Error(`library child exited (${code ?? signal})`));
    };
    const off = (): void => {
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.on("exit", onExit);
  });
}

/** Sends `msg` and resolves the child's reply of kind `kind`. */
async function ask<K extends FromChild["kind"]>(child: ChildProcess, msg: ToChild, kind: K): Promise<Extract<FromChild, { kind: K }>> {
  const reply = nextMessage(child);
  child.send(msg);
  const m = await reply;
  if (m.kind !== kind) throw new Error(`library child: expected ${kind}, got ${m.kind}`);
  return m as Extract<FromChild, { kind: K }>;
}

/** Forks a library child for `ref` and waits until it is ready (connected, nothing restored yet). */
async function startChild(d: PrivateContainerd, ref: string): Promise<{ child: ChildProcess; idle: { rssKiB: number; hwmKiB: number } }> {
  const init: ChildInit = { address: d.address, namespace: d.namespace, ref };
  const child = fork(__filename, [CHILD_FLAG], { env: { ...process.env, [CHILD_ENV]: JSON.stringify(init) }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const ready = await nextMessage(child);
  if (ready.kind !== "ready") throw new Error(`library child: expected ready, got ${ready.kind}`);
  return { child, idle: ready };
}

// ---- one restore per path, checked and torn down ------------------------------------

/** One timed restore of either path. */
interface Round {
  id: string;
  wallMs: number;
  /** CRIU's share (restore.log), NaN if unreadable. */
  criuMs: number;
  criuFallback: boolean;
  /** Library: Tasks.Create and Tasks.Start as restore() timed them. */
  createTaskMs?: number;
  startTaskMs?: number;
  planMs?: number;
  /** ctr: its peak RSS (GNU time %M), KiB. */
  peakRssKiB?: number;
  /** The `ctrd-checkpoint*` dirs containerd untarred for this restore (1 when it unpacked, 0 with criu_image_path). */
  containerdUnpackDirs: number;
}

/** What a restore of one size needs. */
interface SizeContext {
  d: PrivateContainerd;
  client: ContainerdClient;
  ctr: string;
  ref: string;
  memMib: number;
}

/** Throws unless `id`'s task is RUNNING and a process in it holds the checkpoint's memory again. */
async function assertRestored(c: SizeContext, id: string): Promise<void> {
  const status = await taskStatus(c.d, id);
  if (status !== "RUNNING") throw new Error(`restored ${id} is ${status ?? "without a task"}, not RUNNING`);
  const pid = await taskPid(c.d, id);
  if (!childHolding(pid, c.memMib * 1024)) throw new Error(`restored ${id} (pid ${pid}) has no process holding ${c.memMib} MiB`);
}

/** Removes the untarred CRIU images containerd leaves in its TMPDIR, one per Tasks.Create that unpacked; returns how many. */
function removeUnpackDirs(d: PrivateContainerd): number {
  const dirs = fs.readdirSync(d.tmpDir).filter((name) => name.startsWith(UNPACK_DIR_PREFIX));
  for (const name of dirs) fs.rmSync(path.join(d.tmpDir, name), { recursive: true, force: true });
  return dirs.length;
}

const stepMs = (steps: StepTiming[], step: StepTiming["step"]): number => steps.find((s) => s.step === step)?.ms ?? NaN;

/** A library restore in the child; with `criuImagePath`, the experiment's (see the header). */
async function restoreWithLibrary(c: SizeContext, child: ChildProcess, id: string, criuImagePath?: string): Promise<Round> {
  try {
    const { restore: r } = await ask(child, { cmd: "restore", id, criuImagePath }, "restored");
    await assertRestored(c, id);
    return {
      id,
      containerdUnpackDirs: removeUnpackDirs(c.d),
      wallMs: r.wallMs,
      criuMs: r.criu.ms,
      criuFallback: r.criu.fallback,
      createTaskMs: stepMs(r.steps, "create-task"),
      startTaskMs: stepMs(r.steps, "start-task"),
      planMs: r.planMs,
    };
  } finally {
    await teardown(c.client, id, TEARDOWN);
    removeUnpackDirs(c.d);
  }
}

/** `ctr containers restore --rw --live`, under GNU time when it is installed. */
async function timeCtrRestore(c: SizeContext, id: string): Promise<{ wallMs: number; peakRssKiB?: number }> {
  const argv = [c.ctr, "-a", c.d.socket, "-n", c.d.namespace, "containers", "restore", "--rw", "--live", id, c.ref];
  const [cmd, ...args] = fs.existsSync(GNU_TIME) ? underGnuTime("ctr", argv) : argv;
  const run = await timeCommand(cmd, args, CTR_TIMEOUT_MS);
  return { wallMs: run.wallMs, peakRssKiB: run.procs[0]?.maxRssKiB };
}

async function restoreWithCtr(c: SizeContext, id: string): Promise<Round> {
  const before = fifoDirs();
  try {
    const { wallMs, peakRssKiB } = await timeCtrRestore(c, id);
    const criu = readCriuMs(c.d, id);
    await assertRestored(c, id);
    return { id, wallMs, criuMs: criu.ms, criuFallback: criu.fallback, peakRssKiB, containerdUnpackDirs: removeUnpackDirs(c.d) };
  } finally {
    // ctr's restore carries none of this project's labels: teardown refuses it without force.
    await teardown(c.client, id, { ...TEARDOWN, force: true });
    removeCtrFifos(before, [id]);
    removeUnpackDirs(c.d);
  }
}

/** Untars the criu.tar blob into a fresh directory under the daemon's own; resolves the directory and tar's time. */
async function unpackCriuImage(d: PrivateContainerd, criuDigest: string): Promise<{ dir: string; ms: number }> {
  const blob = path.join(d.dir, "root", "io.containerd.content.v1.content", "blobs", ...criuDigest.split(":"));
  const dir = fs.mkdtempSync(path.join(d.dir, "criu-unpacked-"));
  const r = await timeSpawn("tar", ["-xf", blob, "-C", dir], CTR_TIMEOUT_MS);
  if (r.code !== 0) throw new Error(`tar -xf ${blob} failed (${r.code ?? r.signal}): ${r.stderr.trim()}`);
  return { dir, ms: r.wallMs };
}

// ---- one size -----------------------------------------------------------------------

/** Medians of the library's rounds, either way it ran (as it is, or the experiment). */
interface LibrarySummary {
  wallMedianMs: number;
  criuMedianMs: number;
  createTaskMedianMs: number;
  startTaskMedianMs: number;
  /** Median over rounds of start-task − CRIU. */
  startTaskMinusCriuMedianMs: number;
  planMedianMs: number;
  roundsMs: number[];
  rounds: Round[];
}

/** The JSON record of one size (field names are read by the plotting script). */
interface SizeResult {
  memMib: number;
  criuImageBytes: number;
  checkpointMs: number;
  fillerRssAnonKiB: number;
  library: LibrarySummary & {
    idleRssMiB: number;
    /** The child's VmHWM after its last restore (the whole life of the process). */
    peakRssMiB: number;
    /** VmHWM when it was idle: node's start-up peak, before any restore. */
    idleHwmMiB: number;
  };
  ctr: { wallMedianMs: number; criuMedianMs: number; peakRssMiB: number | null; roundsMs: number[]; rounds: Round[] };
  ratio: number;
  /** The experiment (see the header): the CRIU image untarred once, passed as criu_image_path. */
  unpackedDir: LibrarySummary & { untarOnceMs: number; createTaskSavedMs: number; wallSavedMs: number };
  criuFallbacks: number;
}

/** The timed rounds of one size, per path. */
interface SizeRounds {
  library: Round[];
  ctr: Round[];
  unpackedDir: Round[];
}

const toMiB = (kib: number): number => kib / 1024;
const PATHS = ["library", "ctr", "unpackedDir"] as const;

/** Runs warm-up and timed rounds, each path once per round, the order rotating; returns the timed ones. */
async function runRounds(c: SizeContext, child: ChildProcess, unpacked: string, args: Args, log: (m: string) => void): Promise<SizeRounds> {
  const timed: SizeRounds = { library: [], ctr: [], unpackedDir: [] };
  let seq = 0;
  const run = {
    library: () => restoreWithLibrary(c, child, `large-${c.memMib}-lib-${++seq}`),
    ctr: () => restoreWithCtr(c, `large-${c.memMib}-ctr-${++seq}`),
    unpackedDir: () => restoreWithLibrary(c, child, `large-${c.memMib}-dir-${++seq}`, unpacked),
  };
  for (let i = 0; i < args.warmup + args.rounds; i++) {
    const got: Partial<Record<(typeof PATHS)[number], Round>> = {};
    for (let k = 0; k < PATHS.length; k++) {
      const p = PATHS[(i + k) % PATHS.length];
      got[p] = await run[p]();
    }
    const warm = i < args.warmup;
    if (!warm) for (const p of PATHS) timed[p].push(got[p]!);
    const l = got.library!;
    log(
      `${c.memMib} MiB ${warm ? "warm-up" : `${i - args.warmup + 1}/${args.rounds}`}: library ${f0(l.wallMs)} ms ` +
        `(create-task ${f0(l.createTaskMs!)}, start-task ${f0(l.startTaskMs!)}, CRIU ${f0(l.criuMs)})  ctr ${f0(got.ctr!.wallMs)} ms (CRIU ${f0(got.ctr!.criuMs)})  ` +
        `unpacked dir ${f0(got.unpackedDir!.wallMs)} ms (create-task ${f0(got.unpackedDir!.createTaskMs!)})`,
    );
  }
  return timed;
}

/** Fills, checkpoints and restores one size; returns its record. */
async function benchSize(d: PrivateContainerd, client: ContainerdClient, ctr: string, memMib: number, args: Args, log: (m: string) => void): Promise<SizeResult> {
  const fillerId = `bench-fill-${memMib}`;
  const ref = `checkpoint/large-${memMib}:v1`;
  log(`${memMib} MiB: filling and checkpointing ${fillerId}`);
  const filler = await runMemoryFiller(d, fillerId, memMib);
  const made = await checkpointContainer(client, fillerId, { ref });
  await removeContainer(d, fillerId);
  const criuDigest = findEntry(await readIndex(d, made.digest), MediaType.criuCheckpoint)?.digest;
  if (!criuDigest) throw new Error(`checkpoint ${ref} has no CRIU image`);
  const unpacked = await unpackCriuImage(d, criuDigest);
  log(`${memMib} MiB: criu.tar ${f1(made.criuImageBytes / 2 ** 20)} MiB, checkpointed in ${f0(made.durationMs)} ms, untarred once in ${f0(unpacked.ms)} ms`);

  const c: SizeContext = { d, client, ctr, ref, memMib };
  const { child, idle } = await startChild(d, ref);
  try {
    const rounds = await runRounds(c, child, unpacked.dir, args, log);
    const exiting = await ask(child, { cmd: "exit" }, "exiting");
    return summarizeSize(memMib, made, filler.rssAnonKiB, unpacked.ms, rounds, idle, exiting);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    fs.rmSync(unpacked.dir, { recursive: true, force: true });
    await client.call("images.Delete", { name: ref, sync: true });
  }
}

function summarizeLibrary(rounds: Round[]): LibrarySummary {
  const med = (f: (r: Round) => number): number => median(rounds.map(f));
  return {
    wallMedianMs: med((r) => r.wallMs),
    criuMedianMs: med((r) => r.criuMs),
    createTaskMedianMs: med((r) => r.createTaskMs!),
    startTaskMedianMs: med((r) => r.startTaskMs!),
    startTaskMinusCriuMedianMs: med((r) => r.startTaskMs! - r.criuMs),
    planMedianMs: med((r) => r.planMs!),
    roundsMs: rounds.map((r) => r.wallMs),
    rounds,
  };
}

function summarizeSize(
  memMib: number,
  made: { criuImageBytes: number; durationMs: number },
  fillerRssAnonKiB: number,
  untarOnceMs: number,
  rounds: SizeRounds,
  idle: { rssKiB: number; hwmKiB: number },
  exiting: { rssKiB: number; hwmKiB: number },
): SizeResult {
  const ctrPeaks = rounds.ctr.map((r) => r.peakRssKiB).filter((k): k is number => k !== undefined);
  const library = { ...summarizeLibrary(rounds.library), idleRssMiB: toMiB(idle.rssKiB), peakRssMiB: toMiB(exiting.hwmKiB), idleHwmMiB: toMiB(idle.hwmKiB) };
  const dir = summarizeLibrary(rounds.unpackedDir);
  const ctr = {
    wallMedianMs: median(rounds.ctr.map((r) => r.wallMs)),
    criuMedianMs: median(rounds.ctr.map((r) => r.criuMs)),
    peakRssMiB: ctrPeaks.length > 0 ? toMiB(Math.max(...ctrPeaks)) : null,
    roundsMs: rounds.ctr.map((r) => r.wallMs),
    rounds: rounds.ctr,
  };
  return {
    memMib,
    criuImageBytes: made.criuImageBytes,
    checkpointMs: made.durationMs,
    fillerRssAnonKiB,
    library,
    ctr,
    ratio: library.wallMedianMs / ctr.wallMedianMs,
    unpackedDir: {
      ...dir,
      untarOnceMs,
      createTaskSavedMs: library.createTaskMedianMs - dir.createTaskMedianMs,
      wallSavedMs: library.wallMedianMs - dir.wallMedianMs,
    },
    criuFallbacks: PATHS.flatMap((p) => rounds[p]).filter((r) => r.criuFallback).length,
  };
}

// ---- report -------------------------------------------------------------------------

const pct = (part: number, whole: number): string => (Number.isNaN(part / whole) ? "n/a" : `${f0((100 * part) / whole)}%`);
const mibOrNa = (x: number | null): string => (x === null ? "n/a" : f1(x));
const withShare = (ms: number, whole: number): string => `${f0(ms)} (${pct(ms, whole)})`;

function report(args: Args, sizes: SizeResult[]): string {
  const wall = sizes.map((s) => [
    String(s.memMib),
    f1(s.criuImageBytes / 2 ** 20),
    f0(s.library.wallMedianMs),
    f0(s.ctr.wallMedianMs),
    s.ratio.toFixed(3),
    f0(s.library.criuMedianMs),
    f0(s.ctr.criuMedianMs),
  ]);
  const phases = sizes.map((s) => [
    String(s.memMib),
    withShare(s.library.createTaskMedianMs, s.library.wallMedianMs),
    withShare(s.library.startTaskMedianMs, s.library.wallMedianMs),
    withShare(s.library.criuMedianMs, s.library.wallMedianMs),
    f0(s.library.startTaskMinusCriuMedianMs),
    f1(s.library.planMedianMs),
  ]);
  const experiment = sizes.map((s) => [
    String(s.memMib),
    f0(s.unpackedDir.wallMedianMs),
    f0(s.unpackedDir.createTaskMedianMs),
    f0(s.unpackedDir.criuMedianMs),
    withShare(s.unpackedDir.createTaskSavedMs, s.library.wallMedianMs),
    withShare(s.unpackedDir.wallSavedMs, s.library.wallMedianMs),
    f0(s.unpackedDir.untarOnceMs),
  ]);
  const memory = sizes.map((s) => [String(s.memMib), f1(s.library.idleRssMiB), f1(s.library.idleHwmMiB), f1(s.library.peakRssMiB), mibOrNa(s.ctr.peakRssMiB)]);
  const fallbacks = sizes.reduce((n, s) => n + s.criuFallbacks, 0);
  const unpacks = (rounds: (s: SizeResult) => Round[]): number => sizes.flatMap(rounds).reduce((n, r) => n + r.containerdUnpackDirs, 0);
  return [
    "",
    `large-checkpoint restore benchmark: ${args.rounds} timed round(s) per path and size (+${args.warmup} warm-up), interleaved, order rotating, one daemon`,
    table([["MiB", "criu.tar MiB", "library ms", "ctr ms", "lib/ctr", "CRIU lib ms", "CRIU ctr ms"], ...wall]),
    "",
    "library phases (median ms, share of the library's wall time):",
    table([["MiB", "create-task", "start-task", "CRIU", "start-task − CRIU", "planRestore"], ...phases]),
    "  create-task = Tasks.Create: containerd untars criu.tar into a temp dir, starts the shim; start-task = Tasks.Start: runc restore (CRIU)",
    "",
    "experiment, CRIU image untarred once and passed as runc criu_image_path (median ms; saved = library − this, share of library wall):",
    table([["MiB", "wall", "create-task", "CRIU", "create-task saved", "wall saved", "one-off tar -x"], ...experiment]),
    `  containerd's ctrd-checkpoint* dirs (its unpacks), total over timed rounds: library ${unpacks((s) => s.library.rounds)}, ` +
      `experiment ${unpacks((s) => s.unpackedDir.rounds)}`,
    "",
    "peak RSS (MiB): library child process (fresh per size) and ctr (GNU time %M, max over rounds)",
    table([["MiB", "library idle RSS", "library idle HWM", "library peak (VmHWM)", "ctr peak"], ...memory]),
    ...(fallbacks > 0 ? [`note: ${fallbacks} restore.log(s) had no "Restore finished successfully" line or were unreadable; last line used`] : []),
    `load average (1 min) at end ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs`,
    "",
  ].join("\n");
}

// ---- main ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = { at: new Date(), loadavg: os.loadavg() };
  const ctr = which("ctr");
  const log = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);
  log("starting a private containerd, importing busybox");
  const d = await startContainerd();
  let client: ContainerdClient | undefined;
  try {
    client = connect(d.address, { namespace: d.namespace });
    await importBaseImage(d);
    const sizes: SizeResult[] = [];
    for (const memMib of args.sizes) sizes.push(await benchSize(d, client, ctr, memMib, args, log));
    const result = {
      startedAt: started.at.toISOString(),
      env: { node: process.version, ...systemInfo(ctr), loadavgAtStart: started.loadavg, loadavgAtEnd: os.loadavg() },
      rounds: args.rounds,
      warmup: args.warmup,
      sizes,
    };
    printReport(report(args, sizes), args.json, () => result);
    if (args.out) fs.writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    client?.close();
    log("stopping the daemon");
    await d.stop();
  }
}

if (require.main === module) runMain(process.argv.includes(CHILD_FLAG) ? childMain : main);
