/**
 * Where CRIU's time goes in a tiny live restore, and which settings shorten
 * it: restore.log's phases per setting, for the library and for
 * `ctr containers restore --rw --live`.
 *
 *   bash bench/criu-phases.sh [--private-run] [--rounds 10] [--warmup 1] [--settings a,b]
 *                             [--keep-logs DIR] [--json] [--out FILE]
 *
 * Method
 *   - One private daemon (test harness), the busybox base image and one
 *     checkpoint of the counter container (`ctr containers checkpoint --task
 *     --rw --image`), made once per daemon.
 *   - Settings (SETTINGS) change nothing on the host:
 *     - a CRIU config file per container: a checkpoint variant whose spec
 *       alone differs, with the annotation `org.criu.config=<file>`. runc
 *       (1.1 to 1.5, handleCriuConfigurationFile) passes that file to CRIU on
 *       restore instead of /etc/criu/runc.conf, and CRIU lets it override
 *       runc's RPC options. ctr applies the checkpoint's spec as is; the
 *       library is given `allow: { annotations: ["org.criu.config"] }`;
 *     - dump-nftables, dump-skip: a checkpoint variant whose CRIU image
 *       differs only in inventory.img's network_lock_method, which is what
 *       `network-lock nftables|skip` at dump time records and what restore
 *       then uses (CRIU ignores the option on restore). With runc the option
 *       can only come from a config file, and CRIU 4.1.1 crashes on it in
 *       RPC mode, on dump and on restore (config.c reads argv[optind] with
 *       no argv; fixed upstream by checkpoint-restore/criu#3051): the
 *       "nftables" and "skip" settings show that;
 *     - iptables-legacy: a second private daemon whose PATH starts with a
 *       directory where iptables, iptables-restore, ip6tables… are the
 *       legacy commands (CRIU runs them by name), as the host-wide
 *       alternatives switch would make them;
 *     - kdat-cache (only with `--private-run`, which runs the bench in a mount
 *       namespace of its own with a tmpfs /run): CRIU keeps its kernel
 *       feature probes in /run/criu.kdat, but only on a tmpfs; every other
 *       setting then has the cache removed before each restore, as on a host
 *       whose /run is not a tmpfs (this one's).
 *     No setting needs a host-wide change, so there is no host-settings mode.
 *   - `--rounds` rounds after `--warmup` untimed ones; each round restores
 *     every setting with both paths, the library first in odd rounds and ctr
 *     first in even ones, so drift and the load of other work hit all alike.
 *   - Wall time: library = planRestore + restore; ctr = spawn() until exit.
 *   - Every restore is checked: the task must be RUNNING (tasks.Get) with a
 *     live pid. A failed restore, or one whose task is not RUNNING, is
 *     counted as failed, kept out of the medians, and its error reported.
 *   - restore.log: for ctr at `<state>/io.containerd.runtime.v2.task/<ns>/<id>/work/restore.log`,
 *     read once ctr exits; the library passes its own CRIU work dir (runc's
 *     `criu_work_path`, `containerd-restore-criu-*` under os.tmpdir()) and
 *     removes it before restore() returns, so it is read as tasks.Start
 *     returns or fails, from a TMPDIR private to this process
 *     (captureLibraryRestoreLogs in criu-log.ts, as bench/restore.ts does).
 *   - Phases: PHASES in criu-log.ts, each from one marker line to another. A
 *     phase whose marker is missing from a log (e.g. the probe lines when the
 *     kdat cache is loaded) is missing for that restore, counted per run,
 *     never 0 ms. CRIU time is the "Restore finished successfully" line's
 *     timestamp (as in bench/restore.ts).
 *   - Teardown: the library's teardown (graceMs 0, SIGKILL; force for the
 *     ctr-made ones), outside the timed region.
 *
 * Prints medians per setting and path; `--json` prints the results as JSON on
 * stdout (the table then goes to stderr), `--out FILE` writes them to FILE.
 * A measurement: the exit status is 0 even when restores fail.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { connect, inspect, planRestore, restore, teardown, type ContainerdClient } from "../provider/index";
import {
  fifoDirs,
  importBaseImage,
  makeCheckpoint,
  makeHostileCheckpoint,
  MediaType,
  pidAlive,
  readContent,
  removeCtrFifos,
  sha256Digest,
  startContainerd,
  writeCustomIndex,
  type PrivateContainerd,
} from "../test/harness/index";
import { captureLibraryRestoreLogs, criuPhases, criuRestoreMs, readCtrRestoreLog, PHASES, type CriuPhases } from "./criu-log";
import { f1, intFlag, median, parseFlags, printReport, runMain, systemInfo, table, timeSpawn, which } from "./common";

const CHECKPOINT_REF = "checkpoint/criu-phases:v1";
const CTR_TIMEOUT_MS = 120_000;
const TEARDOWN = { graceMs: 0, stopSignal: "SIGKILL" } as const;
const CRIU_CONFIG_ANNOTATION = "org.criu.config";
const HOST_RUNC_CONF = "/etc/criu/runc.conf";
/** CRIU's kernel-feature cache; kept only when /run is a tmpfs (criu/kerndat.c). */
const KDAT_CACHE = "/run/criu.kdat";
const TMPFS_MAGIC = 0x01021994;
/** Set by bench/criu-phases.sh --private-run, which runs this bench in its own mount namespace with a tmpfs on /run. */
const PRIVATE_RUN_ENV = "CRIU_PHASES_PRIVATE_RUN";
/** iptables commands CRIU runs by name (criu/net.c); the iptables-legacy daemon finds the legacy ones first on PATH. */
const LEGACY_IPTABLES = ["iptables", "iptables-restore", "iptables-save", "ip6tables", "ip6tables-restore", "ip6tables-save"];

type DaemonKind = "host" | "iptables-legacy";

/** CRIU's enum NETWORK_LOCK_METHOD (criu/include/cr_options.h), as inventory.img field 11 holds it. */
const NETWORK_LOCK_METHOD = { iptables: 0, nftables: 1, skip: 2 } as const;
const INVENTORY_MAGIC = 0x58313116;
const INVENTORY_NETWORK_LOCK_FIELD = 11;
const TAR_BLOCK = 512;

/**
 * `criuTar` (a checkpoint's criu.tar) with inventory.img's network_lock_method
 * set to `method`: the field is appended to the InventoryEntry message (the
 * last value of a protobuf field wins), inventory.img's size prefix and tar
 * header (size, checksum) updated. The image is a few dozen bytes, so it grows
 * into its tar block's padding and nothing else moves; throws if it would not.
 */
export function withNetworkLockMethod(criuTar: Buffer, method: number): Buffer {
  const tar = Buffer.from(criuTar);
  for (let at = 0; at + TAR_BLOCK <= tar.length; ) {
    const name = tar.toString("latin1", at, at + 100).replace(/\0.*$/s, "");
    if (name === "") break;
    const size = parseInt(tar.toString("latin1", at + 124, at + 136).replace(/\0.*$/s, "").trim() || "0", 8);
    const data = at + TAR_BLOCK;
    if (name.replace(/^\.\//, "") === "inventory.img") {
      if (tar.readUInt32LE(data) !== INVENTORY_MAGIC) throw new Error("inventory.img: not a CRIU inventory image");
      const field = Buffer.from([(INVENTORY_NETWORK_LOCK_FIELD << 3) | 0, method]);
      const grown = size + field.length;
      if (Math.ceil(grown / TAR_BLOCK) !== Math.ceil(size / TAR_BLOCK)) throw new Error("inventory.img would outgrow its tar block");
      field.copy(tar, data + size);
      tar.writeUInt32LE(tar.readUInt32LE(data + 4) + field.length, data + 4);
      tar.write(`${grown.toString(8).padStart(11, "0")}\0`, at + 124, "latin1");
      tar.fill(0x20, at + 148, at + 156);
      let sum = 0;
      for (let i = at; i < at + TAR_BLOCK; i++) sum += tar[i];
      tar.write(`${sum.toString(8).padStart(6, "0")}\0 `, at + 148, "latin1");
      return tar;
    }
    at = data + Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
  }
  throw new Error("criu.tar has no inventory.img");
}

/** One way of running CRIU, measured with both paths. Nothing here changes the host. */
interface Setting {
  name: string;
  what: string;
  /** Lines of a CRIU configuration file named by the spec annotation org.criu.config; undefined: no annotation. */
  conf?: string[];
  /** "iptables-legacy": a second private daemon whose PATH puts the iptables-legacy commands first. */
  daemon?: DaemonKind;
  /** Keep CRIU's kerndat cache between restores (only with --private-run; every other setting then starts without it). */
  kdatCache?: boolean;
  /** The network lock method recorded in the checkpoint's inventory.img, as `criu dump --network-lock` records it. */
  dumpNetworkLock?: keyof typeof NETWORK_LOCK_METHOD;
}

const SETTINGS: readonly Setting[] = [
  { name: "default", what: "the checkpoint as made: no org.criu.config annotation, so runc names /etc/criu/runc.conf" },
  { name: "empty-conf", conf: [], what: "org.criu.config naming an empty file (control: the annotation alone)" },
  { name: "mntns-compat", conf: ["mntns-compat-mode"], what: "CRIU's older mount engine instead of mount-v2" },
  { name: "nftables", conf: ["network-lock nftables"], what: "network-lock nftables in the CRIU config file" },
  { name: "skip", conf: ["network-lock skip"], what: "network-lock skip in the CRIU config file" },
  {
    name: "dump-nftables",
    dumpNetworkLock: "nftables",
    what: "a checkpoint whose inventory.img records network-lock nftables, as a dump with that method would (restore unlocks the way the dump locked)",
  },
  {
    name: "dump-skip",
    dumpNetworkLock: "skip",
    what: "a checkpoint whose inventory.img records network-lock skip, as a dump with that method would",
  },
  { name: "iptables-legacy", daemon: "iptables-legacy", what: "CRIU finds iptables-legacy as iptables (what the host-wide alternatives switch does), on a second private daemon" },
  { name: "kdat-cache", kdatCache: true, what: "CRIU's kernel-feature cache /run/criu.kdat kept between restores (needs a tmpfs /run: --private-run)" },
  {
    name: "legacy+kdat-cache",
    daemon: "iptables-legacy",
    kdatCache: true,
    what: "iptables-legacy and the kdat cache together (needs --private-run)",
  },
];

interface Args {
  rounds: number;
  warmup: number;
  settings: string[];
  keepLogs?: string;
  json: boolean;
  out?: string;
}

const USAGE = `usage: node dist/bench/criu-phases.js [--rounds R] [--warmup W] [--settings a,b] [--keep-logs DIR] [--json] [--out FILE]
  (bash bench/criu-phases.sh --private-run … runs it in a private mount namespace with a tmpfs /run)
  --rounds R        timed restores per setting and path (default 10)
  --warmup W        untimed rounds first (default 1)
  --settings a,b    settings to run (default all: ${SETTINGS.map((s) => s.name).join(",")})
  --keep-logs DIR   copy every timed restore.log to DIR
  --json            print the results as JSON on stdout (the table goes to stderr)
  --out FILE        also write the JSON to FILE`;

function parseArgs(argv: string[]): Args {
  const args: Args = { rounds: 10, warmup: 1, settings: SETTINGS.map((s) => s.name), json: false };
  parseFlags(argv, USAGE, (flag, value) => {
    if (flag === "--rounds") args.rounds = intFlag(flag, value(), 1, USAGE);
    else if (flag === "--warmup") args.warmup = intFlag(flag, value(), 0, USAGE);
    else if (flag === "--settings") args.settings = (value() ?? "").split(",").filter((s) => s !== "");
    else if (flag === "--keep-logs") args.keepLogs = value();
    else if (flag === "--json") args.json = true;
    else if (flag === "--out") args.out = value();
    else return false;
    return true;
  });
  for (const s of args.settings) if (!SETTINGS.some((k) => k.name === s)) throw new Error(`unknown setting ${s}\n${USAGE}`);
  return args;
}

type RestorePath = "ctr" | "library";

/** One timed restore. */
interface Sample {
  id: string;
  wallMs: number;
  /** CRIU's time and phases from restore.log; undefined when no log was read. */
  criuMs?: number;
  phases?: CriuPhases;
  /** Why the sample does not count: the restore failed, or the task was not RUNNING after it. */
  failure?: string;
  /** For a failure: the last lines of its restore.log, if CRIU wrote one. */
  logTail?: string[];
}

/** A restored task must be RUNNING with a live pid, or the restore reported a success it did not have. */
async function assertRunning(client: ContainerdClient, id: string): Promise<void> {
  const state = await inspect(client, id);
  if (state?.status !== "running") throw new Error(`task is ${state?.status ?? "missing"} after the restore`);
  if (!pidAlive(state.pid)) throw new Error(`task pid ${state.pid} is gone after the restore`);
}

const FAILURE_LOG_LINES = 5;

function fromLog(log: string | undefined): Pick<Sample, "criuMs" | "phases" | "logTail"> {
  if (log === undefined) return {};
  const criu = criuRestoreMs(log);
  return {
    criuMs: criu.fallback ? undefined : criu.ms,
    phases: criuPhases(log),
    ...(criu.fallback ? { logTail: log.trimEnd().split("\n").slice(-FAILURE_LOG_LINES) } : {}),
  };
}

/** Before a restore under --private-run: the kerndat cache is removed unless the setting keeps it. */
function prepareKdatCache(setting: Setting, privateRun: boolean): void {
  if (privateRun && !setting.kdatCache) fs.rmSync(KDAT_CACHE, { force: true });
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function restoreWithLibrary(client: ContainerdClient, takeLog: () => string | undefined, ref: string, setting: Setting, id: string): Promise<Sample & { log?: string }> {
  const policy = setting.conf ? { allow: { annotations: [CRIU_CONFIG_ANNOTATION] } } : {};
  takeLog(); // nothing left over from an earlier restore
  let wallMs = NaN;
  try {
    const t0 = performance.now();
    const plan = await planRestore(client, ref, policy);
    await restore(client, plan, { id, ...policy });
    wallMs = performance.now() - t0;
    await assertRunning(client, id);
    const log = takeLog();
    return { id, wallMs, ...fromLog(log), log };
  } catch (err) {
    const log = takeLog();
    return { id, wallMs, ...fromLog(log), log, failure: message(err) };
  } finally {
    await teardown(client, id, TEARDOWN).catch(() => undefined);
  }
}

async function restoreWithCtr(d: PrivateContainerd, client: ContainerdClient, ctr: string, ref: string, id: string): Promise<Sample & { log?: string }> {
  const before = fifoDirs();
  try {
    const r = await timeSpawn(ctr, ["-a", d.socket, "-n", d.namespace, "containers", "restore", "--rw", "--live", id, ref], CTR_TIMEOUT_MS);
    const log = readCtrRestoreLog(d.dir, d.namespace, id);
    let failure = r.code !== 0 ? `ctr exited ${r.code ?? r.signal}: ${r.stderr.trim()}` : undefined;
    if (!failure) failure = await assertRunning(client, id).then(() => undefined, message);
    return { id, wallMs: r.wallMs, ...fromLog(log), log, ...(failure ? { failure } : {}) };
  } finally {
    // ctr's restore carries none of this project's labels: teardown refuses it without force.
    await teardown(client, id, { ...TEARDOWN, force: true }).catch(() => undefined);
    removeCtrFifos(before, [id]);
  }
}

// ---- summary ------------------------------------------------------------------------

interface Run {
  setting: string;
  path: RestorePath;
  /** Timed restores that succeeded with a RUNNING task (the medians are over these). */
  n: number;
  failures: number;
  firstFailure?: string;
  /** The last lines of a failed restore's restore.log, when there was one. */
  failureLogTail?: string[];
  wallMedianMs: number;
  criuMedianMs: number;
  /** Per phase: the median over the restores whose log has both markers; `missing` counts the others. */
  phases: Array<{ name: string; medianMs: number; missing: number }>;
}

function summarize(setting: string, p: RestorePath, samples: Sample[]): Run {
  const ok = samples.filter((s) => s.failure === undefined);
  const failed = samples.filter((s) => s.failure !== undefined);
  const present = (v: number | undefined): v is number => v !== undefined && !Number.isNaN(v);
  return {
    setting,
    path: p,
    n: ok.length,
    failures: failed.length,
    ...(failed.length > 0 ? { firstFailure: failed[0].failure } : {}),
    ...(failed[0]?.logTail ? { failureLogTail: failed[0].logTail } : {}),
    wallMedianMs: median(ok.map((s) => s.wallMs)),
    criuMedianMs: median(ok.map((s) => s.criuMs).filter(present)),
    phases: PHASES.map((ph) => {
      const values = ok.map((s) => s.phases?.[ph.name]).filter(present);
      return { name: ph.name, medianMs: median(values), missing: ok.length - values.length };
    }),
  };
}

// ---- daemons ------------------------------------------------------------------------

/** A private daemon with its checkpoint and one variant per config-file setting. */
interface Bench {
  d: PrivateContainerd;
  client: ContainerdClient;
  /** Checkpoint ref per setting name. */
  refs: Map<string, string>;
}

/** A directory whose iptables commands are the legacy ones, to put first on a daemon's PATH. */
function legacyIptablesDir(tmp: string): string {
  const dir = path.join(tmp, "iptables-legacy-bin");
  fs.mkdirSync(dir);
  for (const cmd of LEGACY_IPTABLES) fs.symlinkSync(which(cmd.replace(/^(ip6?tables)/, "$1-legacy")), path.join(dir, cmd));
  return dir;
}

async function startBench(kind: DaemonKind, settings: readonly Setting[], tmp: string, confDir: string): Promise<Bench> {
  const hostPath = process.env.PATH;
  // The harness starts containerd with this process's PATH (its bin dir first); shim, runc and CRIU inherit it.
  if (kind === "iptables-legacy") process.env.PATH = `${legacyIptablesDir(tmp)}:${hostPath ?? ""}`;
  let d: PrivateContainerd;
  try {
    d = await startContainerd();
  } finally {
    process.env.PATH = hostPath;
  }
  const client = connect(d.address, { namespace: d.namespace });
  try {
    const image = await importBaseImage(d);
    const base = await makeCheckpoint(d, { ref: CHECKPOINT_REF, image });
    const refs = new Map<string, string>();
    const criuImage = base.index.manifests.find((m) => m.mediaType === MediaType.criuCheckpoint);
    for (const s of settings) {
      if (s.dumpNetworkLock) {
        if (!criuImage) throw new Error("the checkpoint has no CRIU image");
        const tar = withNetworkLockMethod(await readContent(d, criuImage.digest), NETWORK_LOCK_METHOD[s.dumpNetworkLock]);
        const index = structuredClone(base.index);
        const entry = index.manifests.find((m) => m.mediaType === MediaType.criuCheckpoint)!;
        entry.digest = sha256Digest(tar);
        entry.size = tar.length;
        const ref = `checkpoint/criu-phases-${s.name}:v1`;
        // Only the CRIU image changes, and in it only inventory.img.
        await writeCustomIndex(d, ref, index, [tar]);
        refs.set(s.name, ref);
        continue;
      }
      if (!s.conf) {
        refs.set(s.name, CHECKPOINT_REF);
        continue;
      }
      const conf = path.join(confDir, `${s.name}.conf`);
      fs.writeFileSync(conf, s.conf.map((l) => `${l}\n`).join(""));
      const ref = `checkpoint/criu-phases-${s.name}:v1`;
      // Only the spec changes: the same CRIU image, rw layer and base image.
      await makeHostileCheckpoint(d, base, ref, {
        spec: (spec) => {
          spec.annotations = { ...spec.annotations, [CRIU_CONFIG_ANNOTATION]: conf };
        },
      });
      refs.set(s.name, ref);
    }
    return { d, client, refs };
  } catch (err) {
    client.close();
    await d.stop();
    throw err;
  }
}

// ---- main ---------------------------------------------------------------------------

function hostRuncConf(): string {
  try {
    return fs.readFileSync(HOST_RUNC_CONF, "utf8");
  } catch {
    return "(absent)";
  }
}

const runIsTmpfs = (): boolean => fs.statfsSync("/run").type === TMPFS_MAGIC;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
  const ctr = which("ctr");
  const started = new Date();
  const privateRun = process.env[PRIVATE_RUN_ENV] === "1" && runIsTmpfs();
  const notMeasured: Array<{ setting: string; why: string }> = [];
  const settings = SETTINGS.filter((s) => {
    if (!args.settings.includes(s.name)) return false;
    if (s.kdatCache && !privateRun) {
      notMeasured.push({ setting: s.name, why: "needs a tmpfs /run for CRIU to keep its cache: bash bench/criu-phases.sh --private-run" });
      return false;
    }
    return true;
  });
  const takeLog = captureLibraryRestoreLogs();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "criu-phases-"));
  const confDir = path.join(tmp, "conf");
  fs.mkdirSync(confDir);
  if (args.keepLogs) fs.mkdirSync(args.keepLogs, { recursive: true });

  const benches = new Map<DaemonKind, Bench>();
  try {
    for (const kind of new Set(settings.map((s) => s.daemon ?? "host"))) {
      log(`criu-phases: starting a private containerd (${kind}), importing busybox, checkpointing the counter…`);
      benches.set(kind, await startBench(kind, settings, tmp, confDir));
    }

    let seq = 0;
    const samples = new Map<string, Sample[]>();
    const key = (setting: string, p: RestorePath): string => `${setting}/${p}`;
    const round = async (timed: boolean, r: number): Promise<void> => {
      for (const s of settings) {
        const { d, client, refs } = benches.get(s.daemon ?? "host")!;
        const ref = refs.get(s.name)!;
        const withLibrary = async (): Promise<Sample & { log?: string }> => {
          prepareKdatCache(s, privateRun);
          return restoreWithLibrary(client, takeLog, ref, s, `cp-lib-${++seq}`);
        };
        const withCtr = async (): Promise<Sample & { log?: string }> => {
          prepareKdatCache(s, privateRun);
          return restoreWithCtr(d, client, ctr, ref, `cp-ctr-${++seq}`);
        };
        // Odd rounds the library goes first, even rounds ctr: neither always follows the other's teardown.
        const libraryFirst = r % 2 === 1;
        const first = await (libraryFirst ? withLibrary() : withCtr());
        const second = await (libraryFirst ? withCtr() : withLibrary());
        const [lib, viaCtr] = libraryFirst ? [first, second] : [second, first];
        if (timed) {
          for (const [p, sample] of [["library", lib], ["ctr", viaCtr]] as const) {
            const k = key(s.name, p);
            if (!samples.has(k)) samples.set(k, []);
            const { log: text, ...rest } = sample;
            samples.get(k)!.push(rest);
            if (args.keepLogs && text !== undefined) fs.writeFileSync(path.join(args.keepLogs, `${s.name}-${p}-${r}.log`), text);
          }
        }
        const show = (x: Sample): string => `${f1(x.wallMs)} ms (CRIU ${f1(x.criuMs ?? NaN)})${x.failure ? " FAILED" : ""}`;
        log(`criu-phases: ${timed ? `${r}/${args.rounds}` : "warm-up"} ${s.name.padEnd(15)} library ${show(lib)}  ctr ${show(viaCtr)}`);
      }
    };
    for (let i = 0; i < args.warmup; i++) await round(false, 0);
    for (let i = 1; i <= args.rounds; i++) await round(true, i);

    const runs: Run[] = [];
    for (const s of settings) for (const p of ["ctr", "library"] as const) runs.push(summarize(s.name, p, samples.get(key(s.name, p)) ?? []));

    const report = [
      "",
      `CRIU phases: ${args.rounds} round(s) (+${args.warmup} warm-up), settings interleaved, library and ctr; medians in ms over restores left RUNNING` +
        (privateRun ? "; private mount namespace with a tmpfs /run" : ""),
      table([
        ["setting", "path", "ok", "wall", "CRIU", ...PHASES.map((p) => p.name)],
        ...runs.map((r) => [
          r.setting,
          r.path,
          `${r.n}/${r.n + r.failures}`,
          f1(r.wallMedianMs),
          f1(r.criuMedianMs),
          ...r.phases.map((p) => (p.missing === 0 ? f1(p.medianMs) : p.missing === r.n ? "missing" : `${f1(p.medianMs)} (${p.missing} missing)`)),
        ]),
      ]),
      "",
      "phases (restore.log marker lines, from → to):",
      ...PHASES.map((p) => `  ${p.name}: "${p.from === "start" ? "(log start)" : p.from}" → "${p.to}"`),
      ...runs.filter((r) => r.firstFailure).map((r) => `FAILED ${r.setting}/${r.path} ${r.failures}×: ${r.firstFailure}`),
      ...notMeasured.map((m) => `not measured: ${m.setting}: ${m.why}`),
      "",
    ].join("\n");

    const result = {
      startedAt: started.toISOString(),
      env: { node: process.version, ...systemInfo(ctr), hostRuncConf: hostRuncConf(), privateRun, runIsTmpfs: runIsTmpfs() },
      rounds: args.rounds,
      warmup: args.warmup,
      settings: settings.map((s) => ({ name: s.name, what: s.what, criuConfig: s.conf ?? null, daemon: s.daemon ?? "host", kdatCache: s.kdatCache ?? false })),
      notMeasured,
      phaseDefinitions: PHASES.map((p) => ({ name: p.name, from: p.from, to: p.to, what: p.what })),
      runs,
    };
    if (args.out) fs.writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
    printReport(report, args.json, () => result);
  } finally {
    for (const [kind, b] of benches) {
      b.client.close();
      log(`criu-phases: stopping the daemon (${kind})`);
      await b.d.stop();
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) runMain(main);
