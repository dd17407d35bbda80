import { isContainerdError, unlessNotFound, type Mount } from "../../containerd";
import { RestoreError } from "../../errors";
import type { RestoreStep } from "./step";

export interface SnapshotToPrepare {
  snapshotter: string;
  /** The container id: the snapshot key. */
  key: string;
  /** The base image's chain id. */
  parent: string;
}

/** Prepares the container's active snapshot (key = container id) on the base image's chain id; returns its mounts. */
export const prepareSnapshot: RestoreStep<SnapshotToPrepare, { mounts: Mount[] }> = {
  name: "prepare-snapshot",
  describe: (plan, options) => ({ snapshotter: plan.snapshotter, key: options.id, parent: plan.snapshotParent }),
  async run(client, { snapshotter, key, parent }) {
    try {
      const { mounts } = await client.call("snapshots.Prepare", { snapshotter, key, parent });
      return { mounts };
    } catch (err) {
      if (!isContainerdError(err, "already-exists")) throw err;
      throw new RestoreError("id-in-use", `id ${key} is in use: snapshot ${key} already exists in ${snapshotter}`, { subject: "id", cause: err });
    }
  },
  async undo(client, _output, { snapshotter, key }) {
    await unlessNotFound(client.call("snapshots.Remove", { snapshotter, key }));
  },
};
