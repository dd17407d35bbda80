import type { RestoreStep } from "./step";

/** Unpacks the checkpoint's rw layer (the container's filesystem changes) into the snapshot. */
export const applyRwLayer: RestoreStep = {
  name: "apply-rw-layer",
  describe: (plan) => ({ layer: plan.rwLayer!.digest, mediaType: plan.rwLayer!.mediaType, bytes: plan.rwLayer!.size }),
  async run(ctx) {
    await ctx.client.withLease(ctx.lease).call("diff.Apply", { diff: ctx.plan.rwLayer!, mounts: ctx.mounts! });
  },
  // Undone with the snapshot it was applied to.
};
