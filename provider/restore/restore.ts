import type { ContainerdClient, Descriptor } from "../containerd";
import { RestoreError, type CleanupError, type RestoreErrorCode, type StepName } from "../errors";
import { runTransaction, type StepTiming } from "../transaction";
import { beginAttempt, endAttempt, restoreLeaseId } from "./restore-leases";
import { assertPlanSupports, type RestorePlan } from "./plan";
import { invalidIdReason, invalidLogPathReason, invalidSignalReason, reservedLabelIn } from "./rules";
import {
  applyRwLayer,
  containerRecord,
  createContainer,
  createTask,
  prepareSnapshot,
  startTask,
  type DescribedStep,
  type ResolvedRestoreOptions,
} from "./steps";
import { createCriuWorkDir, removeCriuWorkDir } from "./criu-log";
import { assertHostPathsResolveInside, enforcePlanPolicy, taskRuntimeOptions } from "./policy";
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

/**
 * The steps of a restore in the order `restore` runs them, built like containerd's
 * options: the rw layer only when asked for; the CRIU image goes to create-task
 * only when live. For previews; `restore` is the code that runs them.
 */
export function restoreSteps(options: Pick<ResolvedRestoreOptions, "restoreRw">): DescribedStep[] {
  return [
    { name: "create-lease" },
    prepareSnapshot,
    ...(options.restoreRw ? [applyRwLayer] : []),
    createContainer,
    { name: "release-lease" },
    createTask,
    startTask,
  ];
}

/** One step of a restore as a preview shows it. */
export type StepDescription = { step: StepName } & Record<string, string | number>;

/** The ordered steps `restore` would run for `plan` with `options`, and what each uses. */
export function describeRestore(plan: RestorePlan, options: RestoreOptions, namespace: string): StepDescription[] {
  const resolved = resolveOptions(options);
  return restoreSteps(resolved).map((step) => ({ step: step.name, ...step.describe?.(plan, resolved, namespace) }));
}

/** What the steps take from the plan: the rw layer only for an rw restore, the CRIU image only for a live one. */
function planBlobs(plan: RestorePlan, options: ResolvedRestoreOptions): { rwLayer?: Descriptor; criuImage?: Descriptor } {
  assertPlanSupports(plan, options);
  return { rwLayer: options.restoreRw ? plan.rwLayer : undefined, criuImage: options.live ? plan.criuImage : undefined };
}

/**
 * Restores `plan` as container `options.id`: under a lease, prepare snapshot →
 * apply rw → create container; then create task → start task, while the lease
 * is released. On failure at any step, every completed step is undone, and one
 * RestoreError names the step, keeps the daemon's message and (for CRIU failures
 * on a local daemon) the tail of restore.log.
 */
export async function restore(client: ContainerdClient, plan: RestorePlan, options: RestoreOptions): Promise<RestoreResult> {
  const resolved = resolveOptions(options);
  const { rwLayer, criuImage } = planBlobs(plan, resolved);
  // Checked again here: a plan is data, and may have been made (or edited) under another policy.
  enforcePlanPolicy(plan, options);
  const local = !client.address.startsWith("tcp://");
  if (local) await assertHostPathsResolveInside(plan, options);
  const { id } = resolved;
  const started = performance.now();
  // A local daemon's CRIU writes its log where we chose, so no path a message or a checkpoint names is ever read.
  const criuWorkDir = criuImage && local ? await createCriuWorkDir() : undefined;
  const taskOptions = criuWorkDir ? taskRuntimeOptions(plan, criuWorkDir) : undefined;
  const leaseId = restoreLeaseId(id);
  // The holder label, and this process's record of the attempt, keep a concurrent teardown off a live restore's lease.
  const leaseLabels = beginAttempt(leaseId);
  const outcome = await runTransaction(client, async (tx) => {
    // The lease keeps GC off the snapshot until the container record references it.
    // One call at a time: containerd's overlayfs renames a new snapshot's dir before
    // it commits, so a daemon killed while a Prepare is in flight leaves a dir that
    // fails the next Prepare of the same id until GC runs (the record made alongside
    // the snapshot hit that 9 times in 10 in the e2e kill test on 1.7.35).
    const { mounts } = await tx.withLease({ id: leaseId, labels: leaseLabels }, async (leased) => {
      const snapshot = await leased.run(prepareSnapshot, { snapshotter: plan.snapshotter, key: id, parent: plan.snapshotParent });
      if (rwLayer) await leased.run(applyRwLayer, { layer: rwLayer, mounts: snapshot.mounts });
      await leased.run(createContainer, { container: containerRecord(plan, resolved, client.namespace) });
      return snapshot;
    });
    await tx.run(createTask, { id, rootfs: mounts, logPath: resolved.logPath, checkpoint: criuImage, options: taskOptions });
    return tx.run(startTask, { id, criuWorkDir: taskOptions ? criuWorkDir : undefined });
  }).finally(async () => {
    endAttempt(leaseId);
    if (criuWorkDir) await removeCriuWorkDir(criuWorkDir);
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
