import { randomBytes } from "node:crypto";
import { closeLease, openLease } from "../../containerd/leases";
import { LEASE_PREFIX, beginAttempt, endAttempt } from "../restore-leases";
import type { RestoreContext, RestoreStep } from "./step";

export { isRestoreLeaseOf } from "../restore-leases";

async function deleteLease(ctx: RestoreContext): Promise<void> {
  if (!ctx.lease) return;
  // This attempt no longer needs it, even if the delete fails: a later teardown may take it.
  endAttempt(ctx.lease);
  await closeLease(ctx.client, ctx.lease);
  ctx.lease = undefined;
}

/** Opens a lease so GC cannot take the snapshot before the container references it. */
export const createLease: RestoreStep = {
  name: "create-lease",
  async run(ctx) {
    const id = `${LEASE_PREFIX}${ctx.options.id}.${randomBytes(4).toString("hex")}`;
    const labels = beginAttempt(id);
    try {
      await openLease(ctx.client, id, { labels });
    } catch (err) {
      endAttempt(id);
      throw err;
    }
    ctx.lease = id;
  },
  undo: deleteLease,
};

/** Drops the lease once the container record holds the snapshot. */
export const releaseLease: RestoreStep = {
  name: "release-lease",
  run: deleteLease,
};
