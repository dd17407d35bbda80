/**
 * The rules a restore's inputs follow, each as "why not, or undefined": the
 * library refuses with them and the Pulumi schemas refine with the same functions.
 */
import { isReservedLabel } from "../labels";
import { signalNumber } from "./teardown";

/** containerd's identifier rule (identifiers/validate.go). */
const ID_PATTERN = /^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$/;
export const MAX_ID_LENGTH = 76;

/** Why `id` is not a valid containerd identifier (container id, namespace), or undefined when it is. */
export function invalidIdReason(id: string): string | undefined {
  if (id.length === 0) return "must not be empty";
  if (id.length > MAX_ID_LENGTH) return `is ${id.length} characters; containerd allows at most ${MAX_ID_LENGTH}`;
  if (!ID_PATTERN.test(id)) return "must be letters and digits, separated by single '.', '_' or '-' (no slashes or spaces)";
  return undefined;
}

/** Why `logPath` cannot be a task's stdio file: it is a path on the daemon host, so absolute. */
export function invalidLogPathReason(logPath: string): string | undefined {
  return logPath.startsWith("/") ? undefined : "must be an absolute path on the daemon host";
}

/** Why `signal` is no stop signal (a name like SIGTERM or TERM, or a number 1–64). */
export function invalidSignalReason(signal: string): string | undefined {
  try {
    signalNumber(signal);
    return undefined;
  } catch (err) {
    return (err as RangeError).message;
  }
}

/** The first label key a user may not set (this project writes it), or undefined. */
export function reservedLabelIn(labels: Record<string, string>): string | undefined {
  return Object.keys(labels).find(isReservedLabel);
}
