/**
 * What an ordinary unprivileged container gets from `ctr run` (containerd's
 * oci.WithDefaultSpec + WithDefaultUnixDevices), `nerdctl run` or Docker: the
 * baseline the default policy admits. Anything a checkpoint asks for beyond it
 * must be allowed by name.
 */

/**
 * containerd 1.x's and Docker's default capability set. containerd 2.0 dropped
 * MKNOD, NET_RAW, SETFCAP, SYS_CHROOT and AUDIT_WRITE from its own default; a
 * checkpoint made by containerd 1.6/1.7 still carries them, and Docker grants them.
 */
export const DEFAULT_CAPABILITIES: ReadonlySet<string> = new Set([
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
]);

/** Every capability name the kernel knows (capability.h, up to CAP_CHECKPOINT_RESTORE). */
export const KNOWN_CAPABILITIES: ReadonlySet<string> = new Set([
  ...DEFAULT_CAPABILITIES,
  "CAP_DAC_READ_SEARCH",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_LEASE",
  "CAP_AUDIT_CONTROL",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
]);

/** The namespaces every default container has of its own; a missing one is shared with the host. */
export const REQUIRED_NAMESPACES = ["pid", "network", "ipc", "uts", "mount"] as const;
/** Namespace types of the OCI runtime spec. */
export const NAMESPACE_TYPES = ["pid", "network", "ipc", "uts", "mount", "user", "cgroup", "time"] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];

/**
 * Paths containerd masks in every default container (1.6 through 2.x; 2.x added
 * /sys/devices/virtual/powercap, which older checkpoints lack, so it is not required).
 */
export const DEFAULT_MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  "/proc/scsi",
] as const;

export const DEFAULT_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"] as const;

/** A cgroup device rule as the OCI spec writes it. */
export interface DeviceRule {
  allow: boolean;
  type?: string;
  /** Absent: any (the spec's null and -1 are read as absent). */
  major?: number;
  minor?: number;
  access?: string;
}

/**
 * containerd's WithDefaultUnixDevices: after a deny-all rule, these character
 * devices with rwm (minor undefined = every minor of that major).
 */
export const DEFAULT_DEVICE_RULES: readonly { type: "c"; major: number; minor?: number; name: string }[] = [
  { type: "c", major: 1, minor: 3, name: "/dev/null" },
  { type: "c", major: 1, minor: 8, name: "/dev/random" },
  { type: "c", major: 1, minor: 7, name: "/dev/full" },
  { type: "c", major: 5, minor: 0, name: "/dev/tty" },
  { type: "c", major: 1, minor: 5, name: "/dev/zero" },
  { type: "c", major: 1, minor: 9, name: "/dev/urandom" },
  { type: "c", major: 5, minor: 1, name: "/dev/console" },
  { type: "c", major: 136, name: "/dev/pts/*" },
  { type: "c", major: 5, minor: 2, name: "/dev/ptmx" },
  { type: "c", major: 10, minor: 200, name: "/dev/net/tun" },
];

/** Mount types that never reach a host path or device: the default container's own kernel filesystems. */
export const KERNEL_MOUNT_TYPES: ReadonlySet<string> = new Set(["proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup", "cgroup2", "shm"]);

/**
 * Spec annotations that change what the runtime or CRIU does, with why.
 * runc lists the first three as `potentiallyUnsafeConfigAnnotations` (runc features);
 * crun the next two; Kata and gVisor read their own prefixes.
 */
export const RUNTIME_ANNOTATIONS: readonly { prefix: string; why: string }[] = [
  { prefix: "org.criu.", why: "points CRIU at a configuration file (org.criu.config), whose action-script runs as root at every restore stage" },
  { prefix: "org.systemd.property.", why: "sets properties of the container's systemd unit (runc with the systemd cgroup driver)" },
  { prefix: "bundle", why: "runc treats it as the bundle path" },
  { prefix: "run.oci.", why: "crun options (handlers such as krun, hooks output, seccomp behaviour)" },
  { prefix: "module.wasm.image/variant", why: "makes crun run a Wasm handler instead of the process" },
  { prefix: "io.katacontainers.", why: "Kata Containers options, including hypervisor and kernel paths" },
  { prefix: "dev.gvisor.", why: "gVisor (runsc) options" },
];

/** The runtime the default policy admits: the runc shim every checkpoint in this format comes from. */
export const DEFAULT_RUNTIMES: readonly string[] = ["io.containerd.runc.v2"];

/**
 * Sysctls confined to a namespace the container owns (runc's validator): IPC
 * sysctls need the ipc namespace, net.* the network namespace, the names the uts namespace.
 */
export const IPC_SYSCTLS: ReadonlySet<string> = new Set([
  "kernel.msgmax",
  "kernel.msgmnb",
  "kernel.msgmni",
  "kernel.sem",
  "kernel.shmall",
  "kernel.shmmax",
  "kernel.shmmni",
  "kernel.shm_rmid_forced",
]);
