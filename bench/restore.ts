/**
 * Restore benchmark: the library (planRestore + restore in a warm process)
 * against `ctr containers restore --rw --live` (a spawned process per restore,
 * as a user would run it), on one private containerd and one checkpoint.
 *
 *   bash bench/run.sh [--n 20] [--warmup 2] [--json]
 *
 * Method
 *   - One private daemon (test harness), the busybox base image and one
 *     checkpoint of the counter container (`ctr containers checkpoint --task
 *     --rw --image`), made once.
 *   - `--warmup` untimed restores per path, then `--n` timed pairs,
 *     interleaved A (library), B (ctr), A, B… so drift hits both equally.
 *   - Library wall time: planRestore + restore, fresh id each time (the plan is
 *     included because ctr also reads the checkpoint index every time).
 *   - ctr wall time: from spawn() until the process exits.
 *   - Each restored container is torn down with the library's teardown
 *     (SIGKILL at once: the restored shell is pid 1 and ignores SIGTERM),
 *     outside the timed region; ctr's leftover stdio fifo dir is removed too.
 *
 * CRIU's share of a restore
 *   Read from CRIU's own log: for ctr, `<state>/io.containerd.runtime.v2.task/<ns>/<id>/work/restore.log`,
 *   right after the restore returns (deleting the task deletes it); for the
 *   library, from the CRIU work dir restore() chose, as tasks.Start returns
 *   (restore() removes that dir; see captureLibraryCriuLogs). Every line
 *   starts with `(SS.uuuuuu)`: seconds since CRIU opened its log. CRIU's time
 *   is the timestamp of the last "Restore finished successfully" line (written
 *   once the restored tasks are resumed). The few lines after it (writing
 *   stats, the post-resume RPC notification to runc) take < 0.5 ms and are left
 *   to the overhead; if that marker is missing (other CRIU versions), the
 *   timestamp of the last line is used and the run is flagged.
 *   This excludes what happens before CRIU logs anything (runc spawning
 *   `criu swrk`, CRIU's exec and option parsing), so overhead = wall − CRIU
 *   is everything else: gRPC, containerd, the shim, runc and (for ctr) the
 *   ctr process itself.
 *
 * Targets (from the issue): library median ≤ 0.8 × ctr median; library
 * median overhead beyond CRIU ≤ 15 ms. Reported PASS/MISS; the exit status is
 * 0 either way (a measurement, not a test). Nothing is written to disk:
 * `--json` prints the results as JSON on stdout (the table then goes to stderr).
 */
import { connect, planRestore, restore, teardown, type ContainerdClient, type StepTiming } from "../provider/index";
import { MediaType, fifoDirs, importBaseImage, makeCheckpoint, removeCtrFifos, startContainerd, type PrivateContainerd } from "../test/harness/index";
import { CRIU_DONE, captureLibraryRestoreLogs, criuRestoreMs, readCtrRestoreLog } from "./criu-log";
import { f1, intFlag, median, parseFlags, printReport, quantile, runMain, systemInfo, table, timeCtr, which } from "./common";

const TARGET_RATIO = 0.8;
const TARGET_OVERHEAD_MS = 15;
const CHECKPOINT_REF = "checkpoint/bench:v1";
const CTR_TIMEOUT_MS = 120_000;
/** Teardown: no grace; the restored shell is pid 1 of its namespace and ignores SIGTERM anyway. */
const TEARDOWN = { graceMs: 0, stopSignal: "SIGKILL" } as const;

interface Args {
  n: number;
  warmup: number;
  json: boolean;
}

const USAGE = `usage: node dist/bench/restore.js [--n N] [--warmup W] [--json]
  --n N       timed restores per path (default 20)
  --warmup W  untimed restores per path first (default 2)
  --json      print the results as JSON on stdout (the table goes to stderr)`;

function parseArgs(argv: string[]): Args {
  const args: Args = { n: 20, warmup: 2, json: false };
  parseFlags(argv, USAGE, (flag, value) => {
    if (flag === "--n" || flag === "-n") args.n = intFlag("--n", value(), 1, USAGE);
    else if (flag === "--warmup") args.warmup = intFlag("--warmup", value(), 0, USAGE);
    else if (flag === "--json") args.json = true;
    else return false;
    return true;
  });
  return args;
}

/** One timed restore. */
interface Sample {
  id: string;
  wallMs: number;
  /** CRIU's share from restore.log (see the header), NaN if the log was unreadable. */
  criuMs: number;
  /** True when the log had no "Restore finished successfully" line and the last line was used. */
  criuFallback: boolean;
  /** Library only: planRestore's time and restore()'s per-step timings. */
  planMs?: number;
  steps?: StepTiming[];
}

// ---- CRIU log -----------------------------------------------------------------------

/** CRIU's restore time for ctr's restore of container `id` on `d`, from its restore.log (NaN and flagged if unreadable). */
export function readCriuMs(d: PrivateContainerd, id: string): { ms: number; fallback: boolean } {
  return criuRestoreMs(readCtrRestoreLog(d.dir, d.namespace, id));
}

/** CRIU's time of this process's library restores (captureLibraryRestoreLogs): a function handing out the last one, once. */
export function captureLibraryCriuLogs(): () => { ms: number; fallback: boolean } {
  const take = captureLibraryRestoreLogs();
  return () => criuRestoreMs(take());
}

// ---- the two paths ------------------------------------------------------------------

async function restoreWithLibrary(client: ContainerdClient, takeCriu: () => { ms: number; fallback: boolean }, id: string): Promise<Sample> {
  const t0 = performance.now();
  const plan = await planRestore(client, CHECKPOINT_REF);
  const t1 = performance.now();
  const result = await restore(client, plan, { id });
  const wallMs = performance.now() - t0;
  const criu = takeCriu();
  await teardown(client, id, TEARDOWN);
  return { id, wallMs, criuMs: criu.ms, criuFallback: criu.fallback, planMs: t1 - t0, steps: result.steps };
}

async function restoreWithCtr(d: PrivateContainerd, client: ContainerdClient, ctr: string, id: string): Promise<Sample> {
  const before = fifoDirs();
  try {
    const wallMs = await timeCtr(ctr, ["-a", d.socket, "-n", d.namespace, "containers", "restore", "--rw", "--live", id, CHECKPOINT_REF], CTR_TIMEOUT_MS);
    const criu = readCriuMs(d, id);
    return { id, wallMs, criuMs: criu.ms, criuFallback: criu.fallback };
  } finally {
    // ctr's restore carries none of this project's labels: teardown refuses it without force.
    await teardown(client, id, { ...TEARDOWN, force: true });
    removeCtrFifos(before, [id]);
  }
}

// ---- statistics ---------------------------------------------------------------------

interface PathSummary {
  n: number;
  wallMedianMs: number;
  wallP90Ms: number;
  wallMinMs: number;
  wallMaxMs: number;
  criuMedianMs: number;
  /** Median over runs of (wall − CRIU). */
  overheadMedianMs: number;
  criuFallbacks: number;
}

function summarize(samples: Sample[]): PathSummary {
  const wall = samples.map((s) => s.wallMs);
  return {
    n: samples.length,
    wallMedianMs: median(wall),
    wallP90Ms: quantile(wall, 0.9),
    wallMinMs: Math.min(...wall),
    wallMaxMs: Math.max(...wall),
    criuMedianMs: median(samples.map((s) => s.criuMs)),
    overheadMedianMs: median(samples.map((s) => s.wallMs - s.criuMs)),
    criuFallbacks: samples.filter((s) => s.criuFallback).length,
  };
}

const DAEMON_STEPS = new Set(["create-task", "start-task"]);
const LIBRARY_OWN = "library's own (wall − create/start-task)";

/**
 * The part of a library restore the library itself controls: everything but
 * tasks.Create (containerd unpacks criu.tar, starts the shim) and tasks.Start
 * (runc + CRIU), i.e. planRestore and the lease/snapshot/rw/container RPCs.
 */
function libraryOwnMs(s: Sample): number {
  return s.wallMs - s.steps!.filter((st) => DAEMON_STEPS.has(st.step)).reduce((sum, st) => sum + st.ms, 0);
}

/** Median per library phase: plan, each restore step, and start-task minus CRIU (shim + runc around CRIU). */
function libraryBreakdown(samples: Sample[]): Array<{ phase: string; medianMs: number; p90Ms: number }> {
  const phases = new Map<string, number[]>();
  const add = (phase: string, ms: number): void => {
    if (!phases.has(phase)) phases.set(phase, []);
    phases.get(phase)!.push(ms);
  };
  for (const s of samples) {
    add("planRestore", s.planMs!);
    for (const st of s.steps!) {
      add(st.step, st.ms);
      if (st.step === "start-task") add("  start-task − CRIU", st.ms - s.criuMs);
    }
    // Steps overlap (the container record alongside the snapshot, the lease release alongside
    // create-task), so their sum is not a span: what restore() spends outside create/start-task is.
    add("restore() outside create/start-task", libraryOwnMs(s) - s.planMs!);
    add(LIBRARY_OWN, libraryOwnMs(s));
  }
  return [...phases].map(([phase, v]) => ({ phase, medianMs: median(v), p90Ms: quantile(v, 0.9) }));
}

// ---- main ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
  const ctr = which("ctr");
  const started = new Date();
  log(`bench: starting a private containerd, importing busybox, checkpointing the counter…`);
  const d = await startContainerd();
  const takeCriu = captureLibraryCriuLogs();
  let client: ContainerdClient | undefined;
  try {
    client = connect(d.address, { namespace: d.namespace });
    const image = await importBaseImage(d);
    const checkpoint = await makeCheckpoint(d, { ref: CHECKPOINT_REF, image });
    const criuImageBytes = checkpoint.index.manifests.find((m) => m.mediaType === MediaType.criuCheckpoint)?.size;

    let seq = 0;
    const nextId = (p: string): string => `bench-${p}-${++seq}`;
    log(`bench: warm-up, ${args.warmup} restore(s) per path`);
    for (let i = 0; i < args.warmup; i++) {
      await restoreWithLibrary(client, takeCriu, nextId("lib"));
      await restoreWithCtr(d, client, ctr, nextId("ctr"));
    }
    const lib: Sample[] = [];
    const ctrSamples: Sample[] = [];
    for (let i = 0; i < args.n; i++) {
      lib.push(await restoreWithLibrary(client, takeCriu, nextId("lib")));
      ctrSamples.push(await restoreWithCtr(d, client, ctr, nextId("ctr")));
      log(
        `bench: ${String(i + 1).padStart(String(args.n).length)}/${args.n}  library ${f1(lib[i].wallMs)} ms (CRIU ${f1(lib[i].criuMs)})  ` +
          `ctr ${f1(ctrSamples[i].wallMs)} ms (CRIU ${f1(ctrSamples[i].criuMs)})`,
      );
    }

    const libS = summarize(lib);
    const ctrS = summarize(ctrSamples);
    const ratio = libS.wallMedianMs / ctrS.wallMedianMs;
    const ratioPass = ratio <= TARGET_RATIO;
    const overheadPass = libS.overheadMedianMs <= TARGET_OVERHEAD_MS;
    const breakdown = libraryBreakdown(lib);

    const row = (name: string, s: PathSummary): string[] => [
      name,
      f1(s.wallMedianMs),
      f1(s.wallP90Ms),
      `${f1(s.wallMinMs)}–${f1(s.wallMaxMs)}`,
      f1(s.criuMedianMs),
      f1(s.overheadMedianMs),
    ];
    const report = [
      "",
      `restore benchmark: N=${args.n} per path (+${args.warmup} warm-up), interleaved library/ctr, one daemon, one checkpoint` +
        (criuImageBytes !== undefined ? ` (criu.tar ${criuImageBytes} bytes)` : ""),
      table([
        ["path", "median ms", "p90 ms", "min–max ms", "CRIU median ms", "overhead median ms"],
        row("library (plan+restore)", libS),
        row("ctr containers restore", ctrS),
      ]),
      "",
      `ratio library/ctr (median wall): ${ratio.toFixed(3)}   target ≤ ${TARGET_RATIO}   ${ratioPass ? "PASS" : "MISS"}`,
      `library overhead beyond CRIU (median wall − CRIU): ${f1(libS.overheadMedianMs)} ms   target ≤ ${TARGET_OVERHEAD_MS} ms   ${overheadPass ? "PASS" : "MISS"}`,
      `  of which the library's own time (plan + RPCs before create-task): ${f1(median(lib.map(libraryOwnMs)))} ms; ` +
        `the rest is containerd/shim/runc (create-task, start-task − CRIU)`,
      "",
      "library breakdown (result.steps):",
      table([["phase", "median ms", "p90 ms"], ...breakdown.map((b) => [b.phase, f1(b.medianMs), f1(b.p90Ms)])]),
      ...(libS.criuFallbacks + ctrS.criuFallbacks > 0
        ? [`note: ${libS.criuFallbacks + ctrS.criuFallbacks} restore.log(s) had no "${CRIU_DONE}" line or were unreadable; last line used`]
        : []),
      "CRIU time = timestamp of restore.log's \"Restore finished successfully\" line (from CRIU opening its log).",
      "",
    ].join("\n");

    printReport(report, args.json, () => ({
      startedAt: started.toISOString(),
      n: args.n,
      warmup: args.warmup,
      env: { node: process.version, ...systemInfo(ctr) },
      checkpoint: { ref: checkpoint.ref, digest: checkpoint.digest, criuImageBytes },
      criuTimeDefinition: `timestamp of the last "${CRIU_DONE}" line of restore.log (else its last line)`,
      library: libS,
      ctr: ctrS,
      ratio,
      targets: {
        ratio: { target: TARGET_RATIO, value: ratio, pass: ratioPass },
        overheadMs: { target: TARGET_OVERHEAD_MS, value: libS.overheadMedianMs, pass: overheadPass },
      },
      libraryOwnMedianMs: median(lib.map(libraryOwnMs)),
      libraryBreakdown: breakdown,
      samples: { library: lib, ctr: ctrSamples },
    }));
  } finally {
    client?.close();
    log("bench: stopping the daemon");
    await d.stop();
  }
}

if (require.main === module) runMain(main);
