/**
 * Which containerd and runc the tests run against, and the behaviour that
 * differs between versions. The binaries are found through PATH (scripts/setup.sh
 * and .cache/env.sh put the selected version first), or by version in the cache
 * that scripts/matrix.sh builds into.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** A containerd or runc version as its binary or the Version service reports it. */
export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** As reported, e.g. `v2.4.2`, `1.6.20~ds1`. */
  text: string;
}

/** Parses the first `X.Y.Z` in `text` (`v2.4.2`, `1.6.20~ds1`, `runc version 1.5.3`). */
export function parseVersion(text: string): Version {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) throw new Error(`no version in ${JSON.stringify(text)}`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: text.trim() };
}

/** -1, 0 or 1 as `v` is older than, equal to or newer than `major.minor[.patch]`. */
export function compareVersion(v: Pick<Version, "major" | "minor" | "patch">, major: number, minor: number, patch = 0): number {
  return Math.sign(v.major - major || v.minor - minor || v.patch - patch);
}

export const atLeast = (v: Version, major: number, minor: number, patch = 0): boolean => compareVersion(v, major, minor, patch) >= 0;

/** `X.Y.Z` of a version. */
export const short = (v: Version): string => `${v.major}.${v.minor}.${v.patch}`;

/** Debian 12's containerd and runc (in /usr/bin): the defaults, never built. */
export const DEBIAN_CONTAINERD = "1.6.20";
export const DEBIAN_RUNC = "1.1.5";

/** The cache root scripts/matrix.sh builds into (the Pulumi CLI's). */
export function matrixRoot(): string {
  return process.env.PCR_MATRIX_ROOT ?? process.env.PULUMI_CLI_CACHE ?? path.join(os.homedir(), ".cache", "pulumi-containerd-restore");
}

/** First executable `name` on PATH, or undefined. */
export function which(name: string, searchPath = process.env.PATH ?? ""): string | undefined {
  for (const dir of searchPath.split(":")) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * The directory holding `containerd`, `containerd-shim-runc-v2` and `ctr` of
 * `version` (Debian's 1.6.20 is /usr/bin); without a version, the one on PATH.
 * Throws, naming the setup command, when that version is not built.
 */
export function containerdBinDir(version?: string): string {
  if (version === undefined) {
    const found = which("containerd");
    if (!found) throw new Error("no containerd on PATH: run `bash scripts/setup.sh && . .cache/env.sh`");
    return path.dirname(found);
  }
  const v = version.replace(/^v/, "");
  if (v === DEBIAN_CONTAINERD) return "/usr/bin";
  const dir = path.join(matrixRoot(), `containerd-v${v}`, "bin");
  if (!fs.existsSync(path.join(dir, "containerd"))) {
    throw new Error(`containerd ${v} is not built (no ${dir}/containerd): run \`CONTAINERD_VERSION=${v} bash scripts/setup.sh\``);
  }
  return dir;
}

/** True when containerd `version` can be started here (Debian's, or built by setup). */
export function containerdAvailable(version: string): boolean {
  try {
    containerdBinDir(version);
    return true;
  } catch {
    return false;
  }
}

/** The version a containerd binary reports (`containerd --version`). */
export function binaryVersion(containerdPath: string): Version {
  const out = execFileSync(containerdPath, ["--version"], { encoding: "utf8" });
  // "containerd github.com/containerd/containerd v2.4.2 <revision>" / "... 1.6.20~ds1 1.6.20~ds1-1+deb12u3"
  const fields = out.trim().split(/\s+/);
  return parseVersion(fields[2] ?? out);
}

/** The runc on PATH (what the shims run) and its version. */
export function runcOnPath(): { path: string; version: Version } {
  const found = which("runc");
  if (!found) throw new Error("no runc on PATH: run `bash scripts/setup.sh && . .cache/env.sh`");
  return { path: found, version: parseVersion(execFileSync(found, ["--version"], { encoding: "utf8" }).split("\n")[0]) };
}

/**
 * What tests branch on. Each flag names the versions it was observed on
 * (containerd 1.6.20, 1.7.35, 2.4.2; runc 1.1.5, 1.5.3).
 */
export interface VersionBehaviour {
  /**
   * A second `ctr c checkpoint --task` of the same container writes an index
   * without CRIU image, spec and options (1.6, 1.7); fixed in 2.4.
   */
  recheckpointBug: boolean;
  /**
   * `ctr run` writes a runtime-options entry into checkpoints (1.6). 1.7 and 2.x
   * write one only when given `--runc-binary`.
   */
  ctrRunWritesRuntimeOptions: boolean;
  /**
   * `[grpc] tcp_address` opens an endpoint (1.x); 2.x opens none when CRI is
   * disabled ("no tcp grpc services configured").
   */
  nativeTcpServes: boolean;
  /** Config file version the daemon wants: 2 (1.x), 3 (2.x). */
  configVersion: 2 | 3;
  /**
   * A task created from a checkpoint but not started yet (CREATED, pid 0) is still
   * there after the daemon is SIGKILLed and started again (1.6.20, 2.4.2); 1.7.35
   * drops it on restart, leaving the container record and its snapshot.
   */
  createdTaskSurvivesRestart: boolean;
}

export function behaviourOf(containerd: Version): VersionBehaviour {
  return {
    recheckpointBug: !atLeast(containerd, 2, 4),
    ctrRunWritesRuntimeOptions: !atLeast(containerd, 1, 7),
    nativeTcpServes: containerd.major < 2,
    configVersion: containerd.major >= 2 ? 3 : 2,
    createdTaskSurvivesRestart: !(containerd.major === 1 && containerd.minor === 7),
  };
}

/** The containerd selected for this test run (the one on PATH). */
let selected: Version | undefined;
export function selectedContainerd(): Version {
  return (selected ??= binaryVersion(path.join(containerdBinDir(), "containerd")));
}

/** One line naming the versions under test, for test output. */
export function describeVersions(): string {
  const runc = runcOnPath();
  return `containerd ${short(selectedContainerd())} (${containerdBinDir()}), runc ${short(runc.version)} (${runc.path})`;
}
