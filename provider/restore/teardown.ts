import { constants as osConstants } from "node:os";
import { closeLease, isContainerdError, unlessNotFound, type ContainerdClient } from "../containerd";
import { RestoreError, withDaemonErrors } from "../errors";
import { Label, MANAGED_BY } from "../labels";
import { restoreLeasesOf } from "./restore-leases";

export interface TeardownOptions {
  /** How long the stop signal gets before SIGKILL. Default 10 s. */
  graceMs?: number;
  /** Signal to stop with; default the container's stop-signal label, else SIGTERM. */
  stopSignal?: string;
  /**
   * Tear down a container this project did not restore (no `containerd-restore/managed-by`
   * label), or one whose owner or checkpoint digest differs from `owner`/`checkpointDigest`.
   * Default false: such a container is refused (`not-owned`) and left as it is.
   */
  force?: boolean;
  /** Refuse unless the container's `containerd-restore/owner` label is this (as given to `restore`). */
  owner?: string;
  /** Refuse unless the container was restored from this checkpoint digest. */
  checkpointDigest?: string;
}

export interface TeardownResult {
  /** False when nothing of the container was left (teardown is idempotent). */
  existed: boolean;
  /** The exit status of the task, when there was one to stop. */
  exitStatus?: number;
  /** True when the stop signal was not enough and SIGKILL was sent. */
  killed: boolean;
  /** Restore leases of this id left alone (absent when none): a restore attempt, here or in another process, still holds them. */
  leasesLeft?: string[];
}

export const SIGKILL = osConstants.signals.SIGKILL;
/** How long to wait for a SIGKILLed task to be reaped. */
const KILL_WAIT_MS = 30_000;

/** A signal name (`SIGTERM`, `TERM`) or number as a number; throws on unknown names. */
export function signalNumber(signal: string): number {
  if (/^\d+$/.test(signal)) {
    const value = Number(signal);
    if (value < 1 || value > 64) throw new RangeError(`signal ${signal} is out of range (1–64)`);
    return value;
  }
  const name = (signal.toUpperCase().startsWith("SIG") ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`) as keyof typeof osConstants.signals;
  const value = osConstants.signals[name];
  if (value === undefined) throw new RangeError(`unknown signal "${signal}"`);
  return value;
}

/**
 * How much later than our own timer the gRPC deadline of a wait is: the client's
 * timer, not the server, must be what ends a wait. containerd 2.4's gRPC server
 * resets the stream when the deadline it was sent passes, and that reset reaches
 * grpc-js as CANCELLED, sometimes before grpc-js's own DEADLINE_EXCEEDED.
 */
const WAIT_DEADLINE_SLACK_MS = 5_000;
/** Pause before waiting again after the daemon ended a wait early (Wait is read-only). */
const WAIT_AGAIN_DELAY_MS = 100;

/**
 * Waits for the task to exit, up to `timeoutMs` by our own timer; resolves its
 * exit status, or undefined when it is still running at the end (or gone).
 * A wait that ends by our timer, by its gRPC deadline, or by a server-side stream
 * reset (CANCELLED) means "still running", not a failure. One that the daemon ends
 * early that way is waited again for the time left: tasks.Wait changes nothing,
 * so it is safe to repeat (unlike a mutation, which is never retried blindly).
 */
async function waitForExit(client: ContainerdClient, id: string, timeoutMs: number): Promise<number | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) return undefined;
    const timer = new AbortController();
    const handle = setTimeout(() => timer.abort(), left);
    try {
      const exited = await client.call("tasks.Wait", { containerId: id }, { timeoutMs: left + WAIT_DEADLINE_SLACK_MS, signal: timer.signal });
      return exited.exitStatus;
    } catch (err) {
      if (isContainerdError(err, "not-found")) return undefined;
      if (!timer.signal.aborted && !isContainerdError(err, "deadline-exceeded") && !isContainerdError(err, "cancelled")) throw err;
      if (timer.signal.aborted || performance.now() >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, Math.min(WAIT_AGAIN_DELAY_MS, Math.max(0, deadline - performance.now()))));
    } finally {
      clearTimeout(handle);
    }
  }
}

/** Sends `signal` to the task's init process only (`all: false`: restored copies may share a cgroup). */
async function signalTask(client: ContainerdClient, id: string, signal: number): Promise<boolean> {
  // NotFound: already exited, or never started (pid 0): either way nothing to signal.
  return (await unlessNotFound(client.call("tasks.Kill", { containerId: id, signal, all: false }))) !== undefined;
}

/**
 * Stops the task: `signal`, wait up to `graceMs`, then SIGKILL and wait. A paused
 * task is resumed first (a frozen process cannot act on a signal).
 */
export async function stopTask(
  client: ContainerdClient,
  id: string,
  signal: number,
  graceMs: number,
): Promise<{ exitStatus?: number; killed: boolean }> {
  const task = await unlessNotFound(client.call("tasks.Get", { containerId: id }));
  if (!task) return { killed: false };
  const { status, pid, exitStatus } = task.process;
  if (status === "STOPPED") return { exitStatus, killed: false };
  if (status === "CREATED" && pid === 0) return { killed: false };
  if (status === "PAUSED" || status === "PAUSING") await unlessNotFound(client.call("tasks.Resume", { containerId: id }));
  if (signal !== SIGKILL && (await signalTask(client, id, signal))) {
    const status = await waitForExit(client, id, graceMs);
    if (status !== undefined) return { exitStatus: status, killed: false };
  }
  await signalTask(client, id, SIGKILL);
  return { exitStatus: await waitForExit(client, id, KILL_WAIT_MS), killed: true };
}

/** Deletes the task record (and its shim). NotFound means already gone. */
export async function deleteTask(client: ContainerdClient, id: string): Promise<void> {
  await unlessNotFound(client.call("tasks.Delete", { containerId: id }));
}

/**
 * Deletes the leases a restore of `id` could not release (the daemon died
 * mid-restore, or the restoring process did), never one a live restore attempt
 * holds (see restore-leases.ts). Synchronous GC then takes the snapshot such a
 * lease held when no container record references it.
 */
async function deleteRestoreLeases(client: ContainerdClient, id: string): Promise<{ deleted: boolean; left: string[] }> {
  const { abandoned, live } = await restoreLeasesOf(client, id);
  for (const lease of abandoned) await closeLease(client, lease, { sync: true });
  return { deleted: abandoned.length > 0, left: live };
}

/** Why teardown must not touch `container`, or undefined when it is this caller's to remove. */
function notOwnedReason(id: string, labels: Record<string, string>, options: TeardownOptions): string | undefined {
  if (labels[Label.managedBy] !== MANAGED_BY) {
    return `container ${id} was not restored by this project (its ${Label.managedBy} label is ${JSON.stringify(labels[Label.managedBy] ?? null)}, not "${MANAGED_BY}")`;
  }
  if (options.owner !== undefined && labels[Label.owner] !== options.owner) {
    return `container ${id} belongs to ${JSON.stringify(labels[Label.owner] ?? null)}, not ${JSON.stringify(options.owner)} (label ${Label.owner})`;
  }
  if (options.checkpointDigest !== undefined && labels[Label.checkpointDigest] !== options.checkpointDigest) {
    return `container ${id} was restored from checkpoint ${labels[Label.checkpointDigest] ?? "(none)"}, not ${options.checkpointDigest}`;
  }
  return undefined;
}

/**
 * Tears container `id` down: stop signal → grace → SIGKILL → Tasks.Delete →
 * Snapshots.Remove → Containers.Delete → leases left by a killed restore. Every
 * step treats NotFound as already gone, so it is idempotent and also cleans up
 * half-restored containers (a task stuck in CREATED with pid 0, a container
 * without task or snapshot, a lease and snapshot without container).
 */
export const teardown = withDaemonErrors(async function teardown(
  client: ContainerdClient,
  id: string,
  options: TeardownOptions = {},
): Promise<TeardownResult> {
  const found = await unlessNotFound(client.call("containers.Get", { id }));
  const container = found?.container;
  const foreign = container && !options.force ? notOwnedReason(id, container.labels ?? {}, options) : undefined;
  if (foreign) {
    throw new RestoreError("not-owned", `${foreign}: teardown left it as it is; pass force: true to tear it down anyway`, { subject: "owner" });
  }
  const signal = signalNumber(options.stopSignal ?? container?.labels?.[Label.stopSignal] ?? "SIGTERM");
  const stopped = await stopTask(client, id, signal, options.graceMs ?? 10_000);
  const hadTask = stopped.exitStatus !== undefined || stopped.killed;
  await deleteTask(client, id);
  let hadSnapshot = false;
  if (container?.snapshotter && container.snapshotKey) {
    hadSnapshot =
      (await unlessNotFound(client.call("snapshots.Remove", { snapshotter: container.snapshotter, key: container.snapshotKey }))) !== undefined;
  }
  const hadContainer = (await unlessNotFound(client.call("containers.Delete", { id }))) !== undefined;
  const leases = await deleteRestoreLeases(client, id);
  return {
    existed: hadContainer || hadTask || hadSnapshot || leases.deleted,
    exitStatus: stopped.exitStatus,
    killed: stopped.killed,
    ...(leases.left.length > 0 ? { leasesLeft: leases.left } : {}),
  };
});
