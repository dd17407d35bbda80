import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { ContainerdClient, Lease, Timestamp } from "../containerd";

/**
 * Restore leases: `containerd-restore.restore.<container id>.<8 hex>`, one per
 * restore attempt, labelled with the attempt's holder (this host's boot id and
 * this process's pid). Teardown of a container id deletes the leases a crashed
 * or failed attempt left, and never one a live attempt (here or in another
 * process) still needs to protect its snapshot:
 *
 * - held by this process: live while the attempt runs (from create-lease until
 *   the lease is released or undone), whatever the daemon says;
 * - held by another process on this host: live while that process exists;
 * - held elsewhere, or by an older version (no holder label): live for
 *   {@link LIVE_WINDOW_MS} after its creation, the longest a restore holds its
 *   lease (prepare 30 s + apply rw 300 s + create container 30 s, rounded up).
 *
 * What teardown leaves expires by itself (`containerd.io/gc.expire`, one hour).
 */
export const LEASE_PREFIX = "containerd-restore.restore.";
export const HOLDER_LABEL = "containerd-restore/holder";
export const LIVE_WINDOW_MS = 10 * 60 * 1000;

/** A new lease id for a restore of container `id`. */
export function restoreLeaseId(id: string): string {
  return `${LEASE_PREFIX}${id}.${randomBytes(4).toString("hex")}`;
}

/** True when `leaseId` is the lease of a restore of container `id`. */
export function isRestoreLeaseOf(leaseId: string, id: string): boolean {
  const prefix = `${LEASE_PREFIX}${id}.`;
  return leaseId.startsWith(prefix) && /^[0-9a-f]{8}$/.test(leaseId.slice(prefix.length));
}

/**
 * containerd's filter for the restore leases of `id` (Leases.List filters on the
 * daemon: the answer holds only these, not every lease of the namespace). A
 * `/…/` regex value; its quoting allows no `\.`, so dots are `[.]`. Container
 * ids are `[A-Za-z0-9._-]` only (checked before any restore), nothing else to escape.
 */
export function restoreLeaseFilter(id: string): string {
  const dots = (s: string) => s.replace(/\./g, "[.]");
  return `id~=/^${dots(LEASE_PREFIX)}${dots(id)}[.][0-9a-f]{8}$/`;
}

let holderCache: string | undefined;

/** This process as a lease holder: `<boot id or hostname>/<pid>`. */
export function holderId(): string {
  return (holderCache ??= `${bootId()}/${process.pid}`);
}

/** This host's boot id (changes with every boot, unlike a hostname that many hosts share). */
function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || hostname();
  } catch {
    return hostname();
  }
}

/** Restore leases this process holds for attempts still running. */
const liveAttempts = new Set<string>();

/** The labels a restore attempt's lease carries; marks it live in this process. */
export function beginAttempt(leaseId: string): Record<string, string> {
  liveAttempts.add(leaseId);
  return { [HOLDER_LABEL]: holderId() };
}

/** The attempt is over (lease released, undone, or given up on): teardown may delete its lease. */
export function endAttempt(leaseId: string): void {
  liveAttempts.delete(leaseId);
}

function createdMs(t: Timestamp | null | undefined): number | undefined {
  return t && (t.seconds || t.nanos) ? t.seconds * 1000 + Math.floor(t.nanos / 1e6) : undefined;
}

/** Whether `lease` may still protect a live restore attempt (see the module comment). */
export function isLiveAttempt(lease: Lease, now = Date.now()): boolean {
  const holder = lease.labels?.[HOLDER_LABEL];
  const match = holder ? /^(.+)\/(\d+)$/.exec(holder) : null;
  const pid = match ? Number(match[2]) : 0;
  if (match && match[1] === bootId() && pid > 0) {
    if (pid === process.pid) return liveAttempts.has(lease.id);
    return processExists(pid);
  }
  const created = createdMs(lease.createdAt);
  return created === undefined || now - created < LIVE_WINDOW_MS;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user's.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The restore leases of container `id` on the daemon, split into abandoned (to delete) and live (to leave). */
export async function restoreLeasesOf(client: ContainerdClient, id: string): Promise<{ abandoned: string[]; live: string[] }> {
  const { leases } = await client.call("leases.List", { filters: [restoreLeaseFilter(id)] });
  const ours = leases.filter((lease) => isRestoreLeaseOf(lease.id, id));
  return {
    abandoned: ours.filter((lease) => !isLiveAttempt(lease)).map((lease) => lease.id),
    live: ours.filter((lease) => isLiveAttempt(lease)).map((lease) => lease.id),
  };
}
