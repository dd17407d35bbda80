import { randomBytes } from "node:crypto";
import { STREAM_TUNING, isContainerdError, readAhead, readChunks, unlessNotFound, writeBlob, type ContainerdClient, type Descriptor, type Mount } from "../containerd";
import { chainId, checkpointPlatform, readBaseImage, readCheckpointImage, type BaseImage, type CheckpointImage } from "../checkpoint";
import { RestoreError, withDaemonErrors, type CleanupError } from "../errors";
import { runTransaction, type Step, type StepTiming, type Transaction } from "../transaction";
import { checkTargetRefs, createImageIfAbsent, putCheckpointRef, type TargetRefs } from "./target-refs";

export interface CopyOptions {
  /** Image name on the target (default: the source ref). */
  targetRef?: string;
  /** Move `targetRef` to the checkpoint when it exists on the target with another digest (default: refused, `target-ref-exists`). */
  overwrite?: boolean;
  /**
   * Who the copy is for, recorded on the target ref (label `containerd-restore/owner`): a target ref
   * that a copy for the same owner wrote may be moved without `overwrite` (a replacement of that copy).
   */
  owner?: string;
  /** Called after each blob that was copied or found present. */
  onBlob?(blob: BlobCopied): void;
}

/** One blob brought to the target. */
export interface BlobCopied {
  digest: string;
  size: number;
  /** Bytes sent in this call (0 when the target had the blob). */
  bytesWritten: number;
  /** Where this call started: > 0 when it resumed an interrupted ingest. */
  resumedAt: number;
  existed: boolean;
}

export interface CopyResult {
  sourceRef: string;
  targetRef: string;
  /** The checkpoint index digest, identical on both daemons. */
  digest: string;
  /** Bytes streamed to the target in this call. */
  bytesMoved: number;
  blobsCopied: number;
  blobsPresent: number;
  baseImage: { name: string; created: boolean; unpacked: boolean };
  steps: StepTiming[];
  /** Cleanup that failed after a good copy (the lease could not be released; it expires within an hour). */
  cleanupErrors: CleanupError[];
}

/** One blob to bring over, with the GC labels it must carry on the target. */
interface BlobCopy {
  descriptor: Descriptor;
  labels?: Record<string, string>;
}

const gcLabels = (prefix: string, children: readonly Descriptor[]) =>
  Object.fromEntries(children.map((c, i) => [`containerd.io/gc.ref.content.${prefix}${i}`, c.digest]));

/**
 * Every blob of the checkpoint, children before the blobs that reference them (so
 * GC labels never name a missing blob): the base image's layers, config, manifest
 * and list, then the checkpoint's own entries, then its index.
 */
function blobsToCopy(checkpoint: CheckpointImage, base: BaseImage): BlobCopy[] {
  const baseBlobs: BlobCopy[] = [
    ...base.layers.map((layer) => ({ descriptor: layer })),
    { descriptor: base.config },
    { descriptor: base.manifest, labels: { "containerd.io/gc.ref.content.config": base.config.digest, ...gcLabels("l.", base.layers) } },
    ...(base.list ? [{ descriptor: base.list, labels: gcLabels("m.", [base.manifest]) }] : []),
  ];
  const baseDigests = new Set(baseBlobs.map((b) => b.descriptor.digest));
  const { entries } = checkpoint.index;
  return [
    ...baseBlobs,
    ...entries.filter((e) => !baseDigests.has(e.digest)).map((descriptor) => ({ descriptor })),
    { descriptor: checkpoint.target, labels: gcLabels("", entries) },
  ];
}

async function setLabels(client: ContainerdClient, digest: string, labels: Record<string, string>): Promise<void> {
  await client.call("content.Update", { info: { digest, labels }, updateMask: { paths: Object.keys(labels).map((k) => `labels.${k}`) } });
}

/**
 * Brings one blob to the target: streamed (resuming an interrupted ingest), or
 * labelled and added to the lease if present. No undo: what was written stays
 * under the copy's lease, for the next try to find.
 */
const copyBlob: Step<{ source: ContainerdClient; blob: BlobCopy; leaseId: string }, BlobCopied> = {
  name: "copy-blob",
  async run(target, { source, blob, leaseId }) {
    const { digest, size } = blob.descriptor;
    const present = await unlessNotFound(target.call("content.Info", { digest }));
    if (present) {
      await target.call("leases.AddResource", { id: leaseId, resource: { id: digest, type: "content" } });
      if (blob.labels) await setLabels(target, digest, blob.labels);
      return { digest, size, bytesWritten: 0, resumedAt: 0, existed: true };
    }
    // Pipelined: the reader runs ahead of the writer into a bounded queue; the writer does not wait for each answer.
    // The chunks are views of what the source daemon sent, hashed as they pass and written on as they are.
    const written = await writeBlob(target, `copy-${digest}`, { digest, size, labels: blob.labels }, (offset) =>
      readAhead(readChunks(source, digest, size, offset), STREAM_TUNING.readAheadBytes),
    );
    return { digest, size, ...written };
  },
};

/** The base image's record on the target, only when the name is absent there (never re-pointed). Kept on failure: others may use it. */
const createBaseImage: Step<{ name: string; target: Descriptor }, { created: boolean }> = {
  name: "create-base-image",
  async run(client, { name, target }) {
    return { created: await createImageIfAbsent(client, name, target) };
  },
};

/** An active snapshot to unpack one layer into, on its parent's chain id. */
const prepareLayer: Step<{ snapshotter: string; parent: string; chain: string }, { key: string; mounts: Mount[] }> = {
  name: "prepare-layer",
  async run(client, { snapshotter, parent, chain }) {
    const key = `extract-${randomBytes(4).toString("hex")}-${chain}`;
    const { mounts } = await client.call("snapshots.Prepare", { snapshotter, key, parent });
    return { key, mounts };
  },
  // After a commit the key is gone (NotFound): only an unfinished layer is removed.
  async undo(client, { key }, { snapshotter }) {
    await unlessNotFound(client.call("snapshots.Remove", { snapshotter, key }));
  },
};

/** Applies the layer and checks that it unpacked to the diff id the image config names. */
const applyLayer: Step<{ layer: Descriptor; diffId: string; mounts: Mount[] }, void> = {
  name: "apply-layer",
  async run(client, { layer, diffId, mounts }) {
    const { applied } = await client.call("diff.Apply", { diff: layer, mounts });
    if (applied.digest !== diffId) {
      throw new RestoreError("base-image-invalid", `layer ${layer.digest} unpacked to ${applied.digest}, but the image config says ${diffId}`);
    }
  },
};

/** Commits the layer under its chain id; a parallel copy that committed it first is as good (same content). */
const commitLayer: Step<{ snapshotter: string; key: string; chain: string }, { committed: boolean }> = {
  name: "commit-layer",
  async run(client, { snapshotter, key, chain }) {
    try {
      await client.call("snapshots.Commit", { snapshotter, name: chain, key });
      return { committed: true };
    } catch (err) {
      if (!isContainerdError(err, "already-exists")) throw err;
      await unlessNotFound(client.call("snapshots.Remove", { snapshotter, key }));
      return { committed: false };
    }
  },
};

/** Labels the image config with the top snapshot, so GC keeps the unpacked layers. */
const labelBaseImage: Step<{ configDigest: string; snapshotter: string; chain: string }, void> = {
  name: "label-base-image",
  async run(client, { configDigest, snapshotter, chain }) {
    await setLabels(client, configDigest, { [`containerd.io/gc.ref.snapshot.${snapshotter}`]: chain });
  },
};

/** The checkpoint's image record on the target, last: a copy is usable once it is named. Never moves another's ref. */
const nameCheckpoint: Step<Pick<TargetRefs, "targetRef" | "checkpoint" | "overwrite" | "owner">, void> = {
  name: "create-image",
  async run(client, refs) {
    await putCheckpointRef(client, refs);
  },
};

/**
 * Unpacks the base image into `snapshotter` unless its chain id snapshots exist:
 * each missing layer is prepared on its parent, applied and committed under its
 * chain id. True when a layer was unpacked.
 */
async function unpackBaseImage(tx: Transaction, snapshotter: string, base: BaseImage): Promise<boolean> {
  let parent = "";
  let unpacked = false;
  for (const [i, layer] of base.layers.entries()) {
    const chain = chainId(base.diffIds.slice(0, i + 1));
    if (!(await unlessNotFound(tx.client.call("snapshots.Stat", { snapshotter, key: chain })))) {
      const { key, mounts } = await tx.run(prepareLayer, { snapshotter, parent, chain });
      await tx.run(applyLayer, { layer, diffId: base.diffIds[i], mounts });
      const { committed } = await tx.run(commitLayer, { snapshotter, key, chain });
      unpacked ||= committed;
    }
    parent = chain;
  }
  if (parent) await tx.run(labelBaseImage, { configDigest: base.config.digest, snapshotter, chain: parent });
  return unpacked;
}

/**
 * Copies checkpoint `ref` from `source` to `target`: the index and every blob it
 * references, plus the base image (manifest, config, layers) and its image record
 * when the target lacks them, then unpacks the base image into the checkpoint's
 * snapshotter if its chain id snapshot is missing. Blobs stream through
 * (Content.Read → Content.Write, the daemon checks each digest); an interrupted
 * copy resumes from the target's ingest offsets when run again (its lease is
 * kept for an hour for that).
 */
export const copyCheckpoint = withDaemonErrors(async function copyCheckpoint(
  source: ContainerdClient,
  target: ContainerdClient,
  ref: string,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const targetRef = options.targetRef ?? ref;
  const checkpoint = await readCheckpointImage(source, ref);
  const { index } = checkpoint;
  const base = await readBaseImage(source, index, checkpointPlatform(index));
  const blobs = blobsToCopy(checkpoint, base);
  // Before anything is written: the names this copy will set on the target (it never retargets one).
  const refs: TargetRefs = {
    targetRef,
    checkpoint: checkpoint.target,
    baseImage: { name: index.imageName, target: base.target, resolvedByName: index.format === "modern" },
    overwrite: options.overwrite,
    owner: options.owner,
  };
  const { createBaseImage: baseImageAbsent } = await checkTargetRefs(target, refs);
  // One lease per copy, so parallel copies never release each other's. A failed copy leaves
  // its lease (and so its ingests) until it expires: the next try resumes them by ingest ref.
  const leaseId = `containerd-restore.copy.${checkpoint.target.digest.slice(7, 23)}.${randomBytes(4).toString("hex")}`;
  const outcome = await runTransaction(target, (tx) =>
    tx.withLease({ id: leaseId, keepOnFailure: true }, async (leased) => {
      let bytesMoved = 0;
      let blobsCopied = 0;
      for (const blob of blobs) {
        const copied = await leased.run(copyBlob, { source, blob, leaseId });
        bytesMoved += copied.bytesWritten;
        if (!copied.existed) blobsCopied++;
        options.onBlob?.(copied);
      }
      const { created } = baseImageAbsent ? await leased.run(createBaseImage, { name: index.imageName, target: base.target }) : { created: false };
      const unpacked = await unpackBaseImage(leased, index.snapshotter, base);
      await leased.run(nameCheckpoint, refs);
      return { bytesMoved, blobsCopied, baseImage: { name: index.imageName, created, unpacked } };
    }),
  );
  const { bytesMoved, blobsCopied, baseImage } = outcome.value;
  return {
    sourceRef: ref,
    targetRef,
    digest: checkpoint.target.digest,
    bytesMoved,
    blobsCopied,
    blobsPresent: blobs.length - blobsCopied,
    baseImage,
    steps: outcome.steps,
    cleanupErrors: outcome.cleanupErrors,
  };
});
