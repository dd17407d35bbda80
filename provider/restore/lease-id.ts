import { randomBytes } from "node:crypto";

/** Restore leases are `containerd-restore.restore.<container id>.<8 hex>`: teardown finds a crashed restore's. */
const LEASE_PREFIX = "containerd-restore.restore.";

/** A new lease id for a restore of container `id`. */
export function restoreLeaseId(id: string): string {
  return `${LEASE_PREFIX}${id}.${randomBytes(4).toString("hex")}`;
}

/** True when `leaseId` is the lease of a restore of container `id`. */
export function isRestoreLeaseOf(leaseId: string, id: string): boolean {
  const prefix = `${LEASE_PREFIX}${id}.`;
  return leaseId.startsWith(prefix) && /^[0-9a-f]{8}$/.test(leaseId.slice(prefix.length));
}
