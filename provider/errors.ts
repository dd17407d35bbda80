import { ContainerdError } from "./containerd/errors";

/**
 * What went wrong in planning, restoring or tearing down, as a code to branch on.
 * Input problems are found before anything changes on the daemon.
 */
export type RestoreErrorCode =
  // the caller's input
  | "invalid-id"
  | "id-in-use"
  | "invalid-option"
  // the checkpoint image
  | "checkpoint-not-found"
  | "not-a-checkpoint"
  | "index-too-large"
  | "index-not-json"
  | "index-invalid"
  | "incomplete-checkpoint"
  | "no-criu-image"
  | "no-rw-layer"
  | "missing-blob"
  | "malformed-spec"
  | "malformed-runtime-options"
  // the base image and snapshotter on the daemon
  | "base-image-missing"
  | "base-image-invalid"
  | "no-matching-platform"
  | "snapshotter-unavailable"
  | "base-image-not-unpacked"
  // the daemon
  | "unsupported-daemon-version"
  | "daemon-unreachable"
  | "daemon-error"
  | "criu-failed";

/** The restore steps, in order (see restore/steps). */
export type StepName =
  | "create-lease"
  | "prepare-snapshot"
  | "apply-rw-layer"
  | "create-container"
  | "release-lease"
  | "create-task"
  | "start-task";

/**
 * A failed plan, restore or teardown. `step` names the restore step that failed;
 * `cause` keeps the daemon's error; `restoreLog` holds the tail of CRIU's
 * restore.log when it was readable; `cleanupErrors` lists undo steps that failed
 * (empty when the daemon was left exactly as it was).
 */
export class RestoreError extends Error {
  override readonly name = "RestoreError";
  readonly code: RestoreErrorCode;
  readonly step?: StepName;
  /** The checkpoint index entry or input field the error is about, e.g. `manifests[3]` or `id`. */
  readonly subject?: string;
  readonly restoreLog?: readonly string[];
  readonly cleanupErrors: readonly unknown[];

  constructor(
    code: RestoreErrorCode,
    message: string,
    options: {
      step?: StepName;
      subject?: string;
      cause?: unknown;
      restoreLog?: readonly string[];
      cleanupErrors?: readonly unknown[];
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.step = options.step;
    this.subject = options.subject;
    this.restoreLog = options.restoreLog;
    this.cleanupErrors = options.cleanupErrors ?? [];
  }
}

/** Maps a daemon failure outside any step: unreachable daemon, or containerd's own error. */
export function daemonError(err: unknown): unknown {
  if (err instanceof RestoreError) return err;
  if (err instanceof ContainerdError) {
    const code: RestoreErrorCode = err.code === "unavailable" ? "daemon-unreachable" : "daemon-error";
    return new RestoreError(code, err.message, { cause: err });
  }
  return err;
}
