/**
 * Pulumi stacks for end-to-end tests: the real Pulumi CLI (built by
 * scripts/setup.sh) through the Automation API, an inline program, a local
 * file:// backend in a temp dir, no update checks and no plugin downloads.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type EngineEvent, type PulumiFn, type Stack } from "@pulumi/pulumi/automation";
import { CheckpointCopy, ContainerCheckpoint, RestoredContainer } from "../../sdk";

/** The repo root: the dynamic provider runs there and finds @pulumi/pulumi in its node_modules. */
export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");

export const RESOURCE_TYPE = "pulumi-nodejs:dynamic/containerd:RestoredContainer";

export interface TestStack {
  stack: Stack;
  /** The backend and PULUMI_HOME dir. */
  dir: string;
  /** Removes the stack and its temp dir (after the test destroyed its resources). */
  remove(): Promise<void>;
}

function pulumiRoot(): string | undefined {
  const bin = process.env.PULUMI_CLI_BIN;
  return bin ? path.dirname(path.dirname(bin)) : undefined;
}

export interface NewStackOptions {
  /** The program directory (the dynamic provider's working directory). Default the repo root. */
  main?: string;
}

/** A fresh stack on a local backend, running `program`. */
export async function newStack(projectName: string, program: PulumiFn, options: NewStackOptions = {}): Promise<TestStack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-e2e-"));
  fs.mkdirSync(path.join(dir, "state"));
  const pulumiCommand = await PulumiCommand.get({ root: pulumiRoot(), skipVersionCheck: false });
  const stack = await LocalWorkspace.createStack(
    { stackName: "test", projectName, program },
    {
      pulumiCommand,
      pulumiHome: path.join(dir, "home"),
      projectSettings: {
        name: projectName,
        runtime: "nodejs",
        // The provider process starts here and must find @pulumi/pulumi.
        main: options.main ?? REPO_ROOT,
        backend: { url: `file://${path.join(dir, "state")}` },
      },
      envVars: {
        PULUMI_CONFIG_PASSPHRASE: "test",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        // The dynamic provider runs on the first `node` on PATH: make it this Node (24).
        PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`,
      },
    },
  );
  return {
    stack,
    dir,
    async remove() {
      await stack.workspace.removeStack(stack.name, { force: true }).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The step events of our resource type from an operation's engine events. */
export function resourceSteps(events: EngineEvent[]) {
  return events
    .map((e) => e.resourcePreEvent?.metadata)
    .filter((m): m is NonNullable<typeof m> => m !== undefined && m.type === RESOURCE_TYPE);
}

/** Collects engine events; pass `collector.onEvent` to an operation. */
export function eventCollector() {
  const events: EngineEvent[] = [];
  return { events, onEvent: (e: EngineEvent) => void events.push(e) };
}

/** The message a failed operation reports (CommandError text with stdout and stderr). */
export async function failureOf(operation: Promise<unknown>): Promise<string> {
  try {
    await operation;
  } catch (err) {
    return String((err as Error).message ?? err);
  }
  throw new Error("the operation succeeded; expected it to fail");
}

/** A daemon as the migration program addresses it. */
interface DaemonAt {
  address: string;
  namespace: string;
}

export interface MigrationProgramOptions {
  /** The running container to checkpoint on `source`. */
  containerId: string;
  /** The checkpoint image's ref on the source (the copy keeps it on the target). */
  ref: string;
  /** Resource names of the copy and of the restored container. */
  copyName: string;
  restoredName: string;
  /** Where the restored container's stdout and stderr go, on the target host. */
  logPath: string;
  /** Keep the checkpoint image on the source when the stack is destroyed. */
  retainCheckpoint?: boolean;
}

/**
 * The migration as users write it (README, examples/migrate): checkpoint on the
 * source, copy to the target, restore there. Its outputs: both digests, the
 * bytes moved, the restored pid, status and daemon version.
 */
export function migrationProgram(source: DaemonAt, target: DaemonAt, options: MigrationProgramOptions): PulumiFn {
  return async () => {
    const from = { address: source.address, namespace: source.namespace };
    const to = { address: target.address, namespace: target.namespace };
    const checkpoint = new ContainerCheckpoint("app", { containerId: options.containerId, ...from, ref: options.ref }, { retainOnDelete: options.retainCheckpoint ?? false });
    const copy = new CheckpointCopy(options.copyName, { source: { ...from, ref: checkpoint.ref }, target: to });
    const restored = new RestoredContainer(options.restoredName, { checkpoint: copy.targetRef, ...to, logPath: options.logPath, stopTimeoutSeconds: 1 });
    return {
      digest: checkpoint.digest,
      copiedDigest: copy.digest,
      bytesMoved: copy.bytesMoved,
      pid: restored.pid,
      status: restored.status,
      daemonVersion: restored.daemonVersion,
    };
  };
}
