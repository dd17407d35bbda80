import { isLocalDaemon, type ContainerdClient, type Descriptor, type Mount } from "../containerd";
import { RestoreError, type CleanupError, type RestoreErrorCode, type StepName } from "../errors";
import { runTransaction, type StepTiming, type Transaction } from "../transaction";
import { beginAttempt, endAttempt, restoreLeaseId } from "./restore-leases";
import { assertPlanSupports, type RestorePlan } from "./plan";
import { invalidIdReason, invalidLogPathReason, invalidSignalReason, reservedLabelIn } from "./rules";
import {
  applyRwLayer,
  containerRecord,
  createContainer,
  createTask,
  criuSnapshotKey,
  prepareCriuSnapshot,
  prepareSnapshot,
  removeCriuSnapshot,
  startTask,
  unpackCriuImage,
  type CriuSnapshot,
  type DescribedStep,
  type ResolvedRestoreOptions,
} from "./steps";
import { createCriuWorkDir, removeCriuWorkDir } from "./criu-log";
import { assertHostPathsResolveInside, enforcePlanPolicy, takesCriuImagePath, taskRuntimeOptions } from "./policy";
import type { RestorePolicy } from "../policy";

export interface RestoreOptions extends RestorePolicy {
  /** The new container's id: `^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$`, at most 76 characters. */
  id: string;
  /** Restore the process from the CRIU image (default). False: filesystem-only restore, fresh process. */
  live?: boolean;
  /** Apply the checkpoint's rw layer (default true). */
  restoreRw?: boolean;
  /** Extra container labels. */
  labels?: Record<string, string>;
  /** Signal teardown stops the container with (default SIGTERM); stored as containerd's stop-signal label. */
  stopSignal?: string;
  /** Absolute path on the daemon host for the container's stdout and stderr. */
  logPath?: string;
  /** Who manages the container (recorded as a label), e.g. `pulumi:<project>:<resource>`. */
  owner?: string;
}

export type { StepTiming };

export interface RestoreResult {
  id: string;
  pid: number;
  plan: RestorePlan;
  /** When the task started (ISO 8601). */
  restoredAt: string;
  durationMs: number;
  steps: StepTiming[];
  /** Cleanup that failed after a good restore (the lease could not be released; it expires within an hour). */
  cleanupErrors: CleanupError[];
}

/** The options with defaults applied; refuses what the rules (rules.ts) refuse, before anything changes. */
export function resolveOptions(options: RestoreOptions): ResolvedRestoreOptions {
  const refuse = (subject: string, why: string, code: RestoreErrorCode = "invalid-option") => new RestoreError(code, `${subject} ${why}`, { subject });
  const idProblem = invalidIdReason(options.id);
  if (idProblem) throw refuse("id", `"${options.id}" ${idProblem}`, "invalid-id");
  const logPathProblem = options.logPath === undefined ? undefined : invalidLogPathReason(options.logPath);
  if (logPathProblem) throw refuse("logPath", logPathProblem);
  const signalProblem = options.stopSignal === undefined ? undefined : invalidSignalReason(options.stopSignal);
  if (signalProblem) throw refuse("stopSignal", signalProblem);
  const reserved = reservedLabelIn(options.labels ?? {});
  if (reserved) throw refuse("labels", `must not set ${reserved}: this project writes it`);
  return {
    id: options.id,
    live: options.live ?? true,
    restoreRw: options.restoreRw ?? true,
    labels: options.labels ?? {},
    stopSignal: options.stopSignal,
    logPath: options.logPath,
    owner: options.owner,
  };
}

/** Where a restore runs: a local daemon's CRIU work and image paths are the provider's own. */
export interface RestoreSite {
  /** The daemon is on this host (a unix socket), not behind `tcp://`. */
  local: boolean;
}

/** Whether a restore unpacks the CRIU image into its own snapshot: live, on a local daemon, with runc options it can set. */
function ownsCriuImage(plan: RestorePlan, options: Pick<ResolvedRestoreOptions, "live">, site: RestoreSite): boolean {
  return options.live && site.local && plan.criuImage !== undefined && takesCriuImagePath(plan);
}

/**
 * The steps of a restore in the order `restore` runs them, built like containerd's
 * options: the rw layer only when asked for; the CRIU image goes to create-task
 * only when live, unpacked into the restore's own snapshot on a local daemon
 * (under the lease, which is then held until start-task). For previews;
 * `restore` is the code that runs them.
 */
export function restoreSteps(plan: RestorePlan, options: Pick<ResolvedRestoreOptions, "live" | "restoreRw">, site: RestoreSite): DescribedStep[] {
  const rw = options.restoreRw ? [applyRwLayer] : [];
  const task = [createTask, startTask];
  if (!ownsCriuImage(plan, options, site)) return [{ name: "create-lease" }, prepareSnapshot, createContainer, ...rw, { name: "release-lease" }, ...task];
  return [
    { name: "create-lease" },
    prepareSnapshot,
    createContainer,
    prepareCriuSnapshot,
    ...rw,
    unpackCriuImage,
    ...task,
    { name: "release-lease" },
    { name: "remove-criu-snapshot" },
  ];
}

/** One step of a restore as a preview shows it. */
export type StepDescription = { step: StepName } & Record<string, string | number>;

/** The ordered steps `restore` would run for `plan` with `options`, and what each uses. */
export function describeRestore(plan: RestorePlan, options: RestoreOptions, namespace: string, site: RestoreSite = { local: true }): StepDescription[] {
  const resolved = resolveOptions(options);
  return restoreSteps(plan, resolved, site).map((step) => ({ step: step.name, ...step.describe?.(plan, resolved, namespace) }));
}

/** What the steps take from the plan: the rw layer only for an rw restore, the CRIU image only for a live one. */
function planBlobs(plan: RestorePlan, options: ResolvedRestoreOptions): { rwLayer?: Descriptor; criuImage?: Descriptor } {
  assertPlanSupports(plan, options);
  return { rwLayer: options.restoreRw ? plan.rwLayer : undefined, criuImage: options.live ? plan.criuImage : undefined };
}

/**
 * Restores `plan` as container `options.id`: under a lease, prepare snapshot and
 * alongside it create container, then apply rw (and, for a live restore on a
 * local daemon, prepare CRIU snapshot, then apply rw alongside unpack CRIU image); then create task →
 * start task, while the lease is released (or, with a CRIU snapshot, then the
 * lease is released and the CRIU snapshot removed). On failure at any step,
 * every completed step is undone, and one RestoreError names the step, keeps
 * the daemon's message and (for CRIU failures on a local daemon) the tail of
 * restore.log.
 */
export async function restore(client: ContainerdClient, plan: RestorePlan, options: RestoreOptions): Promise<RestoreResult> {
  const resolved = resolveOptions(options);
  const { rwLayer, criuImage } = planBlobs(plan, resolved);
  // Checked again here: a plan is data, and may have been made (or edited) under another policy.
  enforcePlanPolicy(plan, options);
  const local = isLocalDaemon(client.address);
  if (local) await assertHostPathsResolveInside(plan, options);
  const { id } = resolved;
  const started = performance.now();
  // A local daemon's CRIU writes its log where we chose, so no path a message or a checkpoint names is ever read.
  const criuWorkDir = criuImage && local ? createCriuWorkDir() : undefined;
  criuWorkDir?.catch(() => undefined);
  const criuSnapshot: CriuSnapshot | undefined = ownsCriuImage(plan, resolved, { local }) ? { snapshotter: plan.snapshotter, key: criuSnapshotKey(id) } : undefined;
  const leaseId = restoreLeaseId(id);
  // The holder label, and this process's record of the attempt, keep a concurrent teardown off a live restore's lease.
  const lease = { id: leaseId, labels: beginAttempt(leaseId) };
  let workDir: string | undefined;
  const outcome = await runTransaction(client, async (tx) => {
    // The lease keeps GC off the snapshots until the container record references the
    // container's. The record names its snapshot by key and does not need it to exist
    // yet, so they are made side by side.
    const prepare = async (leased: Transaction) => {
      const [snapshot] = await leased.concurrently([
        () => leased.run(prepareSnapshot, { snapshotter: plan.snapshotter, key: id, parent: plan.snapshotParent }),
        () => leased.run(createContainer, { container: containerRecord(plan, resolved, client.namespace) }),
      ] as const);
      // Not side by side with another call: containerd's overlayfs renames a new snapshot's dir
      // before it commits, so a daemon killed mid-Prepare leaves a dir that fails later Prepares.
      const criu = criuSnapshot ? await leased.run(prepareCriuSnapshot, criuSnapshot) : undefined;
      await leased.concurrently([
        async () => {
          if (rwLayer) await leased.run(applyRwLayer, { layer: rwLayer, mounts: snapshot.mounts });
        },
        async () => {
          if (criu?.dir !== undefined && criuImage) await leased.run(unpackCriuImage, { image: criuImage, mounts: criu.mounts });
        },
      ] as const);
      return { rootfs: snapshot.mounts, criuDir: criu?.dir };
    };
    const runTask = async (rootfs: Mount[], criuImagePath?: string) => {
      workDir = await criuWorkDir;
      const taskOptions = workDir ? taskRuntimeOptions(plan, { criuWorkPath: workDir, criuImagePath }) : undefined;
      // Given a path, Tasks.Create restores from it and unpacks nothing: no descriptor then.
      const checkpoint = criuImagePath && taskOptions ? undefined : criuImage;
      await tx.run(createTask, { id, rootfs, logPath: resolved.logPath, checkpoint, options: taskOptions });
      return tx.run(startTask, { id, criuWorkDir: taskOptions ? workDir : undefined });
    };
    if (!criuSnapshot) {
      const { rootfs } = await tx.withLease(lease, prepare);
      return runTask(rootfs);
    }
    // Only the lease keeps GC off the CRIU snapshot: held until CRIU has restored from it.
    const { task, criuDir } = await tx.withLease(lease, async (leased) => {
      const { rootfs, criuDir } = await prepare(leased);
      return { task: await runTask(rootfs, criuDir), criuDir };
    });
    // Alongside the lease release; done before restore() returns.
    if (criuDir !== undefined) tx.cleanUp("remove-criu-snapshot", () => removeCriuSnapshot(client, criuSnapshot));
    return task;
  }).finally(async () => {
    endAttempt(leaseId);
    const dir = workDir ?? (await criuWorkDir?.catch(() => undefined));
    if (dir) await removeCriuWorkDir(dir);
  });
  return {
    id,
    pid: outcome.value.pid,
    plan,
    restoredAt: new Date().toISOString(),
    durationMs: performance.now() - started,
    steps: outcome.steps,
    cleanupErrors: outcome.cleanupErrors,
  };
}
