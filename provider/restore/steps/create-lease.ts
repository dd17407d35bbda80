import { randomBytes } from "node:crypto";
import { unlessNotFound } from "../../containerd/errors";
import type { RestoreContext, RestoreStep } from "./step";

/** Lease lifetime: a crashed restore's snapshot is collected by GC after this. */
const LEASE_TTL_MS = 60 * 60 * 1000;

const LEASE_PREFIX = "containerd-restore.";

/** True when `leaseId` is the lease of a restore of container `id` (`containerd-restore.<id>.<8 hex>`). */
export function isRestoreLeaseOf(leaseId: string, id: string): boolean {
  const prefix = `${LEASE_PREFIX}${id}.`;
  return leaseId.startsWith(prefix) && /^[0-9a-f]{8}$/.test(leaseId.slice(prefix.length));
}

async function deleteLease(ctx: RestoreContext): Promise<void> {
  if (!ctx.lease) return;
  await unlessNotFound(ctx.client.call("leases.Delete", { id: ctx.lease }));
  ctx.lease = undefined;
}

/** Opens a lease so GC cannot take the snapshot before the container references it. */
export const createLease: RestoreStep = {
  name: "create-lease",
  async run(ctx) {
    const id = `${LEASE_PREFIX}${ctx.options.id}.${randomBytes(4).toString("hex")}`;
    const expire = new Date(Date.now() + LEASE_TTL_MS).toISOString().replace(/\.\d+Z$/, "Z");
    await ctx.client.call("leases.Create", { id, labels: { "containerd.io/gc.expire": expire } });
    ctx.lease = id;
  },
  undo: deleteLease,
};

/** Drops the lease once the container record holds the snapshot. */
export const releaseLease: RestoreStep = {
  name: "release-lease",
  run: deleteLease,
};
