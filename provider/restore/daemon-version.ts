import type { ContainerdClient } from "../containerd";
import { RestoreError } from "../errors";

/** The oldest containerd this provider restores on: 1.6 (checkpoint format and APIs as tested). */
export const MIN_DAEMON_VERSION = { major: 1, minor: 6 } as const;

/** A daemon's version as its Version service reports it. */
export interface DaemonVersion {
  /** Verbatim, e.g. `v2.4.2`, `1.6.20~ds1`. */
  version: string;
  revision: string;
  major: number;
  minor: number;
  patch: number;
}

/**
 * Parses the Version service's `version` (`v2.4.2`, `1.7.35`, `1.6.20~ds1`,
 * `2.4.2+unknown`). Undefined when it holds no `X.Y[.Z]`.
 */
export function parseDaemonVersion(version: string, revision = ""): DaemonVersion | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!m) return undefined;
  return { version, revision, major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

/** Refuses a daemon older than {@link MIN_DAEMON_VERSION}, or one whose version cannot be read. */
export function assertSupportedVersion(version: string, revision = "", address = "the daemon"): DaemonVersion {
  const parsed = parseDaemonVersion(version, revision);
  const min = `${MIN_DAEMON_VERSION.major}.${MIN_DAEMON_VERSION.minor}`;
  if (!parsed) {
    throw new RestoreError("unsupported-daemon-version", `containerd at ${address} reports version "${version}", which is not X.Y.Z: cannot tell whether it is ${min} or newer`, {
      subject: "daemonVersion",
    });
  }
  if (parsed.major < MIN_DAEMON_VERSION.major || (parsed.major === MIN_DAEMON_VERSION.major && parsed.minor < MIN_DAEMON_VERSION.minor)) {
    throw new RestoreError(
      "unsupported-daemon-version",
      `containerd at ${address} is version ${version}; this provider needs containerd ${min} or newer (tested: 1.6, 1.7, 2.4)`,
      { subject: "daemonVersion" },
    );
  }
  return parsed;
}

/**
 * How long a client reuses what a daemon changes only by restarting (its
 * version, its loaded plugins). A restore plans on every create, and this saves
 * round trips each time; an upgrade under a long-lived provider is seen within
 * this window.
 */
export const DAEMON_FACTS_TTL_MS = 30_000;

const known = new WeakMap<ContainerdClient, { at: number; version: Promise<DaemonVersion> }>();

/**
 * Asks the daemon for its version and refuses unsupported ones (RestoreError
 * `unsupported-daemon-version`). A supported answer is reused for
 * {@link DAEMON_FACTS_TTL_MS} on the same client; a refusal or failure never is.
 */
export async function daemonVersion(client: ContainerdClient): Promise<DaemonVersion> {
  const cached = known.get(client);
  if (cached && performance.now() - cached.at < DAEMON_FACTS_TTL_MS) return cached.version;
  const version = client.call("version.Version", {}).then(({ version, revision }) => assertSupportedVersion(version, revision, client.address));
  known.set(client, { at: performance.now(), version });
  version.catch(() => {
    if (known.get(client)?.version === version) known.delete(client);
  });
  return version;
}
