/**
 * Pulumi benchmark: N RestoredContainers against N containers of a plain
 * shell-out dynamic provider (bench/shell-provider.ts: execFile of `ctr
 * containers restore` / `ctr tasks kill`, `tasks rm`, `containers rm`, what a
 * team would write without this project) and against N raw `ctr` restores, on
 * one private containerd and one checkpoint, all in one run.
 *
 *   bash bench/pulumi.sh [--ns 1,10,20,50] [--rounds 2] [--drivers cli,automation] [--json] [--out FILE]
 *
 * Drivers, both with the local file:// backend and the same Pulumi CLI:
 * - cli: a project directory made like the CLI tests' (test/cli/project.ts:
 *   this package from `npm pack`, @pulumi/pulumi at the repo's dev version so
 *   both drivers run the same SDK, TypeScript program, the pulumi-language-nodejs
 *   host); the program reads `kind` and `n` from stack config, one stack per
 *   kind and N. Each op is one `pulumi` process, timed from spawn to exit:
 *   `pulumi up --yes --skip-preview`, `pulumi preview --expect-no-changes`,
 *   `pulumi destroy --yes --skip-preview`. (`--skip-preview` because that is
 *   what the Automation API's up/destroy run; a plain `pulumi up --yes` runs a
 *   preview first and costs about one extra preview figure.)
 * - automation: the Automation API, inline program (`stack.up()`, which also
 *   runs `stack output` and `stack history` afterwards, `stack.preview()`,
 *   `stack.destroy()`), the dynamic provider run from the repo root.
 *
 * Kinds: `restored-container`, `shell-out`, `ctr` (N × ctrRestore at most P at
 * a time for "up", N × ctrRemove at most P at a time for "destroy": the same
 * ctr commands as the shell-out provider, from this process) and `empty` (the
 * same program with n = 0, brought up once: the preview baseline). P is
 * Pulumi's default `--parallel` (GOMAXPROCS × 4, read from `pulumi up --help`),
 * which both drivers use as they are not given one.
 *
 * For each N, R rounds; in each round, for each driver, for each kind (the
 * order rotates each round so drift hits all): up, then (not ctr) preview of
 * the unchanged stack, then destroy; then a preview of the empty stack. Checks,
 * untimed: after up the daemon holds exactly N containers, all RUNNING; a
 * preview changes nothing (no changes reported, the same containers); after
 * destroy the daemon holds none (ctr's stdio fifo dirs are removed then). A
 * failed check aborts the run, so a broken path cannot report a figure.
 *
 * Ratios: up RestoredContainer / shell-out (median wall, target ≤ 0.8 at N=20)
 * and preview per resource through the CLI = (median N-stack preview − median
 * empty preview) / N (target ≤ 25 ms). The exit status is 0 whether targets
 * pass or miss (a measurement, not a test). `--json` prints the results JSON
 * on stdout (the table goes to stderr), `--out FILE` writes it to FILE.
 * Everything is cleaned up at the end, also on error: the daemon stopped
 * (which removes every task and container left), the project and temp dirs
 * (every stack's state) deleted, ctr's fifo dirs removed.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type PulumiFn, type Stack } from "@pulumi/pulumi/automation";
import { RestoredContainer } from "../sdk";
import { fifoDirs, importBaseImage, makeCheckpoint, parseTable, removeCtrFifos, startContainerd, type Checkpoint, type PrivateContainerd } from "../test/harness/index";
import { DEV_PULUMI, REPO_ROOT, newCliProject, type CliProject } from "../test/cli/project";
import { f0, f1, intFlag, median, parseFlags, printReport, runMain, systemInfo, table, which } from "./common";
import { ShellContainer, ctrRemove, ctrRestore, type ShellContainerInputs } from "./shell-provider";

const TARGET_UP_RATIO = 0.8;
const TARGET_UP_RATIO_N = 20;
const TARGET_PREVIEW_MS_PER_RESOURCE = 25;
const CHECKPOINT_REF = "checkpoint/bench:v1";
const PROJECT = "restore-bench";

type DriverName = "cli" | "automation";
type Kind = "restored-container" | "shell-out" | "ctr" | "empty";
type Op = "up" | "preview" | "destroy";
/** The kinds a round runs up/preview/destroy for (empty is only previewed). */
const KINDS = ["restored-container", "shell-out", "ctr"] as const satisfies readonly Kind[];
export type StackKind = Exclude<Kind, "ctr">;

interface Args {
  ns: number[];
  rounds: number;
  drivers: DriverName[];
  json: boolean;
  out: string | undefined;
}

const USAGE = `usage: node dist/bench/pulumi.js [--ns 1,10,20,50] [--rounds R] [--drivers cli,automation] [--json] [--out FILE]
  --ns LIST        resources per stack / ctr restores per round, comma-separated (default 1,10,20,50)
  --rounds R       timed rounds per N (default 2)
  --drivers LIST   cli, automation or both (default cli,automation)
  --json           print the results as JSON on stdout (the table goes to stderr)
  --out FILE       also write the results JSON to FILE`;

function parseArgs(argv: string[]): Args {
  const args: Args = { ns: [1, 10, 20, 50], rounds: 2, drivers: ["cli", "automation"], json: false, out: undefined };
  const list = (flag: string, value: string | undefined): string[] => {
    const items = (value ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
    if (items.length === 0) throw new Error(`${flag} needs a comma-separated list\n${USAGE}`);
    return items;
  };
  parseFlags(argv, USAGE, (flag, value) => {
    if (flag === "--ns") args.ns = list(flag, value()).map((s) => intFlag(flag, s, 1, USAGE));
    else if (flag === "--rounds") args.rounds = intFlag(flag, value(), 1, USAGE);
    else if (flag === "--drivers") {
      args.drivers = list(flag, value()).map((s) => {
        if (s !== "cli" && s !== "automation") throw new Error(`--drivers: unknown driver ${s}\n${USAGE}`);
        return s;
      });
    } else if (flag === "--json") args.json = true;
    else if (flag === "--out") {
      args.out = value();
      if (!args.out) throw new Error(`--out needs a file\n${USAGE}`);
    } else return false;
    return true;
  });
  return args;
}

const log = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

// ---- what the stacks declare ------------------------------------------------------------

/** Where the containers go: the stack config of every stack (plus `kind` and `n`). */
export interface Target {
  address: string;
  socket: string;
  namespace: string;
  checkpoint: string;
  ctr: string;
}

/** Imports busybox into `d`, checkpoints the counter as {@link CHECKPOINT_REF}: where the stacks restore. */
export async function benchTarget(d: PrivateContainerd): Promise<{ checkpoint: Checkpoint; target: Target }> {
  const checkpoint = await makeCheckpoint(d, { ref: CHECKPOINT_REF, image: await importBaseImage(d) });
  return { checkpoint, target: { address: d.address, socket: d.socket, namespace: d.namespace, checkpoint: CHECKPOINT_REF, ctr: which("ctr") } };
}

/** Resource names c00, c01, …; the shell-out container ids are `<stack>-<name>`. */
const resourceNames = (n: number): string[] => Array.from({ length: n }, (_, i) => `c${String(i).padStart(2, "0")}`);

/** The CLI project's program: the same resources as {@link inlineProgram}, from stack config. */
const CLI_PROGRAM = `import * as pulumi from "@pulumi/pulumi";
import { RestoredContainer } from "pulumi-containerd-restore";
import { ShellContainer } from "./shell-provider";

const config = new pulumi.Config();
const kind = config.require("kind");
const names = Array.from({ length: config.requireNumber("n") }, (_, i) => \`c\${String(i).padStart(2, "0")}\`);
const [address, socket, namespace, checkpoint, ctr] = ["address", "socket", "namespace", "checkpoint", "ctr"].map((k) => config.require(k));
export const ids = names.map((name) =>
  kind === "restored-container"
    ? new RestoredContainer(name, { checkpoint, address, namespace, stopSignal: "SIGKILL", stopTimeoutSeconds: 0 }).containerId
    : new ShellContainer(name, { socket, namespace, checkpoint, ctr, containerId: \`\${pulumi.getStack()}-\${name}\` }).containerId,
);
`;

function inlineProgram(kind: StackKind, n: number, stackName: string, t: Target): PulumiFn {
  return async () => ({
    ids: resourceNames(kind === "empty" ? 0 : n).map((name) =>
      kind === "restored-container"
        ? new RestoredContainer(name, { checkpoint: t.checkpoint, address: t.address, namespace: t.namespace, stopSignal: "SIGKILL", stopTimeoutSeconds: 0 }).containerId
        : new ShellContainer(name, { socket: t.socket, namespace: t.namespace, checkpoint: t.checkpoint, ctr: t.ctr, containerId: `${stackName}-${name}` }).containerId,
    ),
  });
}

// ---- drivers ----------------------------------------------------------------------------

/** One stack of a driver: each op resolves once the op succeeded (and, for preview, changed nothing). */
interface BenchStack {
  readonly name: string;
  up(): Promise<void>;
  preview(): Promise<void>;
  destroy(): Promise<void>;
}

interface Driver {
  readonly name: DriverName;
  /** @pulumi/pulumi the program and the dynamic providers run. */
  readonly sdkVersion: string;
  stack(kind: StackKind, n: number): Promise<BenchStack>;
  close(): Promise<void>;
}

const stackName = (kind: StackKind, n: number): string => (kind === "empty" ? "empty" : `${kind === "restored-container" ? "rc" : "sh"}-${n}`);

/** The CLI project: the program {@link CLI_PROGRAM} and a copy of bench/shell-provider.ts next to it, made like the CLI tests'. */
export async function newBenchProject(): Promise<CliProject> {
  const p = await newCliProject("restore-counter", { pulumiVersion: DEV_PULUMI, program: CLI_PROGRAM });
  fs.copyFileSync(path.join(REPO_ROOT, "bench", "shell-provider.ts"), path.join(p.dir, "shell-provider.ts"));
  return p;
}

/** `pulumi stack init` of the stack for `kind` and `n` in the CLI project, and its config; returns its name. */
export async function initCliStack(p: CliProject, kind: StackKind, n: number, t: Target): Promise<string> {
  const name = stackName(kind, n);
  await p.pulumi(["stack", "init", name]);
  const config = { kind, n: String(kind === "empty" ? 0 : n), ...t };
  await p.pulumi(["config", "set-all", "--stack", name, ...Object.entries(config).flatMap(([k, v]) => ["--plaintext", `${k}=${v}`])]);
  return name;
}

/** The CLI driver: one project directory, one stack per kind and N, `pulumi … --stack S` for each op. */
async function cliDriver(t: Target): Promise<Driver> {
  const p = await newBenchProject();
  return {
    name: "cli",
    sdkVersion: p.pulumiVersion,
    async stack(kind, n) {
      const name = await initCliStack(p, kind, n, t);
      return {
        name,
        up: async () => void (await p.pulumi(["up", "--yes", "--skip-preview", "--stack", name])),
        preview: async () => void (await p.pulumi(["preview", "--expect-no-changes", "--stack", name])),
        destroy: async () => void (await p.pulumi(["destroy", "--yes", "--skip-preview", "--stack", name])),
      };
    },
    close: () => p.remove(),
  };
}

/** The Automation API driver: inline programs, workspaces in a temp dir, the dynamic providers run from the repo root. */
async function automationDriver(t: Target): Promise<Driver> {
  const bin = process.env.PULUMI_CLI_BIN;
  if (!bin) throw new Error("PULUMI_CLI_BIN is not set: run through bench/pulumi.sh (or `. .cache/env.sh`)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-bench-"));
  fs.mkdirSync(path.join(dir, "state"));
  const pulumiCommand = await PulumiCommand.get({ root: path.dirname(path.dirname(bin)), skipVersionCheck: false });
  const sdkVersion = (JSON.parse(fs.readFileSync(require.resolve("@pulumi/pulumi/package.json"), "utf8")) as { version: string }).version;
  const envVars = {
    PULUMI_CONFIG_PASSPHRASE: "bench",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    // The dynamic provider runs on the first `node` on PATH: make it this Node (24).
    PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`,
  };
  return {
    name: "automation",
    sdkVersion,
    async stack(kind, n) {
      const name = stackName(kind, n);
      const workDir = path.join(dir, `ws-${name}`);
      fs.mkdirSync(workDir);
      const stack: Stack = await LocalWorkspace.createStack(
        { stackName: name, projectName: PROJECT, program: inlineProgram(kind, n, name, t) },
        {
          workDir,
          pulumiCommand,
          pulumiHome: path.join(dir, "home"),
          projectSettings: { name: PROJECT, runtime: "nodejs", main: REPO_ROOT, backend: { url: `file://${path.join(dir, "state")}` } },
          envVars,
        },
      );
      return {
        name,
        async up() {
          const r = await stack.up();
          if (r.summary.result !== "succeeded") throw new Error(`automation up of ${name}: ${r.summary.result}`);
        },
        async preview() {
          const p = await stack.preview();
          const changes = Object.entries(p.changeSummary).filter(([op, count]) => op !== "same" && (count ?? 0) > 0);
          if (changes.length > 0) throw new Error(`automation preview of ${name} is not a no-op: ${JSON.stringify(p.changeSummary)}`);
        },
        destroy: async () => void (await stack.destroy()),
      };
    },
    close: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Pulumi's default `--parallel` as the CLI reports it (`(default N)` in `pulumi up --help`). */
function pulumiDefaultParallel(): number {
  const help = execFileSync(process.env.PULUMI_CLI_BIN!, ["up", "--help"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const m = /--parallel\b[^\n]*\(default (\d+)\)/.exec(help);
  if (!m) throw new Error(`could not find the --parallel default in \`pulumi up --help\`:\n${help}`);
  return Number(m[1]);
}

// ---- raw ctr ------------------------------------------------------------------------------

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first failure once all in flight are done. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && failed === undefined) {
      const item = items[next++];
      await fn(item).catch((err: unknown) => void (failed ??= err));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

// ---- checks -------------------------------------------------------------------------------

async function containers(d: PrivateContainerd): Promise<string[]> {
  return (await d.ctr(["containers", "ls", "-q"])).split("\n").map((s) => s.trim()).filter((s) => s !== "").sort();
}

/** The daemon holds exactly `n` containers, each with a RUNNING task; returns their ids. */
async function assertRunning(d: PrivateContainerd, n: number, when: string): Promise<string[]> {
  const ids = await containers(d);
  const tasks = new Map(parseTable(await d.ctr(["tasks", "ls"])).map((r) => [r[0], r[2]]));
  const bad = ids.filter((id) => tasks.get(id) !== "RUNNING");
  if (ids.length !== n || bad.length > 0) {
    throw new Error(`${when}: expected ${n} RUNNING containers, the daemon has ${ids.length}: ${ids.map((id) => `${id}=${tasks.get(id) ?? "no task"}`).join(", ")}`);
  }
  return ids;
}

async function assertEmpty(d: PrivateContainerd, when: string): Promise<void> {
  const left = await containers(d);
  if (left.length > 0) throw new Error(`${when}: the daemon still has ${left.length} container(s): ${left.join(", ")}`);
}

// ---- results ------------------------------------------------------------------------------

export interface BenchResult {
  driver: DriverName;
  n: number;
  kind: Kind;
  op: Op;
  medianMs: number;
  roundsMs: number[];
}

class Results {
  readonly rows: BenchResult[] = [];

  add(driver: DriverName, n: number, kind: Kind, op: Op, ms: number): void {
    let row = this.rows.find((r) => r.driver === driver && r.n === n && r.kind === kind && r.op === op);
    if (!row) this.rows.push((row = { driver, n, kind, op, medianMs: NaN, roundsMs: [] }));
    row.roundsMs.push(ms);
    row.medianMs = median(row.roundsMs);
  }

  median(driver: DriverName, n: number, kind: Kind, op: Op): number {
    return this.rows.find((r) => r.driver === driver && r.n === n && r.kind === kind && r.op === op)?.medianMs ?? NaN;
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

// ---- main ---------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const ctr = which("ctr");
  const cliBin = process.env.PULUMI_CLI_BIN;
  if (!cliBin) throw new Error("PULUMI_CLI_BIN is not set: run through bench/pulumi.sh (or `. .cache/env.sh`)");
  const started = new Date();
  const parallel = pulumiDefaultParallel();
  const cliVersion = execFileSync(cliBin, ["version"], { encoding: "utf8" }).trim();
  log("starting a private containerd, importing busybox, checkpointing the counter…");
  const d = await startContainerd();
  const fifosBefore = fifoDirs();
  /** Every container id ctr made (shell-out and raw ctr), for the fifo dirs ctr leaves. */
  const ctrIds: string[] = [];
  const drivers: Driver[] = [];
  try {
    const { checkpoint, target } = await benchTarget(d);
    for (const name of args.drivers) {
      log(`setting up the ${name} driver${name === "cli" ? " (npm pack, npm install in a project dir)" : ""}…`);
      drivers.push(await (name === "cli" ? cliDriver(target) : automationDriver(target)));
    }
    log(`pulumi ${cliVersion}: default --parallel ${parallel}; SDK ${drivers.map((dr) => `${dr.name} ${dr.sdkVersion}`).join(", ")}`);
    const results = new Results();

    const empties = new Map<DriverName, BenchStack>();
    for (const dr of drivers) {
      const empty = await dr.stack("empty", 0);
      await empty.up();
      empties.set(dr.name, empty);
    }

    for (const n of args.ns) {
      const byDriver = new Map<DriverName, Map<StackKind, BenchStack>>();
      for (const dr of drivers) {
        const m = new Map<StackKind, BenchStack>();
        for (const kind of ["restored-container", "shell-out"] as const) {
          const s = await dr.stack(kind, n);
          m.set(kind, s);
          if (kind === "shell-out") ctrIds.push(...resourceNames(n).map((name) => `${s.name}-${name}`));
        }
        byDriver.set(dr.name, m);
      }
      for (let r = 0; r < args.rounds; r++) {
        const kinds = KINDS.map((_, i) => KINDS[(i + r) % KINDS.length]);
        for (const dr of drivers) {
          const line: string[] = [];
          for (const kind of kinds) {
            const what = `${dr.name} N=${n} round ${r + 1} ${kind}`;
            if (kind === "ctr") {
              const items: ShellContainerInputs[] = resourceNames(n).map((name) => ({ ...target, containerId: `ctr-${dr.name}-${n}-${r}-${name}` }));
              ctrIds.push(...items.map((c) => c.containerId));
              const up = await timed(() => pool(items, parallel, ctrRestore));
              await assertRunning(d, n, `after ${what} up`);
              const destroy = await timed(() => pool(items, parallel, ctrRemove));
              await assertEmpty(d, `after ${what} destroy`);
              results.add(dr.name, n, kind, "up", up);
              results.add(dr.name, n, kind, "destroy", destroy);
              line.push(`ctr up ${f0(up)} destroy ${f0(destroy)}`);
            } else {
              const s = byDriver.get(dr.name)!.get(kind)!;
              const up = await timed(() => s.up());
              const ids = await assertRunning(d, n, `after ${what} up`);
              const preview = await timed(() => s.preview());
              const after = await assertRunning(d, n, `after ${what} preview`);
              if (after.join() !== ids.join()) throw new Error(`${what}: preview changed the daemon's containers`);
              const destroy = await timed(() => s.destroy());
              await assertEmpty(d, `after ${what} destroy`);
              results.add(dr.name, n, kind, "up", up);
              results.add(dr.name, n, kind, "preview", preview);
              results.add(dr.name, n, kind, "destroy", destroy);
              line.push(`${kind} up ${f0(up)} preview ${f0(preview)} destroy ${f0(destroy)}`);
            }
            removeCtrFifos(fifosBefore, ctrIds);
          }
          const emptyPreview = await timed(() => empties.get(dr.name)!.preview());
          await assertEmpty(d, `after the ${dr.name} empty preview`);
          results.add(dr.name, n, "empty", "preview", emptyPreview);
          log(`${dr.name} N=${n} round ${r + 1}/${args.rounds}: ${line.join("; ")}; empty preview ${f0(emptyPreview)} ms`);
        }
      }
    }

    // ---- report ----
    const order = (k: Kind): number => ["restored-container", "shell-out", "ctr", "empty"].indexOf(k);
    const opOrder = (o: Op): number => ["up", "preview", "destroy"].indexOf(o);
    results.rows.sort((a, b) => a.driver.localeCompare(b.driver) || a.n - b.n || opOrder(a.op) - opOrder(b.op) || order(a.kind) - order(b.kind));
    const ratioRows: string[][] = [];
    for (const dr of drivers) {
      for (const n of args.ns) {
        const ratio = results.median(dr.name, n, "restored-container", "up") / results.median(dr.name, n, "shell-out", "up");
        const perResource = (results.median(dr.name, n, "restored-container", "preview") - results.median(dr.name, n, "empty", "preview")) / n;
        const perShell = (results.median(dr.name, n, "shell-out", "preview") - results.median(dr.name, n, "empty", "preview")) / n;
        const targeted = dr.name === "cli";
        ratioRows.push([
          dr.name,
          String(n),
          `${ratio.toFixed(2)}×` + (n === TARGET_UP_RATIO_N ? ` ${ratio <= TARGET_UP_RATIO ? "PASS" : "MISS"} (≤ ${TARGET_UP_RATIO})` : ""),
          `${f1(perResource)} ms` + (targeted ? ` ${perResource <= TARGET_PREVIEW_MS_PER_RESOURCE ? "PASS" : "MISS"} (≤ ${TARGET_PREVIEW_MS_PER_RESOURCE})` : ""),
          `${f1(perShell)} ms`,
        ]);
      }
    }
    const report = [
      "",
      `pulumi benchmark: one private daemon, one checkpoint; pulumi ${cliVersion}, default --parallel ${parallel} (raw ctr: the same); ${args.rounds} round(s)`,
      table([
        ["driver", "N", "op", "kind", "median ms", "rounds ms"],
        ...results.rows.map((r) => [r.driver, String(r.n), r.op, r.kind, f0(r.medianMs), r.roundsMs.map(f0).join(", ")]),
      ]),
      "",
      table([["driver", "N", "up RC / shell-out", "preview per RC (− empty)", "preview per shell-out"], ...ratioRows]),
      "",
    ].join("\n");

    const json = {
      startedAt: started.toISOString(),
      env: { node: process.version, pulumi: cliVersion, pulumiSdk: Object.fromEntries(drivers.map((dr) => [dr.name, dr.sdkVersion])), ...systemInfo(ctr) },
      checkpoint: { ref: checkpoint.ref, digest: checkpoint.digest },
      parallel,
      rounds: args.rounds,
      ns: args.ns,
      results: results.rows,
    };
    if (args.out) fs.writeFileSync(args.out, `${JSON.stringify(json, null, 2)}\n`);
    printReport(report, args.json, () => json);
  } finally {
    // Stopping the daemon removes every task and container (of a failed op too); deleting the
    // drivers' dirs removes every stack's state, so no destroy is needed here.
    log("cleaning up: remove the project and the stacks' state, stop the daemon");
    for (const dr of drivers) await dr.close().catch((err: unknown) => log(`removing the ${dr.name} driver's files failed: ${String(err)}`));
    await d.stop();
    removeCtrFifos(fifosBefore, ctrIds);
  }
}

if (require.main === module) runMain(main);
