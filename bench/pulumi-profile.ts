/**
 * Where `pulumi preview` time goes through the CLI, for N RestoredContainers
 * (and, to compare, N shell-out containers and the empty stack), in the CLI
 * project bench/pulumi.ts makes (test/cli/project.ts), on one private daemon.
 *
 *   bash bench/pulumi-profile.sh [--n 20] [--rounds 3] [--kinds restored-container,shell-out,empty]
 *
 * For each kind, its stack is brought up (untimed), then `pulumi preview
 * --expect-no-changes` is run R times with PULUMI_DEBUG_GRPC (the engine's
 * log of every gRPC call it serves or makes, with timestamps and durations),
 * and once more with NODE_OPTIONS=--cpu-prof (every Node process the CLI
 * starts: the program under the language host, the dynamic provider) for the
 * provider process's CPU profile; then the stack is destroyed. Reported, as
 * medians over the rounds:
 * - wall: the `pulumi` process, spawn to exit;
 * - before program: spawn until the engine calls LanguageRuntime/Run (CLI
 *   start-up, backend, plugins);
 * - program: LanguageRuntime/Run (TypeScript compile, the program, waiting
 *   for its registrations);
 * - first Check wait: the first RegisterResource until the engine sends the
 *   first Check (the dynamic provider's plugin start: node, its host);
 * - Check / Diff: count, the first one's duration (it deserializes the
 *   provider: requires the package), the median of the others, the span from
 *   the first Check's start to the last Diff's end;
 * - after program: Run's end to exit (snapshot, shutdown);
 * - the size of one resource's serialized provider (`__provider` in the state);
 * - the provider process's CPU profile: active CPU ms, by package (a sample
 *   goes to the innermost package frame on its stack; this package's files by
 *   dist/ directory), and the top functions by self time.
 * PULUMI_DEBUG_GRPC and --cpu-prof add their own cost; compare the wall times
 * with bench/pulumi.ts's. Everything is cleaned up at the end, also on error.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startContainerd } from "../test/harness/index";
import { pulumiIn, type CliProject } from "../test/cli/project";
import { f0, f1, intFlag, median, parseFlags, runMain, table } from "./common";
import { benchTarget, initCliStack, newBenchProject, type StackKind } from "./pulumi";

interface Args {
  n: number;
  rounds: number;
  kinds: StackKind[];
  /** Keep the gRPC logs and CPU profiles in this directory. */
  keep: string | undefined;
}

const ALL_KINDS: StackKind[] = ["restored-container", "shell-out", "empty"];
const USAGE = `usage: node dist/bench/pulumi-profile.js [--n N] [--rounds R] [--kinds LIST]
  --n N          resources in the stack (default 20)
  --rounds R     previews with the gRPC log (default 3)
  --kinds LIST   restored-container, shell-out, empty (default all)
  --keep DIR     keep the gRPC logs and CPU profiles in DIR`;

function parseArgs(argv: string[]): Args {
  const args: Args = { n: 20, rounds: 3, kinds: ALL_KINDS, keep: undefined };
  parseFlags(argv, USAGE, (flag, value) => {
    if (flag === "--n") args.n = intFlag(flag, value(), 1, USAGE);
    else if (flag === "--rounds") args.rounds = intFlag(flag, value(), 1, USAGE);
    else if (flag === "--kinds") {
      args.kinds = (value() ?? "").split(",").map((k) => {
        const kind = ALL_KINDS.find((x) => x === k);
        if (!kind) throw new Error(`--kinds: unknown kind ${k}\n${USAGE}`);
        return kind;
      });
    } else if (flag === "--keep") args.keep = value();
    else return false;
    return true;
  });
  return args;
}

const log = (msg: string): void => void process.stderr.write(`profile: ${msg}\n`);

// ---- the engine's gRPC log ----------------------------------------------------------------

/** One line of PULUMI_DEBUG_GRPC (sdk/go/pulumi-internal/rpcdebug/logformat.go). */
interface GrpcLogEntry {
  method: string;
  progress?: "request_started" | "response_completed";
  timestamp: string;
  /** Go time.Duration: nanoseconds. */
  duration?: number;
  request?: { properties?: Record<string, unknown>; news?: Record<string, unknown> };
}

interface Call {
  method: string;
  startMs: number;
  endMs: number;
}

/** The completed calls, with start and end on the epoch-ms clock. */
function readGrpcLog(file: string): { calls: Call[]; providerChars: number } {
  const calls: Call[] = [];
  let providerChars = 0;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const e = JSON.parse(line) as GrpcLogEntry;
    const short = e.method.replace(/^\/pulumirpc\./, "");
    if (short === "ResourceProvider/Check" && providerChars === 0) {
      const p = e.request?.news?.__provider;
      if (typeof p === "string") providerChars = p.length;
    }
    if (e.progress === "request_started") continue;
    const endMs = Date.parse(e.timestamp);
    const durMs = (e.duration ?? 0) / 1e6;
    // Entries without progress (older CLIs) carry the completion time too.
    calls.push({ method: short, startMs: endMs - durMs, endMs });
  }
  return { calls: calls.sort((a, b) => a.startMs - b.startMs), providerChars };
}

interface PreviewBreakdown {
  wallMs: number;
  beforeProgramMs: number;
  programMs: number;
  programToStackMs: number;
  stackToProviderSpawnMs: number;
  providerSpawnToHandshakeMs: number;
  checkToLastDiffMs: number;
  lastDiffToRunEndMs: number;
  afterProgramMs: number;
  checks: number;
  firstCheckMs: number;
  otherCheckMedianMs: number;
  checkSumMs: number;
  diffs: number;
  diffSumMs: number;
  diffMedianMs: number;
  providerChars: number;
}

/** What the --require hook writes for each Node process the CLI starts: its start time and argv. */
interface NodeProcess {
  startMs: number;
  argv: string[];
}

function readProcesses(dir: string): NodeProcess[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith("proc-")).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as NodeProcess);
}

function breakdown(file: string, procDir: string, spawnMs: number, exitMs: number): PreviewBreakdown {
  const { calls, providerChars } = readGrpcLog(file);
  const of = (m: string): Call[] => calls.filter((c) => c.method === m);
  const run = of("LanguageRuntime/Run")[0];
  if (!run) throw new Error(`no LanguageRuntime/Run in ${file}`);
  const checks = of("ResourceProvider/Check");
  const diffs = of("ResourceProvider/Diff");
  const handshake = of("ResourceProvider/Handshake")[0];
  // The engine logs the monitor's calls with a zero start time: only their end is known. The stack's registration comes first.
  const stackRegistered = Math.min(...of("ResourceMonitor/RegisterResource").map((c) => c.endMs));
  const procs = readProcesses(procDir);
  const provider = procs.find((p) => p.argv.some((a) => a.includes("dynamic-provider")));
  const lastDiff = diffs.length > 0 ? Math.max(...diffs.map((c) => c.endMs)) : NaN;
  const dur = (c: Call): number => c.endMs - c.startMs;
  return {
    wallMs: exitMs - spawnMs,
    beforeProgramMs: run.startMs - spawnMs,
    programMs: dur(run),
    programToStackMs: stackRegistered - run.startMs,
    stackToProviderSpawnMs: provider ? provider.startMs - stackRegistered : NaN,
    providerSpawnToHandshakeMs: provider && handshake ? handshake.startMs - provider.startMs : NaN,
    checkToLastDiffMs: checks.length > 0 ? lastDiff - checks[0].startMs : NaN,
    lastDiffToRunEndMs: run.endMs - lastDiff,
    afterProgramMs: exitMs - run.endMs,
    checks: checks.length,
    firstCheckMs: checks.length > 0 ? dur(checks[0]) : NaN,
    otherCheckMedianMs: median(checks.slice(1).map(dur)),
    checkSumMs: checks.reduce((sum, c) => sum + dur(c), 0),
    diffs: diffs.length,
    diffSumMs: diffs.reduce((sum, c) => sum + dur(c), 0),
    diffMedianMs: median(diffs.map(dur)),
    providerChars,
  };
}

// ---- the provider's CPU profile -------------------------------------------------------------

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  /** Microseconds since the previous sample. */
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** A frame's package: node_modules/<pkg>, this package's dist/<dir>, or undefined (Node internals, natives). */
function packageOf(url: string): string | undefined {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?:dist\/([^/]+)\/([^/]+)\/)?/.exec(url);
  if (!m) return undefined;
  if (m[1] === "pulumi-containerd-restore" && m[2]) return `pulumi-containerd-restore/${m[2]}/${m[3].replace(/\.js$/, "")}`;
  return m[1];
}

interface ProfileSummary {
  file: string;
  wallMs: number;
  activeMs: number;
  /** Active CPU with a module load (`Module._load`) on the stack: requiring and compiling modules. */
  loadingMs: number;
  byPackage: [string, number][];
  topSelf: [string, number][];
}

function summarize(file: string): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byPackage = new Map<string, number>();
  const self = new Map<string, number>();
  let activeUs = 0;
  let loadingUs = 0;
  p.samples.forEach((id, i) => {
    const us = p.timeDeltas[i] ?? 0;
    const leaf = byId.get(id)!;
    if (leaf.callFrame.functionName === "(idle)") return;
    activeUs += us;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const fn = byId.get(cur)!.callFrame.functionName;
      if (fn === "Module._load" || fn === "wrapModuleLoad") {
        loadingUs += us;
        break;
      }
    }
    let label: string | undefined;
    for (let cur: number | undefined = id; cur !== undefined && label === undefined; cur = parent.get(cur)) label = packageOf(byId.get(cur)!.callFrame.url);
    label ??= leaf.callFrame.url.startsWith("node:") ? "node internals" : leaf.callFrame.functionName || "(anonymous native)";
    byPackage.set(label, (byPackage.get(label) ?? 0) + us);
    const key = `${leaf.callFrame.functionName || "(anonymous)"} ${leaf.callFrame.url.replace(/^.*node_modules\//, "")}:${leaf.callFrame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + us);
  });
  const top = (m: Map<string, number>, k: number): [string, number][] =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, us]) => [name, us / 1000]);
  return { file, wallMs: (p.endTime - p.startTime) / 1000, activeMs: activeUs / 1000, loadingMs: loadingUs / 1000, byPackage: top(byPackage, 12), topSelf: top(self, 12) };
}

/** The profiles the CLI's Node processes wrote: the dynamic provider's and the program's (under the language host). */
function profiles(dir: string): { provider?: ProfileSummary; program?: ProfileSummary } {
  const out: { provider?: ProfileSummary; program?: ProfileSummary } = {};
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
    const text = fs.readFileSync(path.join(dir, f), "utf8");
    if (text.includes("cmd/dynamic-provider")) out.provider = summarize(path.join(dir, f));
    else if (text.includes("cmd/run")) out.program = summarize(path.join(dir, f));
  }
  return out;
}

// ---- main -----------------------------------------------------------------------------------

/** `pulumi preview` in the project with extra environment (pulumiIn takes process.env when called). */
async function previewWith(p: CliProject, stack: string, env: Record<string, string>): Promise<{ spawnMs: number; exitMs: number }> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const { pulumi } = pulumiIn(p.dir, path.dirname(p.dir));
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const spawnMs = Date.now();
  await pulumi(["preview", "--expect-no-changes", "--stack", stack]);
  return { spawnMs, exitMs: Date.now() };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  log("starting a private containerd, checkpointing, making the CLI project…");
  const d = await startContainerd();
  const tmp = args.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-profile-"));
  fs.mkdirSync(tmp, { recursive: true });
  // The engine stops its plugins with SIGINT (then SIGKILL); a Node process killed by a signal writes
  // no --cpu-prof profile, so each one exits on SIGINT/SIGTERM instead.
  // The hook also records each process's start (wall clock) and argv in $PCR_PROFILE_PROCS.
  const hook = path.join(tmp, "hook.js");
  fs.writeFileSync(
    hook,
    [
      `for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => process.exit(0));`,
      `const dir = process.env.PCR_PROFILE_PROCS;`,
      `if (dir) require("fs").writeFileSync(require("path").join(dir, "proc-" + process.pid + ".json"), JSON.stringify({ startMs: Date.now() - process.uptime() * 1000, argv: process.argv }));`,
      "",
    ].join("\n"),
  );
  let p: CliProject | undefined;
  try {
    const { target } = await benchTarget(d);
    p = await newBenchProject();
    const rows: string[][] = [["", ...args.kinds]];
    const perKind: PreviewBreakdown[][] = [];
    const profiled: ReturnType<typeof profiles>[] = [];
    for (const kind of args.kinds) {
      const n = kind === "empty" ? 0 : args.n;
      const stack = await initCliStack(p, kind, n, target);
      await p.pulumi(["up", "--yes", "--skip-preview", "--stack", stack]);
      const rounds: PreviewBreakdown[] = [];
      for (let r = 0; r < args.rounds; r++) {
        const file = path.join(tmp, `${stack}-${r}.grpc.json`);
        const procDir = path.join(tmp, `${stack}-${r}-procs`);
        fs.mkdirSync(procDir);
        const { spawnMs, exitMs } = await previewWith(p, stack, { PULUMI_DEBUG_GRPC: file, PCR_PROFILE_PROCS: procDir, NODE_OPTIONS: `--require ${hook}` });
        rounds.push(breakdown(file, procDir, spawnMs, exitMs));
        log(`${kind} preview ${r + 1}/${args.rounds}: ${f0(rounds[r].wallMs)} ms`);
      }
      perKind.push(rounds);
      const profDir = path.join(tmp, `${stack}-cpuprof`);
      fs.mkdirSync(profDir);
      await previewWith(p, stack, { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profDir} --require ${hook}` });
      profiled.push(profiles(profDir));
      await p.pulumi(["destroy", "--yes", "--skip-preview", "--stack", stack]);
    }
    const field = (label: string, get: (b: PreviewBreakdown) => number, fmt: (x: number) => string = f0): void =>
      void rows.push([label, ...perKind.map((rounds) => fmt(median(rounds.map(get))))]);
    field("wall ms (with the gRPC log)", (b) => b.wallMs);
    field("  spawn → LanguageRuntime/Run (CLI start-up, backend, plugins)", (b) => b.beforeProgramMs);
    field("  LanguageRuntime/Run (the program, until its registrations are done)", (b) => b.programMs);
    field("    Run → stack registered (node, ts-node type-check, imports)", (b) => b.programToStackMs);
    field("    stack registered → provider process spawned", (b) => b.stackToProviderSpawnMs);
    field("    provider spawned → Handshake (provider host start-up)", (b) => b.providerSpawnToHandshakeMs);
    field("    first Check → last Diff", (b) => b.checkToLastDiffMs);
    field("    last Diff → Run end", (b) => b.lastDiffToRunEndMs);
    field("  Run end → exit (snapshot, shutdown)", (b) => b.afterProgramMs);
    field("Check calls", (b) => b.checks);
    field("  first Check ms (deserializes the provider)", (b) => b.firstCheckMs);
    field("  other Checks, median ms", (b) => b.otherCheckMedianMs, f1);
    field("  all Checks, sum ms (≈ their span: the engine sends them one by one)", (b) => b.checkSumMs);
    field("Diff calls", (b) => b.diffs);
    field("  Diff median ms", (b) => b.diffMedianMs, f1);
    field("  all Diffs, sum ms", (b) => b.diffSumMs);
    field("serialized __provider, chars per resource", (b) => b.providerChars);
    const lines = ["", `pulumi preview through the CLI, N=${args.n}, medians of ${args.rounds} rounds`, table(rows), ""];
    args.kinds.forEach((kind, i) => {
      for (const [which, prof] of Object.entries(profiled[i])) {
        lines.push(
          `${kind}: ${which} process CPU profile (one preview, --cpu-prof): ${f0(prof.wallMs)} ms profiled, ${f0(prof.activeMs)} ms active, ${f0(prof.loadingMs)} ms of it loading modules`,
          table([["by package (innermost package frame)", "ms"], ...prof.byPackage.map(([k, ms]) => [k, f0(ms)])]),
          table([["top self time", "ms"], ...prof.topSelf.map(([k, ms]) => [k, f1(ms)])]),
          "",
        );
      }
    });
    process.stdout.write(lines.join("\n"));
  } finally {
    log("cleaning up");
    await p?.remove();
    await d.stop();
    if (args.keep) log(`gRPC logs and CPU profiles kept in ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) runMain(main);
