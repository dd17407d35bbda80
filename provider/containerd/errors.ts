import { status as GrpcStatus } from "@grpc/grpc-js";

/** containerd's error classes (errdefs), as seen through gRPC status codes. */
export type ContainerdErrorCode =
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "invalid-argument"
  | "unavailable"
  | "deadline-exceeded"
  | "cancelled"
  | "out-of-range"
  | "unimplemented"
  | "permission-denied"
  | "resource-exhausted"
  | "internal"
  | "unknown";

const CODE_BY_STATUS: ReadonlyMap<number, ContainerdErrorCode> = new Map([
  [GrpcStatus.NOT_FOUND, "not-found"],
  [GrpcStatus.ALREADY_EXISTS, "already-exists"],
  [GrpcStatus.FAILED_PRECONDITION, "failed-precondition"],
  [GrpcStatus.INVALID_ARGUMENT, "invalid-argument"],
  [GrpcStatus.UNAVAILABLE, "unavailable"],
  [GrpcStatus.DEADLINE_EXCEEDED, "deadline-exceeded"],
  [GrpcStatus.CANCELLED, "cancelled"],
  [GrpcStatus.OUT_OF_RANGE, "out-of-range"],
  [GrpcStatus.UNIMPLEMENTED, "unimplemented"],
  [GrpcStatus.PERMISSION_DENIED, "permission-denied"],
  [GrpcStatus.UNAUTHENTICATED, "permission-denied"],
  [GrpcStatus.RESOURCE_EXHAUSTED, "resource-exhausted"],
  [GrpcStatus.INTERNAL, "internal"],
] as const);

/**
 * A failed containerd call. `code` is the errdefs class to branch on; `details` is
 * containerd's own message, verbatim; `cause` is the grpc-js error.
 */
export class ContainerdError extends Error {
  override readonly name = "ContainerdError";

  constructor(
    readonly code: ContainerdErrorCode,
    /** `service.Method`, e.g. `tasks.Start`. */
    readonly method: string,
    /** containerd's message, e.g. `container "r1": already exists`. */
    readonly details: string,
    /** The daemon address the call went to. */
    readonly address: string,
    options?: { cause?: unknown },
  ) {
    super(
      // Unavailable is also containerd's word for a busy ingest ("ref … locked"): that one is not a connection problem.
      code === "unavailable" && !/\blocked\b/.test(details)
        ? `cannot reach containerd at ${address}: ${unreachableReason(method, details)}`
        : `${method}: ${details}`,
      options,
    );
  }
}

/**
 * Why a daemon could not be reached, in words a user can act on: a missing unix socket or one
 * nobody listens on says so (and asks whether containerd runs); grpc-js's empty
 * "Resolution note:" is dropped. Anything else keeps the call and grpc-js's text.
 */
function unreachableReason(method: string, details: string): string {
  const socket = /connect (ENOENT|ECONNREFUSED|EACCES) (\/\S*[^\s.,;:])/.exec(details);
  if (socket?.[1] === "ENOENT") return `there is no containerd socket at ${socket[2]}: is containerd running, and is this its [grpc] address? (${method})`;
  if (socket?.[1] === "ECONNREFUSED") return `nothing listens on the socket ${socket[2]}: is containerd running? (${method})`;
  if (socket?.[1] === "EACCES") return `permission denied on the socket ${socket[2]}: containerd's socket is usually root's (${method})`;
  return `${method}: ${details.replace(/\s*Resolution note:\s*$/, "")}`;
}

/**
 * ANSI escape sequences: CSI (`ESC [ … final`, also the 8-bit CSI 0x9b), OSC (`ESC ] … BEL` or `ESC \`,
 * e.g. terminal titles and hyperlinks), other string commands (DCS, SOS, PM, APC) and two-byte escapes.
 */
const ANSI_ESCAPE = /(?:\u001b\[|\u009b)[0-?]*[ -/]*[@-~]|\u001b[\]PX^_][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[ -/]*[0-~]?/g;
/** C0 controls but tab and newline (carriage return included: it rewrites a terminal line), DEL, C1 controls, Unicode bidi overrides and isolates. */
const CONTROL = /[\u0000-\u0008\u000b-\u000d\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
/** A daemon message is shown at most this long (a message is a line, not a file). */
const MAX_DAEMON_TEXT = 4096;

/**
 * A daemon's (or anything remote's) text made safe to print: ANSI escapes and
 * control characters removed, line breaks and tabs made spaces, cut to 4 KiB.
 * Nothing a daemon says can move the cursor, rewrite a terminal line, set a
 * title, forge a new log line or reverse text in `pulumi up` output.
 */
export function sanitizeDaemonText(text: string): string {
  const clean = stripControls(text.replace(/[\t\n\r]+/g, " "));
  return clean.length > MAX_DAEMON_TEXT ? `${clean.slice(0, MAX_DAEMON_TEXT)}… (${clean.length - MAX_DAEMON_TEXT} more characters)` : clean;
}

/** ANSI escapes and control characters removed; tabs and line breaks are kept (for multi-line messages we write ourselves). */
export function stripControls(text: string): string {
  return text.replace(ANSI_ESCAPE, "").replace(CONTROL, "");
}

/** What acts on a terminal: escapes, backspace, carriage return, DEL, C1 controls, bidi overrides. */
const TERMINAL_CONTROL = /[\u0008\u000d\u001b\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * ANSI escape sequences and the characters that act on a terminal removed; other
 * characters stay, so a message can still show a caller's bad input as given
 * (an id with a NUL byte, a tab or a line break).
 */
export function stripTerminalControls(text: string): string {
  return text.replace(ANSI_ESCAPE, "").replace(TERMINAL_CONTROL, "");
}

/**
 * Maps a grpc-js ServiceError (or anything thrown by a call) to a ContainerdError.
 * The daemon's message is sanitized here, at the client's error boundary, before
 * it can reach an error message, a log or Pulumi output.
 */
export function toContainerdError(err: unknown, method: string, address: string): ContainerdError {
  if (err instanceof ContainerdError) return err;
  const e = err as { code?: number; details?: string; message?: string };
  const details = sanitizeDaemonText(e.details || e.message || String(err));
  // containerd 1.6 sends its own context timeouts as UNKNOWN.
  const code =
    (e.code !== undefined && CODE_BY_STATUS.get(e.code)) ||
    (/context deadline exceeded/.test(details) ? "deadline-exceeded" : "unknown");
  return new ContainerdError(code, method, details, address, { cause: err });
}

/** What reading a blob can find wrong, besides the daemon's own errors. */
export type BlobErrorCode = "blob-too-large" | "size-mismatch" | "digest-mismatch" | "read-timeout" | "write-timeout";

/**
 * A blob that is not what its descriptor says (too large, another size, another
 * digest) or that stalled: named by `subject` (what the blob is, e.g. `checkpoint
 * config`). The library reports it as a RestoreError with the same code.
 */
export class BlobError extends Error {
  override readonly name = "BlobError";
  readonly subject?: string;

  constructor(
    readonly code: BlobErrorCode,
    message: string,
    options: { subject?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.subject = options.subject;
  }
}

/** True for the errdefs class `code` (also through an Error's cause chain). */
export function isContainerdError(err: unknown, code?: ContainerdErrorCode): err is ContainerdError {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ContainerdError) return code === undefined || e.code === code;
  }
  return false;
}

/** Runs `call`; a NotFound answer ("already gone") resolves to `undefined`. */
export async function unlessNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (isContainerdError(err, "not-found")) return undefined;
    throw err;
  }
}
