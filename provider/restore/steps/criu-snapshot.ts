import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { unlessNotFound, type ContainerdClient, type Descriptor, type Mount } from "../../containerd";
import type { RestoreStep, StepDetails } from "./step";

/**
 * The CRIU image of a live restore on a local daemon, unpacked into a snapshot
 * the restore owns and handed to Tasks.Create as runc's `criu_image_path`: given
 * only the descriptor, containerd unpacks criu.tar into a temp dir it never
 * removes (1.6 to 2.x), one process-memory-sized leak per restore. A snapshot
 * made under the restore's lease is removed with it, and GC takes it when a
 * crashed restore's lease goes.
 */

export const CRIU_SNAPSHOT_PREFIX = "containerd-restore.criu.";

/**
 * What diff.Apply is told the CRIU blob is: the walking differ picks the
 * decompressor from the media type and has none for the CRIU type, while the
 * blob is a plain tar. It unpacks it with archive.Apply, the applier Tasks.Create
 * itself uses on criu.tar.
 */
export const CRIU_AS_LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar";

/** A new snapshot key for the CRIU image of a restore of container `id`. */
export function criuSnapshotKey(id: string): string {
  return `${CRIU_SNAPSHOT_PREFIX}${id}.${randomBytes(4).toString("hex")}`;
}

/**
 * The host directory a parentless snapshot's mounts stand for, or undefined: only
 * exactly one `bind` mount (overlayfs, native) names one. The source is the
 * daemon's answer, so it must be an absolute normalized path without `..`; it is
 * never opened here, only handed back to the same daemon.
 */
export function hostDirOf(mounts: readonly Mount[]): string | undefined {
  if (mounts.length !== 1) return undefined;
  const [{ type, source }] = mounts;
  if (type !== "bind" || !path.posix.isAbsolute(source) || source.length < 2) return undefined;
  if (path.posix.normalize(source) !== source || source.endsWith("/")) return undefined;
  // Controls (a NUL ends a C string) have no place in a directory the shim passes on.
  if (source.split("/").includes("..") || /[\u0000-\u001f\u007f]/.test(source)) return undefined;
  return source;
}

export interface CriuSnapshot {
  snapshotter: string;
  key: string;
}

/** Removes the CRIU snapshot (already gone is fine): after start-task, when the task no longer reads it, or as an undo. */
export async function removeCriuSnapshot(client: ContainerdClient, { snapshotter, key }: CriuSnapshot): Promise<void> {
  await unlessNotFound(client.call("snapshots.Remove", { snapshotter, key }));
}

/**
 * Prepares the (parentless) CRIU snapshot; returns its mounts and, when they are
 * a host directory, that directory. When they are not, the snapshot is removed
 * again and `dir` is undefined: the restore gives Tasks.Create the descriptor.
 */
export const prepareCriuSnapshot: RestoreStep<CriuSnapshot, { mounts: Mount[]; dir?: string }> = {
  name: "prepare-criu-snapshot",
  describe: (plan, options) => ({ snapshotter: plan.snapshotter, key: `${CRIU_SNAPSHOT_PREFIX}${options.id}.<random>` }),
  async run(client, snapshot) {
    const { mounts } = await client.call("snapshots.Prepare", { snapshotter: snapshot.snapshotter, key: snapshot.key, parent: "" });
    const dir = hostDirOf(mounts);
    if (dir === undefined) await removeCriuSnapshot(client, snapshot);
    return { mounts, dir };
  },
  async undo(client, { dir }, snapshot) {
    if (dir !== undefined) await removeCriuSnapshot(client, snapshot);
  },
};

/** Unpacks the CRIU image (criu.tar) into the CRIU snapshot's mounts. */
export const unpackCriuImage: RestoreStep<{ image: Descriptor; mounts: Mount[] }, void> = {
  name: "unpack-criu-image",
  describe: (plan): StepDetails => (plan.criuImage ? { criuImage: plan.criuImage.digest, mediaType: CRIU_AS_LAYER_MEDIA_TYPE, bytes: plan.criuImage.size } : {}),
  async run(client, { image, mounts }) {
    await client.call("diff.Apply", { diff: { mediaType: CRIU_AS_LAYER_MEDIA_TYPE, digest: image.digest, size: image.size }, mounts });
  },
  // Undone with the snapshot it was unpacked into.
};
