/**
 * Pulumi benchmark: the RestoredContainer dynamic provider driven by the real
 * Pulumi engine (Automation API, inline program, local file:// backend) on one
 * private containerd and one checkpoint, against baselines measured in the same
 * run.
 *
 *   bash bench/pulumi.sh [--n 20] [--up-rounds 3] [--preview-rounds 5] [--json]
 *
 * 1. up: wall time of `stack.up()` (engine start-up, the inline program, the
 *    dynamic provider plugin, check/create of N RestoredContainers, and the
 *    Automation API's `stack output` + `stack history` calls that `up()` makes
 *    afterwards) against N `ctr -a SOCK -n NS containers restore --rw --live ID
 *    REF` processes, at most P at a time, P = min(N, Pulumi's default
 *    `--parallel`, read from `pulumi up --help`: GOMAXPROCS × 4, or
 *    $PULUMI_PARALLEL). The ctr wall time runs from the first spawn to the last
 *    exit. Rounds are interleaved up, ctr, up, ctr…; between rounds the stack is
 *    destroyed and the ctr containers are torn down with the library's teardown
 *    (and ctr's leftover stdio fifo dirs in /run/containerd/fifo removed), both
 *    untimed. Target: median(up) / median(ctr) ≤ 1.5.
 * 2. preview: after an up, `stack.preview()` of the unchanged N-resource stack
 *    against `stack.preview()` of a second stack with an empty program on the
 *    same backend (brought up once, so it has a state too), interleaved.
 *    Per-resource cost = (median N-stack − median empty) / N. Target ≤ 25 ms.
 *
 * The resources use stopSignal SIGKILL and stopTimeoutSeconds 0 (the restored
 * shell is pid 1 of its namespace and ignores SIGTERM), so destroy is quick;
 * neither is timed anyway. The exit status is 0 whether targets pass or miss
 * (a measurement, not a test). `--json` prints JSON on stdout (the table then
 * goes to stderr). Everything is cleaned up at the end, also on error: the
 * stack is destroyed, both stacks removed, the temp dir deleted, the daemon
 * stopped.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type PulumiFn, type Stack } from "@pulumi/pulumi/automation";
import { connect, teardown, type ContainerdClient } from "../provider/index";
import { RestoredContainer } from "../sdk";
import { fifoDirs, importBaseImage, makeCheckpoint, parseTable, removeCtrFifos, startContainerd, type PrivateContainerd } from "../test/harness/index";
import { f0, f1, intFlag, median, parseFlags, printReport, runMain, systemInfo, table, timeCtr, which } from "./common";

const TARGET_UP_RATIO = 1.5;
const TARGET_PREVIEW_MS_PER_RESOURCE = 25;
const CHECKPOINT_REF = "checkpoint/bench:v1";
const CTR_TIMEOUT_MS = 120_000;
const PROJECT = "restore-bench";
/** The repo root (dist/bench/ → ../..): the dynamic provider runs there and finds @pulumi/pulumi. */
const REPO_ROOT = path.resolve(__dirname, "..", "..");
const TEARDOWN = { graceMs: 0, stopSignal: "SIGKILL" } as const;

interface Args {
  n: number;
  upRounds: number;
  previewRounds: number;
  json: boolean;
}

const USAGE = `usage: node dist/bench/pulumi.js [--n N] [--up-rounds R] [--preview-rounds R] [--json]
  --n N                RestoredContainers in the stack / ctr restores per round (default 20)
  --up-rounds R        timed rounds of up and of ctr, interleaved (default 3)
  --preview-rounds R   timed rounds of preview, N-stack and empty stack interleaved (default 5)
  --json               print the results as JSON on stdout (the table goes to stderr)`;

function parseArgs(argv: string[]): Args {
  const args: Args = { n: 20, upRounds: 3, previewRounds: 5, json: false };
  parseFlags(argv, USAGE, (flag, value) => {
    if (flag === "--n" || flag === "-n") args.n = intFlag("--n", value(), 1, USAGE);
    else if (flag === "--up-rounds") args.upRounds = intFlag("--up-rounds", value(), 1, USAGE);
    else if (flag === "--preview-rounds") args.previewRounds = intFlag("--preview-rounds", value(), 1, USAGE);
    else if (flag === "--json") args.json = true;
    else return false;
    return true;
  });
  return args;
}

const log = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

// ---- Pulumi stacks ----------------------------------------------------------------------

/** Both stacks share this: one backend, one PULUMI_HOME, one temp dir. */
interface Backend {
  dir: string;
  pulumiCommand: PulumiCommand;
  envVars: Record<string, string>;
}

function stackEnv(dir: string): Record<string, string> {
  return {
    PULUMI_CONFIG_PASSPHRASE: "bench",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_HOME: path.join(dir, "home"),
    // The dynamic provider runs on the first `node` on PATH: make it this Node (24).
    PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`,
  };
}

async function newBackend(): Promise<Backend> {
  const bin = process.env.PULUMI_CLI_BIN;
  if (!bin) throw new Error("PULUMI_CLI_BIN is not set: run through bench/pulumi.sh (or `. .cache/env.sh`)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-bench-"));
  fs.mkdirSync(path.join(dir, "state"));
  const pulumiCommand = await PulumiCommand.get({ root: path.dirname(path.dirname(bin)), skipVersionCheck: false });
  return { dir, pulumiCommand, envVars: stackEnv(dir) };
}

async function newStack(b: Backend, stackName: string, program: PulumiFn): Promise<Stack> {
  const workDir = path.join(b.dir, `ws-${stackName}`);
  fs.mkdirSync(workDir);
  const { PULUMI_HOME, ...envVars } = b.envVars;
  return LocalWorkspace.createStack(
    { stackName, projectName: PROJECT, program },
    {
      workDir,
      pulumiCommand: b.pulumiCommand,
      pulumiHome: PULUMI_HOME,
      projectSettings: {
        name: PROJECT,
        runtime: "nodejs",
        main: REPO_ROOT,
        backend: { url: `file://${path.join(b.dir, "state")}` },
      },
      envVars,
    },
  );
}

/** Pulumi's default `--parallel` as the CLI reports it (`(default N)` in `pulumi up --help`). */
function pulumiDefaultParallel(b: Backend): number {
  const help = execFileSync(process.env.PULUMI_CLI_BIN!, ["up", "--help"], {
    encoding: "utf8",
    env: { ...process.env, ...b.envVars },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const m = /--parallel\b[^\n]*\(default (\d+)\)/.exec(help);
  if (!m) throw new Error(`could not find the --parallel default in \`pulumi up --help\`:\n${help}`);
  return Number(m[1]);
}

// ---- ctr baseline -----------------------------------------------------------------------

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try {
        results[i] = await fn(items[i]);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
  return results;
}

interface CtrRound {
  wallMs: number;
  /** Each ctr process's own wall time. */
  perProcessMs: number[];
}

async function ctrRound(d: PrivateContainerd, client: ContainerdClient, ctr: string, ids: string[], parallel: number): Promise<CtrRound> {
  const before = fifoDirs();
  try {
    const t0 = performance.now();
    const perProcessMs = await pool(ids, parallel, (id) =>
      timeCtr(ctr, ["-a", d.socket, "-n", d.namespace, "containers", "restore", "--rw", "--live", id, CHECKPOINT_REF], CTR_TIMEOUT_MS),
    );
    const wallMs = performance.now() - t0;
    await assertRunning(d, ids, "after the ctr restores");
    return { wallMs, perProcessMs };
  } finally {
    // ctr's restores carry none of this project's labels: teardown refuses them without force.
    await Promise.all(ids.map((id) => teardown(client, id, { ...TEARDOWN, force: true }).catch(() => undefined)));
    removeCtrFifos(before, ids);
  }
}

// ---- checks -----------------------------------------------------------------------------

async function runningTasks(d: PrivateContainerd): Promise<Map<string, string>> {
  return new Map(parseTable(await d.ctr(["tasks", "ls"])).map((r) => [r[0], r[2]]));
}

async function assertRunning(d: PrivateContainerd, ids: string[], when: string): Promise<void> {
  const tasks = await runningTasks(d);
  const bad = ids.filter((id) => tasks.get(id) !== "RUNNING");
  if (bad.length > 0) throw new Error(`${when}: ${bad.length} of ${ids.length} containers not RUNNING: ${bad.map((id) => `${id}=${tasks.get(id) ?? "none"}`).join(", ")}`);
}

async function assertDaemonEmpty(d: PrivateContainerd, when: string): Promise<void> {
  const containers = (await d.ctr(["containers", "ls", "-q"])).split("\n").filter((s) => s.trim() !== "");
  if (containers.length > 0) throw new Error(`${when}: the daemon still has ${containers.length} container(s): ${containers.join(", ")}`);
}

// ---- main -------------------------------------------------------------------------------

interface UpRound {
  wallMs: number;
  /** restoreDurationMs of each resource, from the stack outputs. */
  restoreMs: number[];
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const ctr = which("ctr");
  const started = new Date();
  log("starting a private containerd, importing busybox, checkpointing the counter…");
  const d = await startContainerd();
  let client: ContainerdClient | undefined;
  let backend: Backend | undefined;
  let stack: Stack | undefined;
  let empty: Stack | undefined;
  // Last resort on a signal or a crash: the temp dir (state, home, workspaces).
  const removeDir = (): void => {
    if (backend) fs.rmSync(backend.dir, { recursive: true, force: true });
  };
  process.once("exit", removeDir);
  try {
    client = connect(d.address, { namespace: d.namespace });
    const image = await importBaseImage(d);
    const checkpoint = await makeCheckpoint(d, { ref: CHECKPOINT_REF, image });

    backend = await newBackend();
    const { pulumiCommand } = backend;
    const defaultParallel = pulumiDefaultParallel(backend);
    const parallel = Math.min(defaultParallel, args.n);
    const names = Array.from({ length: args.n }, (_, i) => `r${String(i).padStart(2, "0")}`);
    stack = await newStack(backend, "n", async () => {
      const containers = names.map(
        (name) =>
          new RestoredContainer(name, {
            checkpoint: CHECKPOINT_REF,
            address: d.address,
            namespace: d.namespace,
            stopSignal: "SIGKILL",
            stopTimeoutSeconds: 0,
          }),
      );
      return {
        ids: containers.map((c) => c.containerId),
        restoreMs: containers.map((c) => c.restoreDurationMs),
      };
    });
    empty = await newStack(backend, "empty", async () => ({}));
    log(`pulumi ${pulumiCommand.version?.toString() ?? "?"}: default --parallel ${defaultParallel}; ctr concurrency ${parallel}`);

    // ---- 1. up vs ctr ----
    const ups: UpRound[] = [];
    const ctrs: CtrRound[] = [];
    for (let r = 1; r <= args.upRounds; r++) {
      const t0 = performance.now();
      const result = await stack.up();
      const wallMs = performance.now() - t0;
      if (result.summary.result !== "succeeded") throw new Error(`up round ${r}: ${result.summary.result}`);
      const ids = result.outputs.ids.value as string[];
      await assertRunning(d, ids, `after up round ${r}`);
      ups.push({ wallMs, restoreMs: result.outputs.restoreMs.value as number[] });
      await stack.destroy();
      await assertDaemonEmpty(d, `after destroy round ${r}`);

      const ctrIds = names.map((n) => `ctr-${r}-${n}`);
      ctrs.push(await ctrRound(d, client, ctr, ctrIds, parallel));
      await assertDaemonEmpty(d, `after ctr teardown round ${r}`);
      log(
        `round ${r}/${args.upRounds}: up ${f0(wallMs)} ms (restoreDurationMs median ${f0(median(ups[r - 1].restoreMs))}, max ${f0(Math.max(...ups[r - 1].restoreMs))})  ` +
          `ctr ${f0(ctrs[r - 1].wallMs)} ms (per process median ${f0(median(ctrs[r - 1].perProcessMs))}, max ${f0(Math.max(...ctrs[r - 1].perProcessMs))})`,
      );
    }

    // ---- 2. preview with no changes vs empty stack ----
    log("up (untimed) of both stacks for the previews");
    const upForPreview = await stack.up();
    await assertRunning(d, upForPreview.outputs.ids.value as string[], "before the previews");
    await empty.up();
    const previews: number[] = [];
    const emptyPreviews: number[] = [];
    const timePreview = async (s: Stack, expectSame: number): Promise<number> => {
      const t0 = performance.now();
      const p = await s.preview();
      const ms = performance.now() - t0;
      const changes = Object.entries(p.changeSummary).filter(([op, n]) => op !== "same" && (n ?? 0) > 0);
      if (changes.length > 0 || p.changeSummary.same !== expectSame) {
        throw new Error(`preview of ${s.name} is not a no-op: ${JSON.stringify(p.changeSummary)}`);
      }
      return ms;
    };
    for (let r = 1; r <= args.previewRounds; r++) {
      previews.push(await timePreview(stack, args.n + 1));
      emptyPreviews.push(await timePreview(empty, 1));
      log(`preview ${r}/${args.previewRounds}: ${args.n} resources ${f0(previews[r - 1])} ms  empty ${f0(emptyPreviews[r - 1])} ms`);
    }

    // ---- results ----
    const upMedian = median(ups.map((u) => u.wallMs));
    const ctrMedian = median(ctrs.map((c) => c.wallMs));
    const ratio = upMedian / ctrMedian;
    const ratioPass = ratio <= TARGET_UP_RATIO;
    const previewMedian = median(previews);
    const emptyMedian = median(emptyPreviews);
    const perResource = (previewMedian - emptyMedian) / args.n;
    const perResourcePass = perResource <= TARGET_PREVIEW_MS_PER_RESOURCE;
    const allRestoreMs = ups.flatMap((u) => u.restoreMs);
    const allCtrMs = ctrs.flatMap((c) => c.perProcessMs);
    const rounds = (v: number[]): string => v.map(f0).join(", ");

    const report = [
      "",
      `pulumi benchmark: N=${args.n} RestoredContainers from one checkpoint, one private daemon; ` +
        `Pulumi default --parallel ${defaultParallel} (ctr concurrency ${parallel})`,
      table([
        ["measurement", "rounds", "median ms", "each round ms"],
        [`stack.up() of ${args.n} (engine start-up included)`, String(ups.length), f0(upMedian), rounds(ups.map((u) => u.wallMs))],
        [`${args.n} × ctr containers restore, ${parallel} at a time`, String(ctrs.length), f0(ctrMedian), rounds(ctrs.map((c) => c.wallMs))],
        [`stack.preview(), ${args.n} resources, no changes`, String(previews.length), f0(previewMedian), rounds(previews)],
        ["stack.preview(), empty stack", String(emptyPreviews.length), f0(emptyMedian), rounds(emptyPreviews)],
      ]),
      "",
      `  per restore inside Pulumi (restoreDurationMs output): median ${f0(median(allRestoreMs))} ms, max ${f0(Math.max(...allRestoreMs))} ms`,
      `  per ctr process: median ${f0(median(allCtrMs))} ms, max ${f0(Math.max(...allCtrMs))} ms`,
      "",
      table([
        ["target", "value", "limit", "result"],
        ["up / ctr (median wall)", ratio.toFixed(2) + "×", `≤ ${TARGET_UP_RATIO}×`, ratioPass ? "PASS" : "MISS"],
        ["preview (N-stack − empty) / N", `${f1(perResource)} ms`, `≤ ${TARGET_PREVIEW_MS_PER_RESOURCE} ms`, perResourcePass ? "PASS" : "MISS"],
      ]),
      "",
    ].join("\n");

    printReport(report, args.json, () => ({
      startedAt: started.toISOString(),
      n: args.n,
      env: {
        node: process.version,
        pulumi: pulumiCommand.version?.toString() ?? "unknown",
        ...systemInfo(ctr),
      },
      checkpoint: { ref: checkpoint.ref, digest: checkpoint.digest },
      pulumiDefaultParallel: defaultParallel,
      ctrConcurrency: parallel,
      up: {
        roundsMs: ups.map((u) => u.wallMs),
        medianMs: upMedian,
        restoreDurationMs: { median: median(allRestoreMs), max: Math.max(...allRestoreMs), perRound: ups.map((u) => u.restoreMs) },
      },
      ctr: {
        roundsMs: ctrs.map((c) => c.wallMs),
        medianMs: ctrMedian,
        perProcessMs: { median: median(allCtrMs), max: Math.max(...allCtrMs), perRound: ctrs.map((c) => c.perProcessMs) },
      },
      preview: { roundsMs: previews, medianMs: previewMedian },
      previewEmpty: { roundsMs: emptyPreviews, medianMs: emptyMedian },
      targets: {
        upOverCtr: { target: TARGET_UP_RATIO, value: ratio, pass: ratioPass },
        previewMsPerResource: { target: TARGET_PREVIEW_MS_PER_RESOURCE, value: perResource, pass: perResourcePass },
      },
    }));
  } finally {
    log("cleaning up: destroy, remove stacks, stop the daemon");
    if (stack) {
      await stack.destroy().catch((err: unknown) => log(`destroy failed: ${(err as Error).message ?? err}`));
      await stack.workspace.removeStack(stack.name, { force: true }).catch(() => undefined);
    }
    if (empty) {
      await empty.destroy().catch(() => undefined);
      await empty.workspace.removeStack(empty.name, { force: true }).catch(() => undefined);
    }
    removeDir();
    client?.close();
    await d.stop();
  }
}

if (require.main === module) runMain(main);
