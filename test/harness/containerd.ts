/**
 * A private containerd daemon per test file: own root, state, socket and
 * namespace, driven through the `ctr` CLI, and torn down without leaving
 * anything behind on the machine.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { listProcesses, mountsUnder, pidAlive, runProcess, signalPid, sleep, waitFor } from "./proc";
import { freeLoopbackPort, startTlsGateway, type TlsGateway, type TlsMaterial } from "./tls";
import { behaviourOf, binaryVersion, containerdBinDir, parseVersion, short, type Version, type VersionBehaviour } from "./versions";

/** Options for {@link PrivateContainerd.ctr}. */
export interface CtrOptions {
  /** Data for ctr's stdin (e.g. `ctr content ingest`). */
  input?: Buffer | string;
  /** Namespace for this call (default: the daemon's namespace). */
  namespace?: string;
  /** Kill ctr after this many milliseconds (default 120 000). */
  timeoutMs?: number;
}

/** A ctr invocation that exited non-zero (or was killed). */
export class CtrError extends Error {
  constructor(
    /** Arguments after `-a SOCKET -n NS`. */
    readonly args: readonly string[],
    /** ctr's exit code, or null if it was killed. */
    readonly exitCode: number | null,
    /** ctr's stderr, trimmed. */
    readonly stderr: string,
  ) {
    super(`ctr ${args.join(" ")} failed (exit ${exitCode ?? "killed"}): ${stderr}`);
    this.name = "CtrError";
  }
}

/** A running private containerd daemon; see {@link startContainerd}. */
export interface PrivateContainerd {
  /** Temp directory holding config, root, state, socket, logs and TMPDIR. */
  readonly dir: string;
  /** Path of the gRPC unix socket. */
  readonly socket: string;
  /** `unix://` + socket, for gRPC clients. */
  readonly address: string;
  /** Default namespace (unique per daemon, e.g. `t3f9a0c1d`). */
  readonly namespace: string;
  /** Directory for container stdout/stderr logs (`<dir>/logs`). */
  readonly logDir: string;
  /** The daemon's own log file (`<dir>/containerd.log`). */
  readonly daemonLog: string;
  /** Directory used as the daemon's TMPDIR (`<dir>/tmp`; `ctrd-checkpoint*` dirs leak here). */
  readonly tmpDir: string;
  /** Pid of the daemon, or undefined while it is not running. */
  readonly pid: number | undefined;
  /** The daemon's version, as its Version service reports it (checked against the binary's). */
  readonly version: Version;
  /** What differs in this version that tests branch on. */
  readonly behaviour: VersionBehaviour;
  /** The directory of this daemon's `containerd`, shim and `ctr` (first on the daemon's PATH). */
  readonly binDir: string;
  /**
   * With the `tls` option: `tcp://127.0.0.1:PORT`, containerd's API over mutual TLS
   * (server certificate `tls.server`, client certificates must chain to `tls.ca`),
   * through a TLS gateway in front of the unix socket. Undefined otherwise.
   */
  readonly tcpAddress: string | undefined;
  /**
   * With the `tls` option: `tcp://127.0.0.1:PORT`, containerd's own `[grpc] tcp_address`
   * with `tcp_tls_cert`/`tcp_tls_key`/`tcp_tls_ca` (mutual TLS by containerd itself).
   * containerd serves only the CRI plugin there (disabled here), so every
   * `containerd.services.*` call answers UNIMPLEMENTED; TLS handshakes are real.
   * Undefined on containerd 2.x, which opens no such endpoint while CRI is disabled
   * (`behaviour.nativeTcpServes`).
   */
  readonly nativeTcpAddress: string | undefined;
  /** Runs `ctr -a SOCKET -n NS ...args` and returns stdout; rejects with {@link CtrError}. */
  ctr(args: string[], opts?: CtrOptions): Promise<string>;
  /** Like {@link PrivateContainerd.ctr} but returns stdout as raw bytes (e.g. `content get`). */
  ctrRaw(args: string[], opts?: CtrOptions): Promise<Buffer>;
  /** SIGTERM the daemon, wait for it, start it again on the same root/state/socket. */
  restart(): Promise<void>;
  /** SIGKILL the daemon only (shims and containers stay), for fault tests. */
  kill(): Promise<void>;
  /** Start the daemon again after {@link PrivateContainerd.kill}. */
  start(): Promise<void>;
  /** Remove every task, container, shim, mount and file of this daemon. Idempotent. */
  stop(): Promise<void>;
}

/** Options for {@link startContainerd}. */
export interface StartContainerdOptions {
  /** Default namespace; a unique `t<hex>` when omitted. */
  namespace?: string;
  /**
   * Also listen on loopback TCP with mutual TLS (see {@link PrivateContainerd.tcpAddress}
   * and {@link PrivateContainerd.nativeTcpAddress}). Material from `generateTlsMaterial()`;
   * the daemon keeps its own copy of the files, so the material may be removed first.
   */
  tls?: TlsMaterial;
  /**
   * containerd version to run (`2.4.2`, `1.7.35`, `1.6.20` = Debian's), built by
   * scripts/setup.sh; default the `containerd` on PATH. The daemon's PATH starts
   * with that version's bin dir, so it runs its own shim (and the runc on PATH).
   */
  containerd?: string;
}

/** containerd's own TCP endpoint: loopback address and TLS files (inside the daemon dir). */
interface TcpConfig {
  address: string;
  ca: string;
  cert: string;
  key: string;
}

const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 10_000;
const SHIM_SOCKET_DIR = "/run/containerd/s";
const RUNC_ROOT = "/run/containerd/runc";
const CGROUP_ROOT = "/sys/fs/cgroup";

/** Daemons started by this process that have not been stopped yet. */
const liveDaemons = new Set<Daemon>();
let safetyNetInstalled = false;

/**
 * Starts a private containerd (CRI disabled) in a fresh temp dir and waits
 * until `ctr version` answers.
 */
export async function startContainerd(opts: StartContainerdOptions = {}): Promise<PrivateContainerd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ctrd-"));
  const namespace = opts.namespace ?? `t${crypto.randomBytes(4).toString("hex")}`;
  const daemon = new Daemon(dir, namespace, containerdBinDir(opts.containerd));
  daemon.writeConfig();
  installSafetyNet();
  liveDaemons.add(daemon);
  try {
    if (opts.tls) await daemon.enableTls(opts.tls);
    else await daemon.start();
  } catch (err) {
    await daemon.stop().catch(() => undefined);
    throw err;
  }
  return daemon;
}

/**
 * The CRI and NRI plugins containerd 2.x would load: `io.containerd.grpc.v1.cri`
 * alone is not enough there (2.x split CRI into images and runtime plugins).
 */
const DISABLED_PLUGINS_2X = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri"];

/**
 * Builds the daemon's config.toml for its version: `version = 2` for 1.x;
 * `version = 3` for 2.x (which would otherwise migrate a version 2 config and
 * still load the CRI runtime plugin), with CRI and NRI disabled.
 */
function renderConfig(dir: string, behaviour: VersionBehaviour, tcp?: TcpConfig): string {
  const q = (s: string): string => JSON.stringify(s);
  const v3 = behaviour.configVersion === 3;
  return [
    `version = ${behaviour.configVersion}`,
    `root = ${q(path.join(dir, "root"))}`,
    `state = ${q(path.join(dir, "state"))}`,
    `disabled_plugins = ${JSON.stringify(v3 ? DISABLED_PLUGINS_2X : ["io.containerd.grpc.v1.cri"])}`,
    "",
    "[grpc]",
    `  address = ${q(path.join(dir, "containerd.sock"))}`,
    // containerd 1.6 services/server/config: tcp_tls_cert turns TLS on, tcp_tls_ca requires client certs.
    ...(tcp
      ? [
          `  tcp_address = ${q(tcp.address)}`,
          `  tcp_tls_ca = ${q(tcp.ca)}`,
          `  tcp_tls_cert = ${q(tcp.cert)}`,
          `  tcp_tls_key = ${q(tcp.key)}`,
        ]
      : []),
    "",
    "[ttrpc]",
    `  address = ${q(path.join(dir, "containerd.sock.ttrpc"))}`,
    "",
    "[debug]",
    '  level = "info"',
    "",
    ...(v3 ? [] : ['[plugins."io.containerd.grpc.v1.cri"]', "  disable = true", ""]),
    // Keep the opt plugin from creating /opt/containerd on the host.
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(path.join(dir, "opt"))}`,
    "",
  ].join("\n");
}

class Daemon implements PrivateContainerd {
  readonly socket: string;
  readonly address: string;
  readonly logDir: string;
  readonly daemonLog: string;
  readonly tmpDir: string;
  private readonly configPath: string;
  readonly version: Version;
  readonly behaviour: VersionBehaviour;
  private tcp: TcpConfig | undefined;
  private gateway: TlsGateway | undefined;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private stopped = false;
  /** Namespaces this daemon was seen or asked to use. */
  private readonly namespaces = new Set<string>();

  constructor(
    readonly dir: string,
    readonly namespace: string,
    readonly binDir: string,
  ) {
    this.version = binaryVersion(path.join(binDir, "containerd"));
    this.behaviour = behaviourOf(this.version);
    this.socket = path.join(dir, "containerd.sock");
    this.address = `unix://${this.socket}`;
    this.logDir = path.join(dir, "logs");
    this.daemonLog = path.join(dir, "containerd.log");
    this.tmpDir = path.join(dir, "tmp");
    this.configPath = path.join(dir, "config.toml");
    this.namespaces.add(namespace);
  }

  get pid(): number | undefined {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  get tcpAddress(): string | undefined {
    return this.gateway?.address;
  }

  get nativeTcpAddress(): string | undefined {
    return this.tcp ? `tcp://${this.tcp.address}` : undefined;
  }

  writeConfig(): void {
    for (const sub of ["root", "state", "logs", "tmp", "opt"]) {
      fs.mkdirSync(path.join(this.dir, sub), { recursive: true });
    }
    fs.writeFileSync(this.configPath, renderConfig(this.dir, this.behaviour, this.tcp));
  }

  /**
   * First start with loopback TCP + mutual TLS: copies the server certificate, key
   * and client CA into `<dir>/tls`, picks a free port (again if another process
   * took it before containerd bound it), and opens the TLS gateway.
   */
  async enableTls(material: TlsMaterial): Promise<void> {
    const tlsDir = path.join(this.dir, "tls");
    fs.mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
    const files = { ca: path.join(tlsDir, "ca.crt"), cert: path.join(tlsDir, "server.crt"), key: path.join(tlsDir, "server.key") };
    fs.writeFileSync(files.ca, material.ca.certPem);
    fs.writeFileSync(files.cert, material.server.certPem);
    fs.writeFileSync(files.key, material.server.keyPem, { mode: 0o600 });
    if (!this.behaviour.nativeTcpServes) {
      // containerd 2.x: "no tcp grpc services configured" while CRI is disabled; only the gateway.
      await this.start();
      this.gateway = await startTlsGateway(material, this.socket);
      return;
    }
    for (let attempt = 1; ; attempt++) {
      this.tcp = { address: `127.0.0.1:${await freeLoopbackPort()}`, ...files };
      this.writeConfig();
      try {
        await this.start();
        break;
      } catch (err) {
        if (attempt >= 3 || !/failed to get listener for TCP grpc endpoint/.test(this.logTail())) throw err;
      }
    }
    this.gateway = await startTlsGateway(material, this.socket);
  }

  async ctrRaw(args: string[], opts: CtrOptions = {}): Promise<Buffer> {
    const namespace = opts.namespace ?? this.namespace;
    this.namespaces.add(namespace);
    const result = await runProcess(this.ctrPath, ["-a", this.socket, "-n", namespace, ...args], {
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? 120_000,
    });
    if (result.code !== 0) {
      throw new CtrError(args, result.code, result.stderr.toString("utf8").trim());
    }
    return result.stdout;
  }

  async ctr(args: string[], opts: CtrOptions = {}): Promise<string> {
    return (await this.ctrRaw(args, opts)).toString("utf8");
  }

  async start(): Promise<void> {
    if (this.stopped) throw new Error(`containerd in ${this.dir} was stopped`);
    if (this.pid !== undefined) return;
    const logFd = fs.openSync(this.daemonLog, "a");
    try {
      const child = spawn(path.join(this.binDir, "containerd"), ["--config", this.configPath], {
        detached: true,
        stdio: ["ignore", logFd, logFd],
        // The shim is found on PATH: this version's, then the runc on PATH.
        env: { ...process.env, PATH: `${this.binDir}:${process.env.PATH ?? ""}`, TMPDIR: this.tmpDir, XDG_RUNTIME_DIR: this.tmpDir },
      });
      this.child = child;
      this.exited = new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once("exit", () => resolve());
      });
      child.once("error", () => undefined);
      child.unref();
    } finally {
      fs.closeSync(logFd);
    }
    await this.waitReady();
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastError = "";
    while (Date.now() < deadline) {
      if (this.pid === undefined) {
        throw new Error(`containerd exited during startup:\n${this.logTail()}`);
      }
      const res = await runProcess(this.ctrPath, ["-a", this.socket, "--connect-timeout", "1s", "version"], {
        timeoutMs: 5_000,
      });
      if (res.code === 0 && (this.tcp === undefined || (await tcpAccepts(this.tcp.address)))) {
        this.checkServerVersion(res.stdout.toString("utf8"));
        return;
      }
      lastError = res.code === 0 ? `nothing listens on ${this.tcp?.address}` : res.stderr.toString("utf8").trim();
      await sleep(50);
    }
    throw new Error(
      `containerd did not answer within ${READY_TIMEOUT_MS} ms (last ctr error: ${lastError}):\n${this.logTail()}`,
    );
  }

  /** `ctr` of the daemon's own version. */
  private get ctrPath(): string {
    return path.join(this.binDir, "ctr");
  }

  /** The Version service's answer (`ctr version`, "Server: Version: …") must be the binary's version. */
  private checkServerVersion(ctrVersionOutput: string): void {
    const server = /Server:[\s\S]*?Version:\s*(\S+)/.exec(ctrVersionOutput);
    if (!server) throw new Error(`ctr version printed no server version:\n${ctrVersionOutput}`);
    const reported = parseVersion(server[1]);
    if (short(reported) !== short(this.version)) {
      throw new Error(`containerd in ${this.dir} reports version ${server[1]}, but ${this.binDir}/containerd is ${this.version.text}`);
    }
  }

  /** Last lines of the daemon log, for error messages. */
  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.daemonLog, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no daemon log)";
    }
  }

  async kill(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    signalPid(pid, "SIGKILL");
    await this.exited;
  }

  async restart(): Promise<void> {
    await this.terminate();
    await this.start();
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves once the daemon is gone. */
  private async terminate(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    signalPid(pid, "SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), STOP_GRACE_MS);
    });
    const outcome = await Promise.race([this.exited.then(() => "exited" as const), timeout]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      signalPid(pid, "SIGKILL");
      await this.exited;
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    try {
      if (this.pid === undefined && fs.existsSync(this.dir)) {
        // Killed for a fault test: bring it back so ctr can clean up properly.
        await this.start().catch(() => undefined);
      }
      if (this.pid !== undefined) {
        await this.removeAllWithCtr().catch(() => undefined);
        await this.terminate();
      }
    } finally {
      this.stopped = true;
      await this.gateway?.close();
      forceCleanupSync(this.cleanupTarget());
      liveDaemons.delete(this);
    }
  }

  /** Kill and delete every task and container in every namespace, through ctr. */
  private async removeAllWithCtr(): Promise<void> {
    const listed = (await this.ctr(["namespaces", "ls", "-q"], { timeoutMs: 15_000 }))
      .split("\n")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    for (const ns of listed) this.namespaces.add(ns);
    await Promise.all(listed.map((ns) => this.removeNamespaceContents(ns)));
  }

  private async removeNamespaceContents(namespace: string): Promise<void> {
    const opts = { namespace, timeoutMs: 15_000 };
    const tasks = parseTable(await this.ctr(["tasks", "ls"], opts).catch(() => ""));
    await Promise.all(
      tasks.map(async (row) => {
        const id = row[0];
        // A frozen task cannot die: thaw it first.
        if (row[2] === "PAUSED") await this.ctr(["tasks", "resume", id], opts).catch(() => undefined);
        await this.ctr(["tasks", "kill", "-s", "SIGKILL", id], opts).catch(() => undefined);
        await this.waitTaskNotRunning(id, namespace).catch(() => undefined);
        await this.ctr(["tasks", "rm", id], opts).catch(() =>
          this.ctr(["tasks", "rm", "-f", id], opts).catch(() => undefined),
        );
      }),
    );
    const containers = (await this.ctr(["containers", "ls", "-q"], opts).catch(() => ""))
      .split("\n")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    await Promise.all(containers.map((id) => this.ctr(["containers", "rm", id], opts).catch(() => undefined)));
  }

  private async waitTaskNotRunning(id: string, namespace: string): Promise<void> {
    await waitFor(
      async () => {
        const rows = parseTable(await this.ctr(["tasks", "ls"], { namespace, timeoutMs: 15_000 }));
        const row = rows.find((r) => r[0] === id);
        return row === undefined || row[2] !== "RUNNING" ? true : undefined;
      },
      5_000,
      () => `task ${id} to stop`,
      50,
    );
  }

  private cleanupTarget(): CleanupTarget {
    return {
      dir: this.dir,
      socket: this.socket,
      daemonPid: this.pid,
      ownNamespace: this.namespace,
      namespaces: [...this.namespaces],
    };
  }

  /** Synchronous last-resort cleanup for the process 'exit' safety net. */
  emergencyCleanup(): void {
    forceCleanupSync(this.cleanupTarget());
    liveDaemons.delete(this);
  }
}

/** True when something accepts TCP connections at `host:port`. */
function tcpAccepts(hostPort: string): Promise<boolean> {
  const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(":")), Number(hostPort.slice(hostPort.lastIndexOf(":") + 1))];
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Splits ctr's tab-aligned table output into rows of fields, without the header. */
export function parseTable(output: string): string[][] {
  return output
    .split("\n")
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => line.split(/\s+/));
}

/** What {@link forceCleanupSync} needs to know about a daemon. */
interface CleanupTarget {
  dir: string;
  socket: string;
  daemonPid: number | undefined;
  ownNamespace: string;
  namespaces: string[];
}

/** A task bundle found in the daemon's state dir. */
interface Bundle {
  namespace: string;
  id: string;
  cgroupsPath: string | undefined;
}

/**
 * Removes every trace of a daemon without talking to it: kills the daemon,
 * the container processes (by cgroup), the shims and any other process
 * working inside the dir, lazily unmounts everything under the dir, deletes
 * the dir, runc state, shim sockets and empty cgroup dirs.
 */
function forceCleanupSync(t: CleanupTarget): void {
  if (t.daemonPid !== undefined) signalPid(t.daemonPid, "SIGKILL");
  const bundles = listBundles(t.dir);
  const cgroups = new Set<string>();
  for (const b of bundles) if (b.cgroupsPath) cgroups.add(b.cgroupsPath);
  cgroups.add(`/${t.ownNamespace}`);
  const victims = new Set<number>();
  for (const cg of cgroups) for (const pid of cgroupPids(cg)) victims.add(pid);
  for (const pid of processesOfDaemon(t)) victims.add(pid);
  victims.delete(process.pid);
  for (const cg of cgroups) thawCgroup(cg);
  for (const pid of victims) signalPid(pid, "SIGKILL");
  waitGoneSync([...victims, ...(t.daemonPid !== undefined ? [t.daemonPid] : [])], 5_000);
  unmountAllSync(t.dir);
  removeRuncState(bundles);
  removeShimSockets(t.socket, bundles);
  fs.rmSync(t.dir, { recursive: true, force: true, maxRetries: 3 });
  removeCgroupDirs(bundles, new Set([...t.namespaces, t.ownNamespace]));
  removeEmptyDir(path.join(RUNC_ROOT, t.ownNamespace));
}

/** Task bundles (`<state>/io.containerd.runtime.v2.task/<ns>/<id>`) with their cgroup paths. */
function listBundles(dir: string): Bundle[] {
  const base = path.join(dir, "state", "io.containerd.runtime.v2.task");
  const bundles: Bundle[] = [];
  for (const namespace of safeReaddir(base)) {
    for (const id of safeReaddir(path.join(base, namespace))) {
      let cgroupsPath: string | undefined;
      try {
        const spec = JSON.parse(fs.readFileSync(path.join(base, namespace, id, "config.json"), "utf8")) as {
          linux?: { cgroupsPath?: string };
        };
        cgroupsPath = spec.linux?.cgroupsPath;
      } catch {
        /* no spec */
      }
      bundles.push({ namespace, id, cgroupsPath });
    }
  }
  return bundles;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Mounted cgroup v1 hierarchies (real directories under /sys/fs/cgroup, not the alias symlinks). */
function cgroupHierarchies(): string[] {
  return safeReaddir(CGROUP_ROOT)
    .map((name) => path.join(CGROUP_ROOT, name))
    .filter((p) => {
      try {
        return fs.lstatSync(p).isDirectory();
      } catch {
        return false;
      }
    });
}

/** Only plain absolute cgroupfs paths; systemd `slice:prefix:name` forms are ignored. */
function isCgroupfsPath(cg: string): boolean {
  return cg.startsWith("/") && !cg.includes("..") && cg.length > 1;
}

/** All pids in a cgroup subtree, over every hierarchy. */
function cgroupPids(cg: string): number[] {
  if (!isCgroupfsPath(cg)) return [];
  const pids: number[] = [];
  for (const h of cgroupHierarchies()) {
    for (const d of walkDirs(path.join(h, cg))) {
      try {
        for (const line of fs.readFileSync(path.join(d, "cgroup.procs"), "utf8").split("\n")) {
          if (line.trim() !== "") pids.push(Number(line));
        }
      } catch {
        /* gone */
      }
    }
  }
  return pids;
}

/** A directory and all its subdirectories, deepest first. */
function walkDirs(root: string): string[] {
  const out: string[] = [];
  const visit = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) visit(path.join(d, e.name));
    out.push(d);
  };
  visit(root);
  return out;
}

/** Thaws a (possibly frozen, e.g. mid-checkpoint) freezer cgroup so SIGKILL can be delivered. */
function thawCgroup(cg: string): void {
  if (!isCgroupfsPath(cg)) return;
  for (const d of walkDirs(path.join(CGROUP_ROOT, "freezer", cg))) {
    try {
      fs.writeFileSync(path.join(d, "freezer.state"), "THAWED");
    } catch {
      /* not frozen or gone */
    }
  }
}

/** Shims (and runc/criu helpers) of this daemon: by `-address SOCKET` in argv or cwd inside the dir. */
function processesOfDaemon(t: CleanupTarget): number[] {
  const prefix = t.dir + "/";
  return listProcesses()
    .filter((p) => p.pid !== process.pid)
    .filter((p) => {
      const isShim = p.argv.length > 0 && path.basename(p.argv[0]).startsWith("containerd-shim");
      const usesSocket = p.argv.some((a) => a === t.socket || a === `unix://${t.socket}`);
      const inDir = p.cwd === t.dir || p.cwd.startsWith(prefix);
      return (isShim && usesSocket) || inDir;
    })
    .map((p) => p.pid);
}

/** Blocks (without spinning) for up to `ms` milliseconds. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function waitGoneSync(pids: number[], timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  while (pids.some((pid) => pidAlive(pid)) && Date.now() < deadline) sleepSync(20);
}

function unmountAllSync(dir: string): void {
  for (let round = 0; round < 3; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    for (const p of points) {
      try {
        execFileSync("umount", ["-l", p], { stdio: "ignore" });
      } catch {
        /* already gone or busy: lazy unmount should not fail */
      }
    }
  }
}

/** runc's state dirs (`/run/containerd/runc/<ns>/<id>`) of bundles whose task was never deleted. */
function removeRuncState(bundles: Bundle[]): void {
  for (const b of bundles) {
    fs.rmSync(path.join(RUNC_ROOT, b.namespace, b.id), { recursive: true, force: true });
    removeEmptyDir(path.join(RUNC_ROOT, b.namespace));
  }
}

/** Shim sockets are `/run/containerd/s/<sha256(address/ns/id)>`; remove stale ones of killed shims. */
function removeShimSockets(socket: string, bundles: Bundle[]): void {
  for (const b of bundles) {
    const hash = crypto.createHash("sha256").update(path.join(socket, b.namespace, b.id)).digest("hex");
    fs.rmSync(path.join(SHIM_SOCKET_DIR, hash), { force: true });
  }
}

/** rmdir (never recursive delete) of leftover container cgroups and `/<namespace>` parents, if empty. */
function removeCgroupDirs(bundles: Bundle[], namespaces: Set<string>): void {
  const candidates: string[] = [];
  for (const b of bundles) if (b.cgroupsPath && isCgroupfsPath(b.cgroupsPath)) candidates.push(b.cgroupsPath);
  for (const ns of namespaces) if (ns !== "default" && ns !== "" && !ns.includes("/")) candidates.push(`/${ns}`);
  for (const h of cgroupHierarchies()) {
    for (const cg of candidates) {
      for (const d of walkDirs(path.join(h, cg))) removeEmptyDir(d);
    }
  }
}

function removeEmptyDir(d: string): void {
  try {
    fs.rmdirSync(d);
  } catch {
    /* not empty, busy or absent */
  }
}

/** Kills every live daemon of this process on exit, SIGINT or SIGTERM. */
function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on("exit", () => {
    for (const d of [...liveDaemons]) d.emergencyCleanup();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      for (const d of [...liveDaemons]) d.emergencyCleanup();
      process.kill(process.pid, signal);
    });
  }
}
