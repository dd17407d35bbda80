import { BlobError, ContainerdError, METADATA_READS, stripTerminalControls } from "./containerd";

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
  // bounds on what a checkpoint (or a daemon) may make the provider read and decode
  | "blob-too-large"
  | "json-too-deep"
  | "too-many-entries"
  | "read-timeout"
  | "write-timeout"
  // integrity: what was read is not what the descriptor names
  | "digest-mismatch"
  | "size-mismatch"
  // ownership: a container or image that is not this resource's (or this project's)
  | "not-owned"
  | "target-ref-exists"
  // the base image and snapshotter on the daemon
  | "base-image-missing"
  | "base-image-invalid"
  | "no-matching-platform"
  | "snapshotter-unavailable"
  | "base-image-not-unpacked"
  // the daemon
  | "unsupported-daemon-version"
  | "namespace-not-found"
  | "daemon-unreachable"
  | "daemon-error"
  | "criu-failed"
  // the restore policy
  | "policy-violation"
  | "invalid-allowance";

/** The steps of the write paths, each run by the transaction runner (provider/transaction). */
export type StepName =
  // the lease every write path works under
  | "create-lease"
  | "release-lease"
  // restore, in order (restore/steps)
  | "prepare-snapshot"
  | "apply-rw-layer"
  | "create-container"
  | "create-task"
  | "start-task"
  // checkpoint creation (checkpoint/create.ts)
  | "pause-task"
  | "write-blobs"
  | "checkpoint-task"
  | "write-index"
  | "create-image"
  | "resume-task"
  // copy and unpack (transfer/copy.ts)
  | "copy-blob"
  | "create-base-image"
  | "prepare-layer"
  | "apply-layer"
  | "commit-layer"
  | "label-base-image";

/** An undo (or a lease release) that failed: the daemon may hold leftovers of `step`. */
export class CleanupError extends Error {
  override readonly name = "CleanupError";

  constructor(
    readonly step: StepName,
    cause: unknown,
  ) {
    super(`${step}: ${messageOf(cause)}`, { cause });
  }
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One field of a checkpoint that the restore policy refuses. */
export interface PolicyViolation {
  /** Where in the checkpoint, e.g. `spec.hooks.prestart[0]`. */
  path: string;
  /** What it would grant. */
  grant: string;
  /** The allowance that would admit it, e.g. `allow.hooks: true`. */
  allowance: string;
}

/**
 * A failed plan, restore, checkpoint, copy or teardown. `step` names the step that
 * failed; `cause` keeps the daemon's error; `restoreLog` holds the tail of CRIU's
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
  readonly cleanupErrors: readonly CleanupError[];
  /** For `policy-violation`: every refused field, by path, with the allowance that would admit it. */
  readonly violations: readonly PolicyViolation[];

  constructor(
    code: RestoreErrorCode,
    message: string,
    options: {
      step?: StepName;
      subject?: string;
      cause?: unknown;
      restoreLog?: readonly string[];
      cleanupErrors?: readonly CleanupError[];
      violations?: readonly PolicyViolation[];
    } = {},
  ) {
    // Messages quote checkpoint fields (image names, annotations, paths): never let one carry a terminal escape.
    super(stripTerminalControls(message), { cause: options.cause });
    this.code = code;
    this.step = options.step;
    this.subject = options.subject;
    this.restoreLog = options.restoreLog;
    this.cleanupErrors = options.cleanupErrors ?? [];
    this.violations = options.violations ?? [];
  }
}

/** Maps a daemon failure outside any step: unreachable daemon, or containerd's own error. */
export function daemonError(err: unknown): unknown {
  if (err instanceof RestoreError) return err;
  if (err instanceof BlobError) return new RestoreError(err.code, err.message, { subject: err.subject, cause: err });
  if (err instanceof ContainerdError) {
    if (err.code === "deadline-exceeded" && METADATA_READS.has(err.method)) {
      return new RestoreError("read-timeout", `${err.message}: the daemon at ${err.address} did not answer this metadata read within its deadline; it is overloaded or stuck`, {
        subject: err.method,
        cause: err,
      });
    }
    const code: RestoreErrorCode = err.code === "unavailable" ? "daemon-unreachable" : "daemon-error";
    return new RestoreError(code, err.message, { cause: err });
  }
  return err;
}

/**
 * `verb` with the library's error contract: whatever the daemon answers comes
 * out as a RestoreError (the one place a ContainerdError becomes one).
 */
export function withDaemonErrors<Args extends unknown[], Result>(verb: (...args: Args) => Promise<Result>): (...args: Args) => Promise<Result> {
  return async (...args) => {
    try {
      return await verb(...args);
    } catch (err) {
      throw daemonError(err);
    }
  };
}
