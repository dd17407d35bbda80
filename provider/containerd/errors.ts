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
        ? `cannot reach containerd at ${address}: ${method}: ${details}`
        : `${method}: ${details}`,
      options,
    );
  }
}

/** Maps a grpc-js ServiceError (or anything thrown by a call) to a ContainerdError. */
export function toContainerdError(err: unknown, method: string, address: string): ContainerdError {
  if (err instanceof ContainerdError) return err;
  const e = err as { code?: number; details?: string; message?: string };
  const details = e.details || e.message || String(err);
  // containerd 1.6 sends its own context timeouts as UNKNOWN.
  const code =
    (e.code !== undefined && CODE_BY_STATUS.get(e.code)) ||
    (/context deadline exceeded/.test(details) ? "deadline-exceeded" : "unknown");
  return new ContainerdError(code, method, details, address, { cause: err });
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
