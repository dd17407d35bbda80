import { randomBytes } from "node:crypto";
import { closeLease, openLease } from "../../containerd/leases";
import type { RestoreContext, RestoreStep } from "./step";

/** Restore leases are `containerd-restore.restore.<container id>.<8 hex>`: teardown finds a crashed restore's. */
const LEASE_PREFIX = "containerd-restore.restore.";

/** True when `leaseId` is the lease of a restore of container `id`. */
export function isRestoreLeaseOf(leaseId: string, id: string): boolean {
  const prefix = `${LEASE_PREFIX}${id}.`;
  return leaseId.startsWith(prefix) && /^[0-9a-f]{8}$/.test(leaseId.slice(prefix.length));
}

async function deleteLease(ctx: RestoreContext): Promise<void> {
  if (!ctx.lease) return;
  await closeLease(ctx.client, ctx.lease);
  ctx.lease = undefined;
}

/** Opens a lease so GC cannot take the snapshot before the container references it. */
export const createLease: RestoreStep = {
  name: "create-lease",
  async run(ctx) {
    const id = `${LEASE_PREFIX}${ctx.options.id}.${randomBytes(4).toString("hex")}`;
    await openLease(ctx.client, id);
    ctx.lease = id;
  },
  undo: deleteLease,
};

/** Drops the lease once the container record holds the snapshot. */
export const releaseLease: RestoreStep = {
  name: "release-lease",
  run: deleteLease,
};
