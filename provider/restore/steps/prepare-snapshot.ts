import { isContainerdError, unlessNotFound } from "../../containerd/errors";
import { RestoreError } from "../../errors";
import type { RestoreStep } from "./step";

/** Prepares the container's active snapshot (key = container id) on the base image's chain id. */
export const prepareSnapshot: RestoreStep = {
  name: "prepare-snapshot",
  describe: (plan, options) => ({ snapshotter: plan.snapshotter, key: options.id, parent: plan.snapshotParent }),
  async run(ctx) {
    const { snapshotter, snapshotParent } = ctx.plan;
    try {
      const { mounts } = await ctx.client
        .withLease(ctx.lease)
        .call("snapshots.Prepare", { snapshotter, key: ctx.options.id, parent: snapshotParent });
      ctx.mounts = mounts;
    } catch (err) {
      if (!isContainerdError(err, "already-exists")) throw err;
      throw new RestoreError("id-in-use", `id ${ctx.options.id} is in use: snapshot ${ctx.options.id} already exists in ${snapshotter}`, {
        subject: "id",
        cause: err,
      });
    }
  },
  async undo(ctx) {
    await unlessNotFound(ctx.client.call("snapshots.Remove", { snapshotter: ctx.plan.snapshotter, key: ctx.options.id }));
  },
};
