import { KNOWN_CAPABILITIES, NAMESPACE_TYPES, type NamespaceType } from "./defaults";

/** runc runtime-option fields a checkpoint may carry only when allowed by name. */
export const RUNTIME_OPTION_FIELDS = [
  "binaryName",
  "root",
  "criuPath",
  "criuImagePath",
  "criuWorkPath",
  "shimCgroup",
  "noPivotRoot",
  "noNewKeyring",
  "ioUid",
  "ioGid",
] as const;
export type RuntimeOptionField = (typeof RUNTIME_OPTION_FIELDS)[number];

/**
 * What a checkpoint may have beyond an ordinary unprivileged container, one
 * category each. Everything absent is refused. `privileged: true` admits all.
 */
export interface Allowances {
  /** OCI hooks (prestart, createRuntime, createContainer, startContainer, poststart, poststop): they run on the host, as root. */
  hooks?: boolean;
  /** Namespaces the container may share with the host (missing) or join by path, e.g. `["network"]`. */
  hostNamespaces?: NamespaceType[];
  /** Capabilities beyond containerd's default set, e.g. `["CAP_NET_ADMIN"]`. */
  capabilities?: string[];
  /** Host paths that bind mounts (and other host-sourced mounts) may come from; a prefix admits what lies below it. */
  hostMounts?: string[];
  /** Device nodes by path (`/dev/fuse`), device rules as `c 10:229` (type major:minor, `*` for any minor), network devices as `netdev/<name>`. */
  devices?: string[];
  /** runc runtime-option fields the checkpoint may set, e.g. `["noNewKeyring"]`. */
  runtimeOptions?: RuntimeOptionField[];
  /** Runtimes beyond `io.containerd.runc.v2`. */
  runtimes?: string[];
  /** Spec annotations that steer runc or CRIU, by key or prefix, e.g. `["org.criu.config"]`. */
  annotations?: string[];
  /** `process.noNewPrivileges: false`: setuid binaries in the container may gain privileges. */
  newPrivileges?: boolean;
  /** AppArmor profile `unconfined`, SELinux types `unconfined_t`/`spc_t`. */
  unconfined?: boolean;
  /** Default masked or read-only paths that may be exposed (`/proc/kcore`), and `/sys` or `/sys/fs/cgroup` mounted read-write. */
  unmaskedPaths?: string[];
  /** Sysctls that are not confined to a namespace the container owns. */
  sysctls?: string[];
}

/** The policy a restore runs under. */
export interface RestorePolicy {
  allow?: Allowances;
  /** Admit everything a checkpoint asks for (what `ctr` and Podman do). */
  privileged?: boolean;
}

const ALLOWANCE_KEYS = [
  "hooks",
  "hostNamespaces",
  "capabilities",
  "hostMounts",
  "devices",
  "runtimeOptions",
  "runtimes",
  "annotations",
  "newPrivileges",
  "unconfined",
  "unmaskedPaths",
  "sysctls",
] as const satisfies readonly (keyof Allowances)[];

/** One problem with an allowance, by path (`allow.hostMounts[0]`). */
export interface AllowanceProblem {
  path: string;
  message: string;
}

const DEVICE_RULE = /^[abc] (\d+|\*):(\d+|\*)$/;
const isNormalizedAbsolute = (p: string) => p.startsWith("/") && !p.split("/").some((part) => part === ".." || part === ".") && !/\/\/|.\/$/.test(p);

/**
 * Why `allow` is not a valid allowance set (empty when it is): the one rule the
 * library and the Pulumi inputs both apply.
 */
export function allowanceProblems(allow: unknown): AllowanceProblem[] {
  if (allow === undefined) return [];
  if (typeof allow !== "object" || allow === null || Array.isArray(allow)) return [{ path: "allow", message: "allow must be an object of allowances" }];
  const problems: AllowanceProblem[] = [];
  const add = (path: string, message: string) => problems.push({ path: `allow.${path}`, message });
  const record = allow as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(ALLOWANCE_KEYS as readonly string[]).includes(key)) add(key, `unknown allowance "${key}"; known: ${ALLOWANCE_KEYS.join(", ")}`);
  }
  for (const key of ["hooks", "newPrivileges", "unconfined"] as const) {
    if (record[key] !== undefined && typeof record[key] !== "boolean") add(key, `allow.${key} must be true or false`);
  }
  const list = (key: (typeof ALLOWANCE_KEYS)[number], check: (item: string) => string | undefined) => {
    const value = record[key];
    if (value === undefined) return;
    if (!Array.isArray(value)) return add(key, `allow.${key} must be a list of strings`);
    value.forEach((item, i) => {
      const why = typeof item === "string" ? check(item) : "must be a string";
      if (why) add(`${key}[${i}]`, `allow.${key}[${i}] ${JSON.stringify(item)} ${why}`);
    });
  };
  list("hostNamespaces", (ns) => ((NAMESPACE_TYPES as readonly string[]).includes(ns) ? undefined : `is not a namespace type (${NAMESPACE_TYPES.join(", ")})`));
  list("capabilities", (cap) => (KNOWN_CAPABILITIES.has(cap) ? undefined : "is not a Linux capability name (CAP_…)"));
  list("hostMounts", (p) => (isNormalizedAbsolute(p) ? undefined : "must be an absolute, normalized host path (no . or .. parts)"));
  list("devices", (d) =>
    (d.startsWith("/dev/") && isNormalizedAbsolute(d)) || DEVICE_RULE.test(d) || /^netdev\/[^/\s]+$/.test(d)
      ? undefined
      : "must be a device path (/dev/fuse), a rule (c 10:229, b 8:*) or netdev/<name>",
  );
  list("runtimeOptions", (f) => ((RUNTIME_OPTION_FIELDS as readonly string[]).includes(f) ? undefined : `is not a runc option field (${RUNTIME_OPTION_FIELDS.join(", ")})`));
  list("runtimes", (r) => (/^[\w.-]+$/.test(r) ? undefined : "is not a runtime name (io.containerd.runc.v2)"));
  list("annotations", (a) => (a.length > 0 ? undefined : "must not be empty"));
  list("unmaskedPaths", (p) => (isNormalizedAbsolute(p) ? undefined : "must be an absolute, normalized path"));
  list("sysctls", (s) => (/^[a-z0-9_.\-/*]+$/.test(s) ? undefined : "is not a sysctl name"));
  return problems;
}
