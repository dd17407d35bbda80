import { posix } from "node:path";
import type { RuncOptions } from "../containerd";
import type { PolicyViolation } from "../errors";
import type { Allowances, RestorePolicy, RuntimeOptionField } from "./allowances";
import {
  DEFAULT_CAPABILITIES,
  DEFAULT_DEVICE_RULES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  DEFAULT_RUNTIMES,
  IPC_SYSCTLS,
  KERNEL_MOUNT_TYPES,
  REQUIRED_NAMESPACES,
  RUNTIME_ANNOTATIONS,
  type DeviceRule,
  type NamespaceType,
} from "./defaults";

/** The runc runtime options a checkpoint carries, decoded (camelCase field names). */
export type RuncOptionsView = RuncOptions;

/** What the policy reads: plain data decoded from the checkpoint, nothing fetched. */
export interface PolicyInput {
  /** The checkpointed OCI runtime spec, as decoded JSON. */
  spec: Record<string, unknown>;
  runtime: {
    name: string;
    /** The runtime-options entry, when the checkpoint has one with a type. */
    options?: {
      typeUrl: string;
      /** Decoded when `typeUrl` is runc's Options. */
      runc?: RuncOptionsView;
      /** Protobuf field numbers in the blob that runc's Options (as this provider knows it) lacks. */
      unknownFields: number[];
    };
  };
}

/** One thing a checkpoint asks for beyond an ordinary unprivileged container (path, grant, allowance). */
export type PolicyFinding = PolicyViolation;

/** What a checkpoint would be granted, for a preview. Lists are empty when it asks for nothing beyond the default. */
export interface SecuritySummary {
  runtime: string;
  user: string;
  /** Namespaces shared with the host (missing) or joined by path. */
  hostNamespaces: string[];
  capabilitiesBeyondDefault: string[];
  hostMounts: string[];
  devices: string[];
  hooks: string[];
  runtimeOptions: string[];
  /** Spec annotations that steer runc or CRIU. */
  runtimeAnnotations: string[];
  /** Default masked/read-only paths exposed, sysfs or cgroupfs writable. */
  unmaskedPaths: string[];
  sysctls: string[];
  noNewPrivileges: boolean;
  seccomp: string;
  apparmor: string;
  selinux: string;
}

export interface PolicyResult {
  /** Findings no allowance admits: the restore is refused when this is not empty. */
  refused: PolicyFinding[];
  /** Findings an allowance (or `privileged`) admits. */
  admitted: PolicyFinding[];
  summary: SecuritySummary;
}

// ---- untyped JSON access ----------------------------------------------------------------

type Json = Record<string, unknown>;
const asObject = (v: unknown): Json | undefined => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asString = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const asNumber = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const strings = (v: unknown): string[] => asArray(v).filter((x): x is string => typeof x === "string");
const quote = (key: string) => `[${JSON.stringify(key)}]`;

/** Collects findings and decides, per finding, whether its allowance admits it. */
class Findings {
  readonly refused: PolicyFinding[] = [];
  readonly admitted: PolicyFinding[] = [];
  constructor(private readonly privileged: boolean) {}
  add(finding: PolicyFinding, allowed: boolean): void {
    (allowed || this.privileged ? this.admitted : this.refused).push(finding);
  }
}

const NAMESPACE_LABEL: Record<NamespaceType, string> = {
  pid: "host pid",
  network: "host network",
  ipc: "host IPC",
  uts: "host hostname",
  mount: "host mount table",
  user: "host user namespace",
  cgroup: "host cgroup namespace",
  time: "host clocks",
};

const allows = (list: readonly string[] | undefined, item: string) => list?.includes(item) ?? false;

/** True when `path` is `prefix` or lies below it (both normalized absolute paths). */
function isUnder(path: string, prefix: string): boolean {
  return path === prefix || prefix === "/" || path.startsWith(`${prefix}/`);
}

// ---- the categories ---------------------------------------------------------------------

function checkRoot(spec: Json, findings: Findings): void {
  const root = asString(asObject(spec.root)?.path);
  if (root === undefined) return;
  const normalized = posix.normalize(root);
  if (posix.isAbsolute(root) || normalized.startsWith("..")) {
    findings.add({ path: "spec.root.path", grant: `uses ${JSON.stringify(root)} instead of the bundle's rootfs as the root filesystem`, allowance: "privileged: true" }, false);
  }
}

function checkHooks(spec: Json, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  if (spec.hooks === undefined || spec.hooks === null) return;
  const hooks = asObject(spec.hooks);
  if (!hooks) {
    findings.add({ path: "spec.hooks", grant: "hooks of an unreadable shape", allowance: "allow.hooks: true" }, allow.hooks === true);
    return;
  }
  for (const [kind, list] of Object.entries(hooks)) {
    if (!Array.isArray(list)) {
      findings.add({ path: `spec.hooks.${kind}`, grant: `${kind} hooks of an unreadable shape`, allowance: "allow.hooks: true" }, allow.hooks === true);
      continue;
    }
    list.forEach((hook, i) => {
      const program = asString(asObject(hook)?.path) ?? "(no path)";
      summary.hooks.push(`${kind}: ${program}`);
      findings.add({ path: `spec.hooks.${kind}[${i}]`, grant: `runs ${program} on the host as root (${kind} hook)`, allowance: "allow.hooks: true" }, allow.hooks === true);
    });
  }
}

function annotationAllowed(key: string, allowed: readonly string[] | undefined): boolean {
  return (allowed ?? []).some((a) => a === key || (a.endsWith(".") && key.startsWith(a)) || (a.endsWith("*") && key.startsWith(a.slice(0, -1))));
}

function checkAnnotations(spec: Json, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  const annotations = asObject(spec.annotations) ?? {};
  for (const [key, value] of Object.entries(annotations)) {
    const match = RUNTIME_ANNOTATIONS.find(({ prefix }) => key === prefix || (/[./]$/.test(prefix) && key.startsWith(prefix)));
    if (!match) continue;
    summary.runtimeAnnotations.push(`${key}=${String(value)}`);
    findings.add(
      { path: `spec.annotations${quote(key)}`, grant: `${JSON.stringify(String(value))}: ${match.why}`, allowance: `allow.annotations: ["${key}"]` },
      annotationAllowed(key, allow.annotations),
    );
  }
}

function checkNamespaces(linux: Json | undefined, allow: Allowances, summary: SecuritySummary, findings: Findings): Set<NamespaceType> {
  const namespaces = asArray(linux?.namespaces);
  const owned = new Set<NamespaceType>();
  namespaces.forEach((entry, i) => {
    const ns = asObject(entry);
    const type = asString(ns?.type) as NamespaceType | undefined;
    if (!type) return;
    const joined = asString(ns?.path);
    if (joined) {
      summary.hostNamespaces.push(`${type} (joins ${joined})`);
      findings.add(
        { path: `spec.linux.namespaces[${i}]`, grant: `joins ${type} namespace ${joined}`, allowance: `allow.hostNamespaces: ["${type}"]` },
        allows(allow.hostNamespaces, type),
      );
    } else {
      owned.add(type);
    }
  });
  for (const type of REQUIRED_NAMESPACES) {
    if (owned.has(type) || namespaces.some((e) => asObject(e)?.type === type)) continue;
    summary.hostNamespaces.push(`${type} (shared with the host)`);
    findings.add(
      { path: "spec.linux.namespaces", grant: `no ${type} namespace (${NAMESPACE_LABEL[type]})`, allowance: `allow.hostNamespaces: ["${type}"]` },
      allows(allow.hostNamespaces, type),
    );
  }
  return owned;
}

const CAPABILITY_SETS = ["bounding", "effective", "permitted", "inheritable", "ambient"] as const;

function checkCapabilities(process: Json | undefined, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  const capabilities = asObject(process?.capabilities) ?? {};
  const setsOf = new Map<string, string[]>();
  for (const set of CAPABILITY_SETS) {
    for (const cap of strings(capabilities[set])) {
      if (DEFAULT_CAPABILITIES.has(cap)) continue;
      setsOf.set(cap, [...(setsOf.get(cap) ?? []), set]);
    }
  }
  for (const [cap, sets] of setsOf) {
    summary.capabilitiesBeyondDefault.push(cap);
    findings.add(
      { path: "spec.process.capabilities", grant: `${cap} (${sets.join(", ")}) beyond containerd's default set`, allowance: `allow.capabilities: ["${cap}"]` },
      allows(allow.capabilities, cap),
    );
  }
}

function checkPrivileges(process: Json | undefined, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  summary.noNewPrivileges = process?.noNewPrivileges === true;
  if (!summary.noNewPrivileges) {
    findings.add(
      { path: "spec.process.noNewPrivileges", grant: "false: setuid and file-capability binaries in the container can gain privileges", allowance: "allow.newPrivileges: true" },
      allow.newPrivileges === true,
    );
  }
  const apparmor = asString(process?.apparmorProfile);
  summary.apparmor = apparmor || "none set (the host's default)";
  if (apparmor === "unconfined") {
    findings.add({ path: "spec.process.apparmorProfile", grant: "unconfined: no AppArmor confinement", allowance: "allow.unconfined: true" }, allow.unconfined === true);
  }
  const selinux = asString(process?.selinuxLabel);
  summary.selinux = selinux || "none set";
  const selinuxType = selinux?.split(":")[2];
  if (selinuxType === "unconfined_t" || selinuxType === "spc_t") {
    findings.add({ path: "spec.process.selinuxLabel", grant: `${selinuxType}: no SELinux confinement`, allowance: "allow.unconfined: true" }, allow.unconfined === true);
  }
}

function checkMaskedPaths(linux: Json | undefined, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  const masked = new Set(strings(linux?.maskedPaths));
  const readonly = new Set(strings(linux?.readonlyPaths));
  for (const path of DEFAULT_MASKED_PATHS) {
    if (masked.has(path)) continue;
    summary.unmaskedPaths.push(`${path} (not masked)`);
    findings.add({ path: "spec.linux.maskedPaths", grant: `${path} is not masked`, allowance: `allow.unmaskedPaths: ["${path}"]` }, allows(allow.unmaskedPaths, path));
  }
  for (const path of DEFAULT_READONLY_PATHS) {
    if (readonly.has(path) || masked.has(path)) continue;
    summary.unmaskedPaths.push(`${path} (writable)`);
    findings.add({ path: "spec.linux.readonlyPaths", grant: `${path} is writable`, allowance: `allow.unmaskedPaths: ["${path}"]` }, allows(allow.unmaskedPaths, path));
  }
}

/** A host path the spec names and `allow.hostMounts` governs, normalized (`.` and `..` gone). */
export interface HostPath {
  /** Where in the spec: `spec.mounts[i]` or `spec.linux.seccomp.listenerPath`. */
  path: string;
  source: string;
}

function isBindMount(type: string, options: string[]): boolean {
  return type === "bind" || type === "rbind" || options.includes("bind") || options.includes("rbind");
}

/** A mount source as a host path: normalized when absolute (a relative one stays as given, and no allowance admits it). */
const hostPathOf = (source: string): string => (posix.isAbsolute(source) ? posix.normalize(source) : source);

/**
 * Every host path of a spec that `allow.hostMounts` governs: bind sources, the
 * sources of mounts of a type other than the kernel's own, and the seccomp
 * listener socket. The policy judges these; on a local daemon they are also
 * resolved through symlinks (restore/policy.ts).
 */
export function hostPaths(spec: Record<string, unknown>): HostPath[] {
  const paths = asArray(spec.mounts).flatMap((entry, i): HostPath[] => {
    const mount = asObject(entry) ?? {};
    const type = asString(mount.type) ?? "";
    const source = asString(mount.source) ?? "";
    const hostSourced = isBindMount(type, strings(mount.options)) || (!KERNEL_MOUNT_TYPES.has(type) && posix.isAbsolute(source));
    return hostSourced ? [{ path: `spec.mounts[${i}]`, source: hostPathOf(source) }] : [];
  });
  const listener = asString(asObject(asObject(spec.linux)?.seccomp)?.listenerPath);
  return listener ? [...paths, { path: "spec.linux.seccomp.listenerPath", source: hostPathOf(listener) }] : paths;
}

/** True when an allowance lets `hostPath` be mounted (an allowed prefix contains it). */
export function hostPathAllowed(hostPath: string, allow: Allowances): boolean {
  return posix.isAbsolute(hostPath) && (allow.hostMounts ?? []).some((prefix) => isUnder(hostPath, prefix));
}

function checkMounts(spec: Json, linux: Json | undefined, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  asArray(spec.mounts).forEach((entry, i) => {
    const mount = asObject(entry) ?? {};
    const type = asString(mount.type) ?? "";
    const options = strings(mount.options);
    const source = asString(mount.source) ?? "";
    const destination = asString(mount.destination) ?? "";
    const readOnly = options.includes("ro") || options.includes("rro");
    const mode = readOnly ? "read-only" : "read-write";
    const at = `spec.mounts[${i}]`;
    if (isBindMount(type, options)) {
      const hostPath = hostPathOf(source);
      summary.hostMounts.push(`${hostPath} → ${destination} (${mode})`);
      findings.add(
        { path: at, grant: `bind of host ${hostPath} ${mode} at ${destination}`, allowance: `allow.hostMounts: ["${hostPath}"]` },
        hostPathAllowed(hostPath, allow),
      );
      return;
    }
    if (!KERNEL_MOUNT_TYPES.has(type)) {
      const hostSource = posix.isAbsolute(source) ? hostPathOf(source) : undefined;
      summary.hostMounts.push(`${type || "(no type)"} ${source} → ${destination} (${mode})`);
      findings.add(
        {
          path: at,
          grant: `mount of type ${JSON.stringify(type)} from ${JSON.stringify(source)} ${mode} at ${destination}`,
          allowance: hostSource ? `allow.hostMounts: ["${hostSource}"]` : "privileged: true",
        },
        hostSource !== undefined && hostPathAllowed(hostSource, allow),
      );
      return;
    }
    // Kernel filesystems of the container's own: only sysfs and cgroupfs reach host state when writable.
    const writableHostView = !readOnly && (type === "sysfs" || type === "cgroup" || type === "cgroup2");
    if (writableHostView) {
      const path = type === "sysfs" ? "/sys" : "/sys/fs/cgroup";
      summary.unmaskedPaths.push(`${destination} (${type} read-write)`);
      findings.add({ path: at, grant: `${type} mounted read-write at ${destination}`, allowance: `allow.unmaskedPaths: ["${path}"]` }, allows(allow.unmaskedPaths, path));
    }
  });
  const propagation = asString(linux?.rootfsPropagation);
  if (propagation === "shared" || propagation === "rshared") {
    findings.add({ path: "spec.linux.rootfsPropagation", grant: `${propagation}: mounts propagate between the container and the host`, allowance: "privileged: true" }, false);
  }
}

const describeRule = (rule: DeviceRule) => `${rule.type ?? "a"} ${rule.major ?? "*"}:${rule.minor ?? "*"} ${rule.access ?? "rwm"}`;
const ruleKey = (type: string, major: number | undefined, minor: number | undefined) => `${type} ${major ?? "*"}:${minor ?? "*"}`;
/** -1 and null mean "any" in OCI device rules. */
const wildcard = (n: unknown): number | undefined => {
  const value = asNumber(n);
  return value === undefined || value < 0 ? undefined : value;
};

function checkDevices(linux: Json | undefined, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  const allowedNodes = new Set<string>();
  asArray(linux?.devices).forEach((entry, i) => {
    const device = asObject(entry) ?? {};
    const path = asString(device.path) ?? "(no path)";
    const type = asString(device.type) ?? "?";
    const key = ruleKey(type, wildcard(device.major), wildcard(device.minor));
    summary.devices.push(`${path} (${key})`);
    const admitted = allows(allow.devices, path);
    if (admitted) allowedNodes.add(key);
    findings.add({ path: `spec.linux.devices[${i}]`, grant: `device node ${path} (${key})`, allowance: `allow.devices: ["${path}"]` }, admitted);
  });

  const rules: DeviceRule[] = asArray(asObject(linux?.resources)?.devices).map((entry) => {
    const rule = asObject(entry) ?? {};
    return { allow: rule.allow === true, type: asString(rule.type), major: wildcard(rule.major), minor: wildcard(rule.minor), access: asString(rule.access) };
  });
  const isDenyAll = (r: DeviceRule) => !r.allow && (r.type === undefined || r.type === "a") && r.major === undefined && r.minor === undefined && /^(rwm|rmw|wrm|wmr|mrw|mwr)?$/.test(r.access ?? "");
  const lastDenyAll = rules.map(isDenyAll).lastIndexOf(true);
  if (lastDenyAll < 0) {
    summary.devices.push("every device (no deny-all device rule)");
    findings.add(
      { path: "spec.linux.resources.devices", grant: "no deny-all rule first: every host device is allowed (a *:* rwm)", allowance: 'allow.devices: ["a *:*"]' },
      allows(allow.devices, "a *:*"),
    );
    return;
  }
  rules.forEach((rule, i) => {
    if (i <= lastDenyAll || !rule.allow) return;
    const type = rule.type ?? "a";
    const key = ruleKey(type, rule.major, rule.minor);
    const isDefault = DEFAULT_DEVICE_RULES.some((d) => d.type === type && d.major === rule.major && (d.minor === undefined || d.minor === rule.minor));
    if (isDefault || allowedNodes.has(key)) return;
    summary.devices.push(`rule ${describeRule(rule)}`);
    findings.add(
      { path: `spec.linux.resources.devices[${i}]`, grant: `allows ${describeRule(rule)}, wider than containerd's default device rules`, allowance: `allow.devices: ["${key}"]` },
      allows(allow.devices, key),
    );
  });
}

function checkNetDevices(linux: Json | undefined, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  for (const name of Object.keys(asObject(linux?.netDevices) ?? {})) {
    summary.devices.push(`network device ${name}`);
    findings.add(
      { path: `spec.linux.netDevices${quote(name)}`, grant: `moves host network device ${name} into the container`, allowance: `allow.devices: ["netdev/${name}"]` },
      allows(allow.devices, `netdev/${name}`),
    );
  }
}

/** The namespace a sysctl is confined to, or undefined when it is host-wide. */
function sysctlNamespace(key: string): NamespaceType | undefined {
  if (IPC_SYSCTLS.has(key) || key.startsWith("fs.mqueue.")) return "ipc";
  if (key.startsWith("net.")) return "network";
  if (key === "kernel.hostname" || key === "kernel.domainname") return "uts";
  return undefined;
}

function checkSysctls(linux: Json | undefined, owned: Set<NamespaceType>, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  for (const [key, value] of Object.entries(asObject(linux?.sysctl) ?? {})) {
    const ns = sysctlNamespace(key);
    if (ns && owned.has(ns)) continue;
    summary.sysctls.push(`${key}=${String(value)}`);
    findings.add(
      { path: `spec.linux.sysctl${quote(key)}`, grant: `${key}=${String(value)} is host-wide (not confined to a namespace the container owns)`, allowance: `allow.sysctls: ["${key}"]` },
      allows(allow.sysctls, key),
    );
  }
}

function checkSeccomp(linux: Json | undefined, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  const seccomp = asObject(linux?.seccomp);
  summary.seccomp = seccomp
    ? `default action ${asString(seccomp.defaultAction) ?? "?"}, ${asArray(seccomp.syscalls).length} syscall rules`
    : "none (as `ctr run` without --seccomp)";
  const listener = asString(seccomp?.listenerPath);
  if (listener) {
    const hostPath = hostPathOf(listener);
    findings.add(
      { path: "spec.linux.seccomp.listenerPath", grant: `hands seccomp notifications to host socket ${hostPath}`, allowance: `allow.hostMounts: ["${hostPath}"]` },
      hostPathAllowed(hostPath, allow),
    );
  }
}

/** The binary the runc shim runs when no other is named. */
const DEFAULT_RUNC_BINARY = "runc";

/** runc Options fields that choose a binary, a path or weaker isolation, with what each does. */
const RUNTIME_OPTION_GRANTS: Record<RuntimeOptionField, string> = {
  binaryName: "chooses the program the shim runs as runc (as root)",
  root: "chooses runc's state directory on the host",
  criuPath: "chooses the CRIU binary (containerd 1.6)",
  criuImagePath: "restores from a host directory instead of the checkpoint's CRIU image",
  criuWorkPath: "chooses where CRIU writes its work files and log on the host",
  shimCgroup: "chooses the host cgroup the shim runs in",
  noPivotRoot: "skips pivot_root (a chroot the process can escape)",
  noNewKeyring: "shares the host session keyring with the container",
  ioUid: "chooses the owner of the container's stdio pipes",
  ioGid: "chooses the group of the container's stdio pipes",
};


function checkRuntime(input: PolicyInput, allow: Allowances, summary: SecuritySummary, findings: Findings): void {
  const { name, options } = input.runtime;
  summary.runtime = name;
  if (!DEFAULT_RUNTIMES.includes(name)) {
    findings.add({ path: "runtime", grant: `runtime ${name}, not ${DEFAULT_RUNTIMES.join(" or ")}`, allowance: `allow.runtimes: ["${name}"]` }, allows(allow.runtimes, name));
  }
  if (!options || options.typeUrl === "") return;
  if (!options.runc) {
    summary.runtimeOptions.push(`options of type ${options.typeUrl}`);
    findings.add({ path: "runtimeOptions", grant: `options of type ${options.typeUrl}, which this provider cannot inspect`, allowance: "privileged: true" }, false);
    return;
  }
  const runc = options.runc;
  for (const field of Object.keys(RUNTIME_OPTION_GRANTS) as RuntimeOptionField[]) {
    const value = runc[field];
    if (value === undefined || value === "" || value === 0 || value === false) continue;
    // `ctr run --runc-binary runc` (and containerd 1.7/2.x configs) name the default binary: the shim's own choice, found on its PATH.
    if (field === "binaryName" && value === DEFAULT_RUNC_BINARY) continue;
    summary.runtimeOptions.push(`${field}=${JSON.stringify(value)}`);
    findings.add(
      { path: `runtimeOptions.${field}`, grant: `${JSON.stringify(value)} ${RUNTIME_OPTION_GRANTS[field]}`, allowance: `allow.runtimeOptions: ["${field}"]` },
      allows(allow.runtimeOptions, field),
    );
  }
  if (runc.systemdCgroup) summary.runtimeOptions.push("systemdCgroup=true");
  for (const field of options.unknownFields) {
    summary.runtimeOptions.push(`unknown field ${field}`);
    findings.add({ path: `runtimeOptions.field${field}`, grant: `field ${field}, which this provider does not know (it would be dropped)`, allowance: "privileged: true" }, false);
  }
}

function describeUser(process: Json | undefined): string {
  const user = asObject(process?.user);
  const uid = asNumber(user?.uid) ?? 0;
  const gid = asNumber(user?.gid) ?? 0;
  return `uid ${uid}, gid ${gid}${uid === 0 ? " (root in the container)" : ""}`;
}

/**
 * Evaluates a checkpoint against a restore policy: plain data in, findings out.
 * Default-deny beyond what an ordinary unprivileged container gets; every
 * finding names its path in the checkpoint and the allowance that admits it.
 */
export function evaluatePolicy(input: PolicyInput, policy: RestorePolicy = {}): PolicyResult {
  const allow = policy.allow ?? {};
  const findings = new Findings(policy.privileged === true);
  const { spec } = input;
  const process = asObject(spec.process);
  const linux = asObject(spec.linux);
  const summary: SecuritySummary = {
    runtime: input.runtime.name,
    user: describeUser(process),
    hostNamespaces: [],
    capabilitiesBeyondDefault: [],
    hostMounts: [],
    devices: [],
    hooks: [],
    runtimeOptions: [],
    runtimeAnnotations: [],
    unmaskedPaths: [],
    sysctls: [],
    noNewPrivileges: false,
    seccomp: "",
    apparmor: "",
    selinux: "",
  };
  checkRoot(spec, findings);
  checkHooks(spec, allow, summary, findings);
  checkAnnotations(spec, allow, summary, findings);
  const owned = checkNamespaces(linux, allow, summary, findings);
  checkCapabilities(process, allow, summary, findings);
  checkPrivileges(process, allow, summary, findings);
  checkMaskedPaths(linux, allow, summary, findings);
  checkMounts(spec, linux, allow, summary, findings);
  checkDevices(linux, allow, summary, findings);
  checkNetDevices(linux, allow, summary, findings);
  checkSysctls(linux, owned, allow, summary, findings);
  checkSeccomp(linux, allow, summary, findings);
  checkRuntime(input, allow, summary, findings);
  return { refused: findings.refused, admitted: findings.admitted, summary };
}

/**
 * One line of what a checkpoint gets beyond an ordinary unprivileged container,
 * for a step preview: `nothing beyond an ordinary container`, or the categories that are not empty.
 */
export function grantsBeyondDefault(summary: SecuritySummary): string {
  const parts: [string, string[]][] = [
    ["host namespaces", summary.hostNamespaces],
    ["capabilities", summary.capabilitiesBeyondDefault],
    ["host mounts", summary.hostMounts],
    ["devices", summary.devices],
    ["hooks", summary.hooks],
    ["runtime options", summary.runtimeOptions.filter((o) => o !== "systemdCgroup=true")],
    ["runtime annotations", summary.runtimeAnnotations],
    ["unmasked paths", summary.unmaskedPaths],
    ["host-wide sysctls", summary.sysctls],
    ["new privileges", summary.noNewPrivileges ? [] : ["allowed"]],
  ];
  const granted = parts.filter(([, items]) => items.length > 0).map(([name, items]) => `${name}: ${items.join(", ")}`);
  return granted.length > 0 ? granted.join("; ") : "nothing beyond an ordinary container";
}

/** The summary as short lines, for a preview or a log. */
export function summaryLines(summary: SecuritySummary): string[] {
  const list = (items: string[]) => (items.length ? items.join("; ") : "none");
  return [
    `runtime: ${summary.runtime}`,
    `user: ${summary.user}`,
    `host namespaces: ${list(summary.hostNamespaces)}`,
    `capabilities beyond default: ${list(summary.capabilitiesBeyondDefault)}`,
    `host mounts: ${list(summary.hostMounts)}`,
    `devices: ${list(summary.devices)}`,
    `hooks: ${list(summary.hooks)}`,
    `runtime options: ${list(summary.runtimeOptions)}`,
    `runtime annotations: ${list(summary.runtimeAnnotations)}`,
    `unmasked paths: ${list(summary.unmaskedPaths)}`,
    `host-wide sysctls: ${list(summary.sysctls)}`,
    `no new privileges: ${summary.noNewPrivileges}`,
    `seccomp: ${summary.seccomp}`,
    `apparmor: ${summary.apparmor}`,
    `selinux: ${summary.selinux}`,
  ];
}
