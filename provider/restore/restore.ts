import type { ContainerdClient } from "../containerd/client";
import { RestoreError, type RestoreErrorCode, type StepName } from "../errors";
import { isReservedLabel } from "./labels";
import { assertPlanSupports, type RestorePlan } from "./plan";
import { daemonError } from "../errors";
import { applyRwLayer } from "./steps/apply-rw-layer";
import { createContainer } from "./steps/create-container";
import { createLease, releaseLease } from "./steps/create-lease";
import { createTask } from "./steps/create-task";
import { prepareSnapshot } from "./steps/prepare-snapshot";
import { startTask } from "./steps/start-task";
import type { ResolvedRestoreOptions, RestoreContext, RestoreStep } from "./steps/step";
import { signalNumber } from "./teardown";
import { invalidIdReason } from "./identifiers";
import { assertHostBindsResolveInside, enforcePlanPolicy } from "./policy";
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

export interface StepTiming {
  step: StepName;
  ms: number;
}

export interface RestoreResult {
  id: string;
  pid: number;
  plan: RestorePlan;
  /** When the task started (ISO 8601). */
  restoredAt: string;
  durationMs: number;
  steps: StepTiming[];
}

function resolveOptions(options: RestoreOptions): ResolvedRestoreOptions {
  const invalid = (subject: string, why: string, code: RestoreErrorCode = "invalid-option") =>
    new RestoreError(code, `${subject} ${why}`, { subject });
  const idProblem = invalidIdReason(options.id);
  if (idProblem) throw invalid("id", `"${options.id}" ${idProblem}`, "invalid-id");
  if (options.logPath !== undefined && !options.logPath.startsWith("/")) throw invalid("logPath", "must be an absolute path on the daemon host");
  if (options.stopSignal !== undefined) {
    try {
      signalNumber(options.stopSignal);
    } catch (err) {
      throw invalid("stopSignal", (err as Error).message);
    }
  }
  const reserved = Object.keys(options.labels ?? {}).find(isReservedLabel);
  if (reserved) throw invalid("labels", `must not set ${reserved}: this project writes it`);
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
 * The steps of a restore, built like containerd's options: the rw layer only when
 * asked for; the CRIU image goes to create-task only when live.
 */
export function restoreSteps(options: Pick<ResolvedRestoreOptions, "restoreRw">): RestoreStep[] {
  return [
    createLease,
    prepareSnapshot,
    ...(options.restoreRw ? [applyRwLayer] : []),
    createContainer,
    releaseLease,
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

/** Undoes completed steps newest first; returns the undo failures (never throws). */
async function undoSteps(ctx: RestoreContext, done: RestoreStep[]): Promise<unknown[]> {
  const failures: unknown[] = [];
  for (const step of [...done].reverse()) {
    try {
      await step.undo?.(ctx);
    } catch (err) {
      failures.push(Object.assign(err as object, { step: step.name }));
    }
  }
  return failures;
}

function stepError(step: StepName, err: unknown, cleanupErrors: unknown[]): RestoreError {
  const mapped = daemonError(err);
  const code: RestoreErrorCode = mapped instanceof RestoreError ? mapped.code : "daemon-error";
  const base = mapped instanceof RestoreError ? mapped : undefined;
  const cleanup = cleanupErrors.length
    ? `; cleanup also failed, the daemon may hold leftovers: ${cleanupErrors.map((e) => `${(e as { step?: string }).step}: ${(e as Error).message}`).join("; ")}`
    : "";
  return new RestoreError(code, `${step}: ${(err as Error).message}${cleanup}`, {
    step,
    subject: base?.subject,
    cause: err,
    restoreLog: base?.restoreLog,
    cleanupErrors,
  });
}

/**
 * Restores `plan` as container `options.id`: lease → prepare snapshot → apply rw
 * → create container → release lease → create task → start task. On failure at
 * any step, every completed step is undone, and one RestoreError names the step,
 * keeps the daemon's message and (for CRIU failures on a local daemon) the tail of
 * restore.log.
 */
export async function restore(client: ContainerdClient, plan: RestorePlan, options: RestoreOptions): Promise<RestoreResult> {
  const resolved = resolveOptions(options);
  // Checked again here: a plan is data, and may have been made (or edited) under another policy.
  enforcePlanPolicy(plan, options);
  if (!client.address.startsWith("tcp://")) await assertHostBindsResolveInside(plan, options);
  assertPlanSupports(plan, resolved);
  const ctx: RestoreContext = { client, plan, options: resolved };
  const started = performance.now();
  const timings: StepTiming[] = [];
  const done: RestoreStep[] = [];
  for (const step of restoreSteps(resolved)) {
    const t0 = performance.now();
    try {
      await step.run(ctx);
    } catch (err) {
      throw stepError(step.name, err, await undoSteps(ctx, done));
    }
    done.push(step);
    timings.push({ step: step.name, ms: performance.now() - t0 });
  }
  return {
    id: resolved.id,
    pid: ctx.pid!,
    plan,
    restoredAt: new Date().toISOString(),
    durationMs: performance.now() - started,
    steps: timings,
  };
}
