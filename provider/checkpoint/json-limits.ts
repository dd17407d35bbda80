import { RestoreError } from "../errors";

/**
 * Bounds on the JSON a checkpoint makes the provider decode, checked on the raw
 * bytes before `JSON.parse` by a non-recursive scan, so that neither the parser
 * nor anything after it that recurses (zod, `structuredClone`, `JSON.stringify`)
 * ever sees a document nested deep enough to overflow the stack or wide enough
 * to fill the heap.
 */
export interface JsonLimits {
  /** Deepest nesting of objects and arrays (the top-level value is depth 1). */
  maxDepth: number;
  /** Most members in any one object or array. */
  maxMembers: number;
  /** Tighter member limits for named paths: `manifests`, `process.env`, `linux.seccomp.syscalls`… (dots, no indexes). */
  paths?: Readonly<Record<string, number>>;
}

/**
 * The deepest real document is a runc spec with a seccomp profile: root →
 * linux → seccomp → syscalls[] → {} → args[] → {} is 7 levels. 32 leaves room for
 * any extension and is far from the ~6,000 levels at which `structuredClone`
 * throws a bare RangeError.
 */
export const MAX_JSON_DEPTH = 32;
/** Docker's default seccomp profile lists ~370 syscall names in one array; no checkpoint document needs 10,000 members in one place. */
export const MAX_JSON_MEMBERS = 10_000;

/** A checkpoint index written by containerd has 5 entries (CRIU image, spec, options, rw layer, base manifest). */
export const INDEX_LIMITS: JsonLimits = { maxDepth: MAX_JSON_DEPTH, maxMembers: MAX_JSON_MEMBERS, paths: { manifests: 64, annotations: 256 } };
/** Images have at most ~125 layers (Docker's limit); manifest lists a few dozen platforms. */
export const MANIFEST_LIMITS: JsonLimits = { maxDepth: MAX_JSON_DEPTH, maxMembers: MAX_JSON_MEMBERS, paths: { layers: 512, manifests: 1024 } };
export const IMAGE_CONFIG_LIMITS: JsonLimits = { maxDepth: MAX_JSON_DEPTH, maxMembers: MAX_JSON_MEMBERS, paths: { "rootfs.diff_ids": 512 } };
/** A spec's lists: mounts, environment, arguments, and the seccomp profile's. */
export const SPEC_LIMITS: JsonLimits = {
  maxDepth: MAX_JSON_DEPTH,
  maxMembers: MAX_JSON_MEMBERS,
  paths: { mounts: 1024, "process.env": 4096, "process.args": 4096, "linux.devices": 1024, "linux.resources.devices": 1024 },
};

interface Frame {
  object: boolean;
  /** Commas seen: members so far minus one (once there is a first member). */
  commas: number;
  /** The key (objects) of the member being read, or its index (arrays). */
  key: string;
  /** Objects: the next string is a key. */
  expectKey: boolean;
  /** The dotted path of this container, from the root. */
  path: string;
  limit: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MAX_KEY_SHOWN = 64;

/**
 * Checks `bytes` (JSON, not yet parsed) against `limits`; throws a RestoreError
 * (`json-too-deep` or `too-many-entries`) naming `what`, the path inside it and
 * the limit. Invalid JSON passes through for `JSON.parse` to report.
 */
export function assertJsonWithinLimits(bytes: Uint8Array, what: string, limits: JsonLimits): void {
  const stack: Frame[] = [];
  let inString = false;
  let stringStart = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) {
        inString = false;
        const top = stack[stack.length - 1];
        if (top?.object && top.expectKey) {
          top.key = Buffer.from(bytes.subarray(stringStart, Math.min(i, stringStart + MAX_KEY_SHOWN))).toString("utf8");
          top.expectKey = false;
        }
      }
      continue;
    }
    switch (c) {
      case QUOTE:
        inString = true;
        stringStart = i + 1;
        break;
      case 0x7b: // {
      case 0x5b: {
        // [
        const parent = stack[stack.length - 1];
        const path = parent ? memberPath(parent) : "";
        if (stack.length + 1 > limits.maxDepth) {
          throw new RestoreError(
            "json-too-deep",
            `${what}: ${path || "(top level)"} is nested more than ${limits.maxDepth} levels deep; the limit is ${limits.maxDepth}: no checkpoint document is`,
            { subject: `${what}: ${path || "(top level)"}` },
          );
        }
        const named = limits.paths?.[path.replace(/\[\d+\]/g, "")];
        stack.push({ object: c === 0x7b, commas: 0, key: "0", expectKey: c === 0x7b, path, limit: Math.min(named ?? Infinity, limits.maxMembers) });
        break;
      }
      case 0x7d: // }
      case 0x5d: // ]
        stack.pop();
        break;
      case 0x2c: {
        // ,
        const top = stack[stack.length - 1];
        if (!top) break;
        top.commas++;
        if (top.commas + 1 > top.limit) {
          const at = top.path || "(top level)";
          throw new RestoreError("too-many-entries", `${what}: ${at} has more than ${top.limit} entries; the limit is ${top.limit}`, {
            subject: `${what}: ${at}`,
          });
        }
        if (top.object) top.expectKey = true;
        else top.key = String(top.commas);
        break;
      }
    }
  }
}

/** The path of the member `frame` is reading: `a.b`, `a.b[3]`. */
function memberPath(frame: Frame): string {
  if (!frame.object) return `${frame.path}[${frame.key}]`;
  return frame.path ? `${frame.path}.${frame.key}` : frame.key;
}
