import type { Descriptor, Mount } from "../../containerd";
import type { RestoreStep, StepDetails } from "./step";

/** Unpacks the checkpoint's rw layer (the container's filesystem changes) into the prepared snapshot's mounts. */
export const applyRwLayer: RestoreStep<{ layer: Descriptor; mounts: Mount[] }, void> = {
  name: "apply-rw-layer",
  describe: (plan): StepDetails => (plan.rwLayer ? { layer: plan.rwLayer.digest, mediaType: plan.rwLayer.mediaType, bytes: plan.rwLayer.size } : {}),
  async run(client, { layer, mounts }) {
    await client.call("diff.Apply", { diff: layer, mounts });
  },
  // Undone with the snapshot it was applied to.
};
