/** containerd's identifier rule (identifiers/validate.go). */
const ID_PATTERN = /^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$/;
export const MAX_ID_LENGTH = 76;

/** Why `id` is not a valid containerd identifier, or undefined when it is. */
export function invalidIdReason(id: string): string | undefined {
  if (id.length === 0) return "must not be empty";
  if (id.length > MAX_ID_LENGTH) return `is ${id.length} characters; containerd allows at most ${MAX_ID_LENGTH}`;
  if (!ID_PATTERN.test(id)) return "must be letters and digits, separated by single '.', '_' or '-' (no slashes or spaces)";
  return undefined;
}
