/**
 * Transfer and checkpoint benchmark: the library's copyCheckpoint and
 * checkpointContainer against the ctr commands a user would run, on two
 * private containerd daemons (A and B) in one run.
 *
 *   bash bench/transfer.sh [--rounds 5] [--checkpoint-rounds 10] [--warmup 1] [--mem-mib 256] [--json]
 *
 * 1. Transfer. A busybox container on A fills --mem-mib MiB of anonymous
 *    process memory with random bytes: `dd if=/dev/urandom bs=<M>M count=1
 *    iflag=fullblock | sleep …` — dd mallocs one <M> MiB buffer, fills it
 *    and then blocks writing it into a pipe nobody reads, so the buffer stays
 *    resident (waited for: dd's RssAnon ≥ M MiB) and CRIU must dump it as
 *    pages (incompressible, nothing to dedupe). It is checkpointed once with
 *    checkpointContainer (`--rw`, task left running, then removed). B gets
 *    the base image (imported and unpacked) before anything is timed, so both
 *    paths find it there and move only the checkpoint's own blobs.
 *    Paths, interleaved per round (the order alternates), after `--warmup`
 *    untimed rounds:
 *      library: copyCheckpoint(A, B, ref) in a long-lived child Node process
 *               (forked from this file with --copy-worker); wall time of the
 *               call, measured in the child.
 *      ctr:     bash -c 'set -o pipefail; ctr -a A -n NSA images export
 *               --skip-manifest-json - REF | ctr -a B -n NSB images import
 *               --no-unpack -'; wall time from spawn to exit (includes two
 *               ctr start-ups, a few ms). Each ctr runs under /usr/bin/time
 *               for its CPU time and peak RSS.
 *    After every copy B is checked (same ref, same index digest) and cleared,
 *    untimed: every image but the base image deleted (the last with sync=true,
 *    so GC runs), then polled until none of the checkpoint's own blobs is left.
 *    Throughput = the checkpoint's own bytes (index + every entry but the base
 *    image manifest; what copyCheckpoint reports as bytesMoved) / wall time,
 *    in MB/s (10^6 bytes/s). Target: library ≥ 1.0 × ctr (median MB/s).
 *    Peak RSS of the copying process: VmHWM from /proc/self/status of the
 *    child, reset before every copy (`echo 5 > /proc/self/clear_refs`), the
 *    maximum over the timed copies. Target ≤ 150 MiB. The child also samples
 *    process.memoryUsage() every 20 ms during a copy (heap, external,
 *    arrayBuffers) to show where memory goes. CPU time per round of the client
 *    process(es) and of both daemons (/proc/<pid>/stat) is reported too.
 * 2. Checkpoint creation. Each round runs two fresh counter containers on A
 *    (the harness's COUNTER_SCRIPT, count ≥ 3 first), then, in alternating
 *    order: checkpointContainer(A, id, { ref }) in this process (warm client)
 *    and `ctr containers checkpoint --task --rw --image ID REF` (spawn →
 *    exit). Both leave the task running. Fresh containers for both paths,
 *    because containerd 1.6 cannot checkpoint one container twice. Untimed:
 *    both checkpoints checked (CRIU image and spec present), containers
 *    removed, checkpoint images deleted (sync GC). The library's RPCs are
 *    timed per method (ContainerdClient.prototype.call wrapped by this file)
 *    for a breakdown. Target: library median ≤ 1.1 × ctr median.
 *
 * The exit status is 0 whether targets pass or miss (a measurement, not a
 * test). `--json` prints the results as JSON on stdout (the table then goes to
 * stderr). Everything is cleaned up at the end, also on error or SIGINT: the
 * worker is killed, both daemons stopped (the harness removes their containers,
 * shims, mounts and directories).
 */
import { fork, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import { checkpointContainer, connect, copyCheckpoint, isContainerdError, type Descriptor } from "../provider/index";
import { H2_TUNING, ContainerdClient, STREAM_TUNING } from "../provider/containerd";
import {
  BASE_IMAGE_NAME,
  MediaType,
  importBaseImage,
  readIndex,
  removeContainer,
  runCounter,
  startContainerd,
  uniqueId,
  waitFor,
  waitForCount,
  type PrivateContainerd,
} from "../test/harness/index";
import { runMemoryFiller, statusKiB } from "./memory";
import { f1, intFlag, median, parseFlags, printReport, quantile, runMain, systemInfo, table, timeCommand, underGnuTime, which, type TimedRun } from "./common";

const TARGET_THROUGHPUT_RATIO = 2.5;
/** Peak RSS of the copying process at most its idle RSS plus this, whatever the checkpoint size. */
const TARGET_PEAK_RSS_OVER_IDLE_MIB = 32;
/** Client CPU per MB of the library at most this × the "before" build's (with --baseline). */
const TARGET_CPU_RATIO = 0.5;
const TARGET_CHECKPOINT_RATIO = 1.1;
const TRANSFER_REF = "checkpoint/transfer:v1";
const MEM_CONTAINER = "bench-mem";
const CTR_TIMEOUT_MS = 600_000;
const GC_TIMEOUT_MS = 60_000;
const MEM_SAMPLE_MS = 20;

interface Args {
  rounds: number;
  checkpointRounds: number;
  warmup: number;
  memMib: number;
  json: boolean;
  /** A build of an earlier revision (its dist/bench/transfer.js is forked as the "before" worker). */
  baseline?: string;
  /** Write V8 CPU profiles of the copy workers here (node --cpu-prof, on worker exit). */
  cpuProf?: string;
  /** Node options for this build's worker only, e.g. --max-semi-space-size=1 (what a user could set in NODE_OPTIONS). */
  workerNodeOptions?: string;
  /** JSON of pipeline knobs for the library worker (STREAM_TUNING, H2_TUNING), e.g. {"rangeBytes":4194304}. */
  tuning?: string;
}

const USAGE = `usage: node dist/bench/transfer.js [--rounds N] [--checkpoint-rounds N] [--warmup W] [--mem-mib M] [--json]
  --rounds N             timed transfer rounds per path (default 5)
  --checkpoint-rounds N  timed checkpoint rounds per path (default 10)
  --warmup W             untimed rounds per path first, both benchmarks (default 1)
  --mem-mib M            anonymous memory of the checkpointed process, MiB (default 256)
  --json                 print the results as JSON on stdout (the table goes to stderr)
  --baseline DIR         also copy with the build in DIR (an earlier revision, built by bench/transfer.sh
                         --baseline-rev REV): a third path "before", interleaved with the others
  --cpu-prof DIR         node --cpu-prof for the copy worker(s), profiles written to DIR when they exit
  --worker-node-options "OPTS"  node options for this build's worker only (e.g. --max-semi-space-size=1)
  --checkpoint-rounds 0  skips the checkpoint benchmark
  --tuning JSON          pipeline knobs for this build's worker, e.g. '{"rangeBytes":4194304,"streamWindow":65535}'
                         (rangeBytes, inFlightBytes, writeBytes, readAheadBytes, streamWindow, sessionWindow)`;

function parseArgs(argv: string[]): Args {
  const args: Args = { rounds: 5, checkpointRounds: 10, warmup: 1, memMib: 256, json: false };
  parseFlags(argv, USAGE, (flag, value) => {
    if (flag === "--rounds") args.rounds = intFlag("--rounds", value(), 1, USAGE);
    else if (flag === "--checkpoint-rounds") args.checkpointRounds = intFlag("--checkpoint-rounds", value(), 0, USAGE);
    else if (flag === "--baseline") args.baseline = value();
    else if (flag === "--cpu-prof") args.cpuProf = value();
    else if (flag === "--worker-node-options") args.workerNodeOptions = value();
    else if (flag === "--tuning") args.tuning = value();
    else if (flag === "--warmup") args.warmup = intFlag("--warmup", value(), 0, USAGE);
    else if (flag === "--mem-mib") args.memMib = intFlag("--mem-mib", value(), 1, USAGE);
    else if (flag === "--json") args.json = true;
    else return false;
    return true;
  });
  return args;
}

// ---- /proc helpers ------------------------------------------------------------------

const CLK_TCK = 100;

/** utime + stime of a process in ms (NaN if it is gone). */
function procCpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

// ---- copy worker (child process) ----------------------------------------------------

interface WorkerInit {
  a: { address: string; namespace: string };
  b: { address: string; namespace: string };
}
type ToWorker = { cmd: "copy"; ref: string } | { cmd: "exit" };
interface CopySample {
  wallMs: number;
  bytesMoved: number;
  blobsCopied: number;
  blobsPresent: number;
  cpuMs: number;
  /** VmHWM after the copy; reset to the current RSS just before it (NaN-free only if the reset worked). */
  hwmKiB: number;
  hwmReset: boolean;
  rssBeforeKiB: number;
  /** Maxima of process.memoryUsage() fields sampled during the copy, bytes. */
  peak: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
}
type FromWorker =
  | { kind: "ready"; rssKiB: number; hwmKiB: number }
  | { kind: "copied"; sample: CopySample }
  | { kind: "error"; message: string };

function resetHwm(): boolean {
  try {
    fs.writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** The child: copies on request and reports time and memory. */
async function workerMain(): Promise<void> {
  const init = JSON.parse(process.env.BENCH_TRANSFER_WORKER ?? "") as WorkerInit;
  // --tuning: the pipeline's knobs, set before the first connection (an earlier build ignores them).
  const tuning = JSON.parse(process.env.BENCH_TUNING || "{}") as Record<string, number>;
  for (const [k, v] of Object.entries(tuning)) {
    const knobs = k in STREAM_TUNING ? STREAM_TUNING : k in H2_TUNING ? H2_TUNING : undefined;
    if (!knobs) throw new Error(`--tuning: unknown knob ${k} (known: ${[...Object.keys(STREAM_TUNING), ...Object.keys(H2_TUNING)].join(", ")})`);
    (knobs as Record<string, number>)[k] = v;
  }
  const source = connect(init.a.address, { namespace: init.a.namespace });
  const target = connect(init.b.address, { namespace: init.b.namespace });
  const send = (m: FromWorker): void => void process.send!(m);
  process.on("disconnect", () => process.exit(0));
  process.on("message", (m: ToWorker) => {
    void (async () => {
      if (m.cmd === "exit") {
        source.close();
        target.close();
        process.disconnect();
        return;
      }
      try {
        const peak = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
        const sample = (): void => {
          const u = process.memoryUsage();
          for (const k of Object.keys(peak) as Array<keyof typeof peak>) peak[k] = Math.max(peak[k], u[k]);
        };
        const rssBeforeKiB = statusKiB("self", "VmRSS");
        const hwmReset = resetHwm();
        const timer = setInterval(sample, MEM_SAMPLE_MS);
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        let result;
        try {
          result = await copyCheckpoint(source, target, m.ref);
        } finally {
          clearInterval(timer);
        }
        const wallMs = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        sample();
        send({
          kind: "copied",
          sample: {
            wallMs,
            bytesMoved: result.bytesMoved,
            blobsCopied: result.blobsCopied,
            blobsPresent: result.blobsPresent,
            cpuMs: (cpu.user + cpu.system) / 1000,
            hwmKiB: statusKiB("self", "VmHWM"),
            hwmReset,
            rssBeforeKiB,
            peak,
          },
        });
      } catch (err) {
        send({ kind: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
    })();
  });
  send({ kind: "ready", rssKiB: statusKiB("self", "VmRSS"), hwmKiB: statusKiB("self", "VmHWM") });
}

/** The parent's handle on the worker. */
class Worker {
  private readonly child: ChildProcess;
  private waiting: { resolve: (m: FromWorker) => void; reject: (e: Error) => void } | undefined;
  private exited = false;
  private readonly inbox: FromWorker[] = [];
  readonly pid: number;

  /** `script`: this file, or an earlier build's (same worker protocol); `execArgv` e.g. --cpu-prof. */
  constructor(init: WorkerInit, script: string = __filename, execArgv: string[] = [], tuning = "") {
    this.child = fork(script, ["--copy-worker"], {
      env: { ...process.env, BENCH_TRANSFER_WORKER: JSON.stringify(init), BENCH_TUNING: tuning },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      execArgv,
    });
    this.pid = this.child.pid!;
    this.child.on("message", (m: FromWorker) => {
      const w = this.waiting;
      this.waiting = undefined;
      // Kept when nobody waits yet (a second worker's "ready" arrives while the first is awaited).
      if (w) w.resolve(m);
      else this.inbox.push(m);
    });
    this.child.on("exit", (code, signal) => {
      this.exited = true;
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(new Error(`copy worker exited (${code ?? signal})`));
    });
  }

  private next(): Promise<FromWorker> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      if (this.exited) reject(new Error("copy worker is not running"));
      else this.waiting = { resolve, reject };
    });
  }

  async ready(): Promise<{ rssKiB: number; hwmKiB: number }> {
    const m = await this.next();
    if (m.kind !== "ready") throw new Error(`copy worker: unexpected ${m.kind}`);
    return m;
  }

  async copy(ref: string): Promise<CopySample> {
    const reply = this.next();
    this.child.send({ cmd: "copy", ref } satisfies ToWorker);
    const m = await reply;
    if (m.kind === "error") throw new Error(`copy worker: ${m.message}`);
    if (m.kind !== "copied") throw new Error(`copy worker: unexpected ${m.kind}`);
    return m.sample;
  }

  /** Asks the worker to exit; SIGKILL if it has not after 5 s. Idempotent. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    try {
      this.child.send({ cmd: "exit" } satisfies ToWorker);
    } catch {
      /* channel already closed */
    }
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await gone;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exited) this.child.kill("SIGKILL");
  }
}

// ---- ctr ----------------------------------------------------------------------------

const sh = (argv: string[]): string => argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");

function ctrTransfer(ctr: string, a: PrivateContainerd, b: PrivateContainerd, ref: string): Promise<TimedRun> {
  const exp = underGnuTime("export", [ctr, "-a", a.socket, "-n", a.namespace, "images", "export", "--skip-manifest-json", "-", ref]);
  const imp = underGnuTime("import", [ctr, "-a", b.socket, "-n", b.namespace, "images", "import", "--no-unpack", "-"]);
  return timeCommand("bash", ["-c", `set -o pipefail; ${sh(exp)} | ${sh(imp)}`], CTR_TIMEOUT_MS);
}

// ---- daemon-side helpers ------------------------------------------------------------

/** Deletes every image on `client` but the base image (the last with sync GC) and waits until `digests` are gone. */
async function clearImages(client: ContainerdClient, digests: string[]): Promise<number> {
  const t0 = performance.now();
  const { images } = await client.call("images.List", {});
  const doomed = images.map((i) => i.name).filter((n) => n !== BASE_IMAGE_NAME);
  for (let i = 0; i < doomed.length; i++) {
    await client.call("images.Delete", { name: doomed[i], sync: i === doomed.length - 1 }).catch((err: unknown) => {
      if (!isContainerdError(err, "not-found")) throw err;
    });
  }
  await waitFor(
    async () => {
      for (const digest of digests) {
        const present = await client.call("content.Info", { digest }).then(
          () => true,
          (err: unknown) => {
            if (isContainerdError(err, "not-found")) return false;
            throw err;
          },
        );
        if (present) return undefined;
      }
      return true;
    },
    GC_TIMEOUT_MS,
    () => `garbage collection of ${digests.length} blob(s) on ${client.address}`,
    50,
  );
  return performance.now() - t0;
}

async function imageTargetDigest(client: ContainerdClient, ref: string): Promise<string | undefined> {
  return client.call("images.Get", { name: ref }).then(
    (r) => r.image.target.digest,
    (err: unknown) => {
      if (isContainerdError(err, "not-found")) return undefined;
      throw err;
    },
  );
}

// ---- RPC timing for the checkpoint breakdown ----------------------------------------

/** Per-method durations of ContainerdClient.call while `rpcLog` is set. */
let rpcLog: Array<{ method: string; ms: number }> | undefined;

function instrumentClient(): void {
  const proto = ContainerdClient.prototype as unknown as { call: (this: unknown, method: string, ...rest: unknown[]) => Promise<unknown> };
  const original = proto.call;
  proto.call = async function (this: unknown, method: string, ...rest: unknown[]): Promise<unknown> {
    const log = rpcLog;
    const t0 = performance.now();
    try {
      return await original.call(this, method, ...rest);
    } finally {
      log?.push({ method, ms: performance.now() - t0 });
    }
  };
}

// ---- output -------------------------------------------------------------------------

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
const mib = (kib: number): string => f1(kib / 1024);

// ---- the benchmarks -----------------------------------------------------------------

interface TransferRound {
  path: "library" | "before" | "ctr";
  warmup: boolean;
  wallMs: number;
  mbPerS: number;
  /** CPU ms: client process(es), daemon A, daemon B. */
  clientCpuMs: number;
  daemonACpuMs: number;
  daemonBCpuMs: number;
  /** Library: VmHWM of the worker during the copy; ctr: peak RSS of export and import. */
  peakRssKiB: number[];
  gcMs: number;
  library?: CopySample;
}

interface CheckpointRound {
  path: "library" | "ctr";
  warmup: boolean;
  wallMs: number;
  criuImageBytes: number;
  rpcs?: Array<{ method: string; ms: number }>;
}

type TransferPath = "library" | "before" | "ctr";

async function transferBenchmark(
  args: Args,
  ctr: string,
  a: PrivateContainerd,
  b: PrivateContainerd,
  clientB: ContainerdClient,
  payloadBytes: number,
  ownDigests: string[],
  indexDigest: string,
  log: (m: string) => void,
) {
  const init: WorkerInit = { a: { address: a.address, namespace: a.namespace }, b: { address: b.address, namespace: b.namespace } };
  const profArgs = (name: string): string[] => (args.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${args.cpuProf}`, `--cpu-prof-name=${name}.cpuprofile`] : []);
  const workers: Partial<Record<"library" | "before", Worker>> = {
    library: new Worker(init, __filename, [...profArgs("library"), ...(args.workerNodeOptions?.split(/\s+/).filter(Boolean) ?? [])], args.tuning),
  };
  if (args.baseline) workers.before = new Worker(init, `${args.baseline}/dist/bench/transfer.js`, profArgs("before"));
  try {
    const idle = await workers.library!.ready();
    const idleBefore = workers.before ? await workers.before.ready() : undefined;
    const rounds: TransferRound[] = [];
    const runWorker = async (path: "library" | "before", warmup: boolean): Promise<TransferRound> => {
      const cpuA = procCpuMs(a.pid);
      const cpuB = procCpuMs(b.pid);
      const s = await workers[path]!.copy(TRANSFER_REF);
      const round: TransferRound = {
        path,
        warmup,
        wallMs: s.wallMs,
        mbPerS: payloadBytes / 1e6 / (s.wallMs / 1000),
        clientCpuMs: s.cpuMs,
        daemonACpuMs: procCpuMs(a.pid) - cpuA,
        daemonBCpuMs: procCpuMs(b.pid) - cpuB,
        peakRssKiB: [s.hwmKiB],
        gcMs: NaN,
        library: s,
      };
      if (s.bytesMoved !== payloadBytes) throw new Error(`copyCheckpoint (${path}) moved ${s.bytesMoved} bytes, expected ${payloadBytes}`);
      return round;
    };
    const runCtr = async (warmup: boolean): Promise<TransferRound> => {
      const cpuA = procCpuMs(a.pid);
      const cpuB = procCpuMs(b.pid);
      const r = await ctrTransfer(ctr, a, b, TRANSFER_REF);
      return {
        path: "ctr",
        warmup,
        wallMs: r.wallMs,
        mbPerS: payloadBytes / 1e6 / (r.wallMs / 1000),
        clientCpuMs: r.procs.reduce((s, p) => s + p.cpuMs, 0),
        daemonACpuMs: procCpuMs(a.pid) - cpuA,
        daemonBCpuMs: procCpuMs(b.pid) - cpuB,
        peakRssKiB: r.procs.map((p) => p.maxRssKiB),
        gcMs: NaN,
      };
    };
    const paths: TransferPath[] = workers.before ? ["library", "before", "ctr"] : ["library", "ctr"];
    const total = args.warmup + args.rounds;
    for (let i = 0; i < total; i++) {
      const warmup = i < args.warmup;
      // Rotate the order, so no path always runs first (or right after another's GC).
      const order = paths.map((_, k) => paths[(k + i) % paths.length]);
      const got: Partial<Record<TransferPath, TransferRound>> = {};
      for (const p of order) {
        const round = p === "ctr" ? await runCtr(warmup) : await runWorker(p, warmup);
        const digest = await imageTargetDigest(clientB, TRANSFER_REF);
        if (digest !== indexDigest) throw new Error(`${p}: B has ${TRANSFER_REF} at ${digest ?? "nothing"}, expected ${indexDigest}`);
        round.gcMs = await clearImages(clientB, ownDigests);
        rounds.push(round);
        got[p] = round;
      }
      log(
        `transfer ${warmup ? "warm-up" : `${i - args.warmup + 1}/${args.rounds}`}: ` +
          paths
            .map((p) => {
              const r = got[p]!;
              const rss = p === "ctr" ? "" : ` (VmHWM ${mib(r.peakRssKiB[0])} MiB)`;
              return `${p} ${f1(r.wallMs)} ms ${f1(r.mbPerS)} MB/s CPU ${f1(r.clientCpuMs)} ms${rss}`;
            })
            .join("  "),
      );
    }
    for (const w of Object.values(workers)) await w.stop();
    return { rounds, workerIdle: idle, beforeIdle: idleBefore };
  } finally {
    for (const w of Object.values(workers)) w.kill();
  }
}

async function checkpointBenchmark(args: Args, ctr: string, a: PrivateContainerd, clientA: ContainerdClient, log: (m: string) => void) {
  const rounds: CheckpointRound[] = [];
  if (args.checkpointRounds === 0) return rounds;
  const total = args.warmup + args.checkpointRounds;
  const live = new Set<string>();
  try {
    for (let i = 0; i < total; i++) {
      const warmup = i < args.warmup;
      const ids = { library: uniqueId("ckl"), ctr: uniqueId("ckc") };
      const refs = { library: `checkpoint/lib-${i}:v1`, ctr: `checkpoint/ctr-${i}:v1` };
      for (const id of Object.values(ids)) {
        live.add(id);
        const { pid } = await runCounter(a, id, BASE_IMAGE_NAME);
        await waitForCount(pid, 3);
      }
      const order = i % 2 === 0 ? (["library", "ctr"] as const) : (["ctr", "library"] as const);
      const got: Partial<Record<"library" | "ctr", CheckpointRound>> = {};
      for (const p of order) {
        let round: CheckpointRound;
        if (p === "library") {
          rpcLog = [];
          const t0 = performance.now();
          const result = await checkpointContainer(clientA, ids.library, { ref: refs.library });
          const wallMs = performance.now() - t0;
          round = { path: p, warmup, wallMs, criuImageBytes: result.criuImageBytes, rpcs: rpcLog };
          rpcLog = undefined;
        } else {
          const r = await timeCommand(ctr, ["-a", a.socket, "-n", a.namespace, "containers", "checkpoint", "--task", "--rw", "--image", ids.ctr, refs.ctr], CTR_TIMEOUT_MS);
          round = { path: p, warmup, wallMs: r.wallMs, criuImageBytes: NaN };
        }
        // Untimed check: a complete checkpoint (ctr writes an index without CRIU entries on the 1.6 bug).
        const digest = await imageTargetDigest(clientA, refs[p]);
        if (!digest) throw new Error(`${p}: checkpoint ${refs[p]} missing`);
        const index = await readIndex(a, digest);
        const criu = index.manifests.find((m) => m.mediaType === MediaType.criuCheckpoint);
        if (!criu || !index.manifests.some((m) => m.mediaType === MediaType.checkpointConfig)) throw new Error(`${p}: checkpoint ${refs[p]} is incomplete`);
        round.criuImageBytes = criu.size;
        rounds.push(round);
        got[p] = round;
      }
      for (const id of Object.values(ids)) {
        await removeContainer(a, id);
        live.delete(id);
      }
      for (const ref of Object.values(refs)) await clientA.call("images.Delete", { name: ref, sync: true });
      log(
        `checkpoint ${warmup ? "warm-up" : `${i - args.warmup + 1}/${args.checkpointRounds}`}: library ${f1(got.library!.wallMs)} ms  ctr ${f1(got.ctr!.wallMs)} ms`,
      );
    }
    return rounds;
  } finally {
    for (const id of live) await removeContainer(a, id).catch(() => undefined);
  }
}

// ---- main ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);
  const ctr = which("ctr");
  const started = new Date();
  const loadStart = os.loadavg();
  instrumentClient();
  const daemons: PrivateContainerd[] = [];
  const clients: ContainerdClient[] = [];
  try {
    log("starting daemons A and B, importing busybox into both");
    const a = await startContainerd();
    daemons.push(a);
    const b = await startContainerd();
    daemons.push(b);
    const clientA = connect(a.address, { namespace: a.namespace });
    const clientB = connect(b.address, { namespace: b.namespace });
    clients.push(clientA, clientB);
    await importBaseImage(a);
    await importBaseImage(b);

    // ---- 1. transfer
    log(`filling ${args.memMib} MiB of process memory with random bytes in ${MEM_CONTAINER} on A`);
    const filler = await runMemoryFiller(a, MEM_CONTAINER, args.memMib);
    const made = await checkpointContainer(clientA, MEM_CONTAINER, { ref: TRANSFER_REF });
    await removeContainer(a, MEM_CONTAINER);
    const index = await readIndex(a, made.digest);
    const own: Descriptor[] = index.manifests.filter((m) => m.mediaType !== MediaType.ociManifest && m.mediaType !== MediaType.dockerManifest) as Descriptor[];
    const payloadBytes = made.indexSize + own.reduce((s, m) => s + m.size, 0);
    const ownDigests = [made.digest, ...own.map((m) => m.digest)];
    log(
      `checkpoint ${TRANSFER_REF}: ${mb(payloadBytes)} MB of its own blobs (criu.tar ${mb(made.criuImageBytes)} MB), made in ${f1(made.durationMs)} ms; ` +
        `dd held ${mib(filler.rssAnonKiB)} MiB RssAnon`,
    );
    const transfer = await transferBenchmark(args, ctr, a, b, clientB, payloadBytes, ownDigests, made.digest, log);

    // ---- 2. checkpoint creation
    const ckRounds = await checkpointBenchmark(args, ctr, a, clientA, log);

    // ---- summary
    const timedT = transfer.rounds.filter((r) => !r.warmup);
    const tLib = timedT.filter((r) => r.path === "library");
    const tCtr = timedT.filter((r) => r.path === "ctr");
    const summarizeT = (rs: TransferRound[]) => ({
      n: rs.length,
      wallMedianMs: median(rs.map((r) => r.wallMs)),
      mbPerSMedian: median(rs.map((r) => r.mbPerS)),
      mbPerSMin: Math.min(...rs.map((r) => r.mbPerS)),
      mbPerSMax: Math.max(...rs.map((r) => r.mbPerS)),
      clientCpuMedianMs: median(rs.map((r) => r.clientCpuMs)),
      daemonACpuMedianMs: median(rs.map((r) => r.daemonACpuMs)),
      daemonBCpuMedianMs: median(rs.map((r) => r.daemonBCpuMs)),
      peakRssMaxKiB: Math.max(...rs.map((r) => r.peakRssKiB.reduce((s, x) => s + x, 0))),
    });
    const tBefore = timedT.filter((r) => r.path === "before");
    const libT = summarizeT(tLib);
    const ctrT = summarizeT(tCtr);
    const beforeT = tBefore.length > 0 ? summarizeT(tBefore) : undefined;
    const throughputRatio = libT.mbPerSMedian / ctrT.mbPerSMedian;
    const peakOf = (rs: TransferRound[]) => Math.max(...rs.map((r) => r.peakRssKiB[0]));
    const peakRssKiB = peakOf(tLib);
    const idleKiB = transfer.workerIdle.rssKiB;
    const firstLib = transfer.rounds.find((r) => r.path === "library")!;
    const hwmResetOk = tLib.every((r) => r.library!.hwmReset);
    const memPeak = (k: keyof CopySample["peak"]): number => Math.max(...tLib.map((r) => r.library!.peak[k]));
    // Client CPU per MB of payload, per round, median: the copying process's own work.
    const cpuPerMb = (rs: TransferRound[]) => median(rs.map((r) => r.clientCpuMs / (payloadBytes / 1e6)));
    const cpuRatio = beforeT ? cpuPerMb(tLib) / cpuPerMb(tBefore) : NaN;
    const throughputPass = throughputRatio >= TARGET_THROUGHPUT_RATIO;
    const rssPass = peakRssKiB <= idleKiB + TARGET_PEAK_RSS_OVER_IDLE_MIB * 1024;
    const cpuPass = cpuRatio <= TARGET_CPU_RATIO;

    const timedC = ckRounds.filter((r) => !r.warmup);
    const cLib = timedC.filter((r) => r.path === "library");
    const cCtr = timedC.filter((r) => r.path === "ctr");
    const summarizeC = (rs: CheckpointRound[]) => {
      const w = rs.map((r) => r.wallMs);
      return { n: rs.length, wallMedianMs: median(w), wallP90Ms: quantile(w, 0.9), wallMinMs: Math.min(...w), wallMaxMs: Math.max(...w) };
    };
    const libC = summarizeC(cLib);
    const ctrC = summarizeC(cCtr);
    const checkpointRatio = libC.wallMedianMs / ctrC.wallMedianMs;
    const checkpointPass = checkpointRatio <= TARGET_CHECKPOINT_RATIO;
    const rpcBreakdown = (() => {
      const byMethod = new Map<string, { ms: number[]; calls: number[] }>();
      for (const r of cLib) {
        const perRound = new Map<string, { ms: number; calls: number }>();
        for (const c of r.rpcs ?? []) {
          const e = perRound.get(c.method) ?? { ms: 0, calls: 0 };
          perRound.set(c.method, { ms: e.ms + c.ms, calls: e.calls + 1 });
        }
        for (const [m, e] of perRound) {
          const acc = byMethod.get(m) ?? { ms: [], calls: [] };
          acc.ms.push(e.ms);
          acc.calls.push(e.calls);
          byMethod.set(m, acc);
        }
      }
      const rows = [...byMethod].map(([method, v]) => ({ method, medianMs: median(v.ms), calls: median(v.calls) }));
      const rpcTotal = cLib.map((r) => (r.rpcs ?? []).reduce((s, c) => s + c.ms, 0));
      rows.push({ method: "(wall − unary RPCs: writeBlob streams, local work)", medianMs: median(cLib.map((r, i) => r.wallMs - rpcTotal[i])), calls: NaN });
      return rows;
    })();

    const tRow = (name: string, s: ReturnType<typeof summarizeT>, rs: TransferRound[], peak: string): string[] => [
      name,
      f1(s.wallMedianMs),
      f1(s.mbPerSMedian),
      `${f1(s.mbPerSMin)}–${f1(s.mbPerSMax)}`,
      f1(s.clientCpuMedianMs),
      cpuPerMb(rs).toFixed(2),
      f1(s.daemonACpuMedianMs),
      f1(s.daemonBCpuMedianMs),
      peak,
    ];
    const cRow = (name: string, s: ReturnType<typeof summarizeC>): string[] => [name, f1(s.wallMedianMs), f1(s.wallP90Ms), `${f1(s.wallMinMs)}–${f1(s.wallMaxMs)}`];
    const ctrPeaks = (() => {
      const per = (i: number) => Math.max(...tCtr.map((r) => r.peakRssKiB[i] ?? NaN));
      return `${mib(per(0))} + ${mib(per(1))}`;
    })();
    const checkpointReport =
      ckRounds.length === 0
        ? ["(checkpoint benchmark skipped: --checkpoint-rounds 0)"]
        : [
            `checkpoint benchmark: ${args.checkpointRounds} timed round(s) per path (+${args.warmup} warm-up), fresh counter containers, order alternating`,
            table([["path", "median ms", "p90 ms", "min–max ms"], cRow("library checkpointContainer", libC), cRow("ctr containers checkpoint", ctrC)]),
            `ratio library/ctr (median wall): ${checkpointRatio.toFixed(3)}   target ≤ ${TARGET_CHECKPOINT_RATIO}   ${checkpointPass ? "PASS" : "MISS"}`,
            "library RPCs (median ms per round, summed per method):",
            table([["method", "median ms", "calls"], ...rpcBreakdown.map((r) => [r.method, f1(r.medianMs), Number.isNaN(r.calls) ? "" : String(r.calls)])]),
          ];
    const report = [
      "",
      `transfer benchmark: ${args.rounds} timed round(s) per path (+${args.warmup} warm-up), interleaved, order rotating; A → B, B has the base image` +
        (args.workerNodeOptions ? `; library worker run with node ${args.workerNodeOptions}` : ""),
      `checkpoint ${TRANSFER_REF}: ${payloadBytes} bytes of its own blobs (criu.tar ${made.criuImageBytes}), process held ${mib(filler.rssAnonKiB)} MiB of random anonymous memory`,
      table([
        ["path", "median ms", "median MB/s", "min–max MB/s", "client CPU ms", "CPU ms/MB", "ctrd A CPU ms", "ctrd B CPU ms", "peak RSS MiB"],
        tRow("library copyCheckpoint", libT, tLib, mib(peakRssKiB)),
        ...(beforeT ? [tRow(`before (${args.baseline})`, beforeT, tBefore, mib(peakOf(tBefore)))] : []),
        tRow("ctr export | ctr import", ctrT, tCtr, ctrPeaks),
      ]),
      `throughput library/ctr (median MB/s): ${throughputRatio.toFixed(3)}×   target ≥ ${TARGET_THROUGHPUT_RATIO.toFixed(1)}×   ${throughputPass ? "PASS" : "MISS"}`,
      ...(beforeT
        ? [
            `throughput library/before: ${(libT.mbPerSMedian / beforeT.mbPerSMedian).toFixed(3)}×; before/ctr ${(beforeT.mbPerSMedian / ctrT.mbPerSMedian).toFixed(3)}×`,
            `client CPU per MB library/before (median per round): ${cpuRatio.toFixed(3)}   target ≤ ${TARGET_CPU_RATIO}   ${cpuPass ? "PASS" : "MISS"}`,
          ]
        : [`client CPU per MB: ${cpuPerMb(tLib).toFixed(2)} ms (no --baseline to compare with)`]),
      `peak RSS of the copying process (max VmHWM over timed copies): ${mib(peakRssKiB)} MiB = idle ${mib(idleKiB)} + ${mib(peakRssKiB - idleKiB)} MiB   ` +
        `target ≤ idle + ${TARGET_PEAK_RSS_OVER_IDLE_MIB} MiB   ${rssPass ? "PASS" : "MISS"}` +
        (hwmResetOk ? "" : "  (VmHWM reset failed: lifetime peak)") +
        (beforeT && transfer.beforeIdle ? `; before: ${mib(peakOf(tBefore))} MiB on idle ${mib(transfer.beforeIdle.rssKiB)} MiB` : ""),
      `  during copies (sampled every ${MEM_SAMPLE_MS} ms, max): ` +
        `rss ${mb(memPeak("rss"))} MB, heapUsed ${mb(memPeak("heapUsed"))} MB, external ${mb(memPeak("external"))} MB, arrayBuffers ${mb(memPeak("arrayBuffers"))} MB`,
      `  first copy in the fresh worker${args.warmup > 0 ? " (warm-up)" : ""}: VmHWM ${mib(firstLib.library!.hwmKiB)} MiB; ` +
        `RSS left over before each timed copy (not returned after earlier copies): median ${mib(median(tLib.map((r) => r.library!.rssBeforeKiB)))} MiB`,
      `  ctr peak RSS = export + import (GNU time %M); client CPU = worker (library) or both ctr processes; MB = 10^6 bytes`,
      ...(args.cpuProf ? [`  CPU profiles of the workers: ${args.cpuProf}/{library,before}.cpuprofile (summarize: node dist/bench/profile.js FILE)`] : []),
      "",
      ...checkpointReport,
      `load average (1 min) at start ${loadStart[0].toFixed(2)}, at end ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs`,
      "",
    ].join("\n");

    printReport(report, args.json, () => ({
      startedAt: started.toISOString(),
      args,
      env: {
        node: process.version,
        ...systemInfo(ctr),
        loadavgAtStart: loadStart,
        loadavgAtEnd: os.loadavg(),
      },
      transfer: {
        checkpoint: { ref: TRANSFER_REF, digest: made.digest, payloadBytes, criuImageBytes: made.criuImageBytes, madeInMs: made.durationMs, fillerRssAnonKiB: filler.rssAnonKiB },
        library: libT,
        before: beforeT,
        ctr: ctrT,
        throughputRatio,
        cpuPerMbMs: { library: cpuPerMb(tLib), before: beforeT ? cpuPerMb(tBefore) : undefined, ctr: cpuPerMb(tCtr) },
        peakRssKiB,
        workerIdleRssKiB: transfer.workerIdle.rssKiB,
        firstCopyHwmKiB: firstLib.library!.hwmKiB,
        memoryUsagePeaks: { rss: memPeak("rss"), heapUsed: memPeak("heapUsed"), external: memPeak("external"), arrayBuffers: memPeak("arrayBuffers") },
        rounds: transfer.rounds,
      },
      checkpoint: { library: libC, ctr: ctrC, ratio: checkpointRatio, rpcBreakdown, rounds: ckRounds.map(({ rpcs: _rpcs, ...r }) => r) },
      targets: {
        throughputRatio: { target: TARGET_THROUGHPUT_RATIO, value: throughputRatio, pass: throughputPass },
        peakRssOverIdleMiB: { target: TARGET_PEAK_RSS_OVER_IDLE_MIB, value: (peakRssKiB - idleKiB) / 1024, pass: rssPass },
        cpuPerMbRatio: { target: TARGET_CPU_RATIO, value: cpuRatio, pass: cpuPass },
        checkpointRatio: ckRounds.length > 0 ? { target: TARGET_CHECKPOINT_RATIO, value: checkpointRatio, pass: checkpointPass } : undefined,
      },
    }));
  } finally {
    for (const c of clients) c.close();
    log("stopping the daemons");
    for (const d of daemons.reverse()) await d.stop().catch((err: unknown) => log(`stopping ${d.dir} failed: ${String(err)}`));
  }
}

if (require.main === module) {
  const entry = process.argv.includes("--copy-worker") ? workerMain : main;
  runMain(entry);
}

