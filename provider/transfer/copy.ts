import { randomBytes } from "node:crypto";
import type { ContainerdClient } from "../containerd/client";
import { readBlob, readChunks, writeBlob } from "../containerd/content";
import { isContainerdError, unlessNotFound } from "../containerd/errors";
import type { Descriptor } from "../containerd/types";
import { chainId } from "../checkpoint/chain-id";
import { decodeCheckpointIndex, type OciDescriptor, type Platform } from "../checkpoint/decode";
import { MediaType, hostPlatform } from "../checkpoint/media-types";
import { closeLease, openLease } from "../containerd/leases";
import { RestoreError, daemonError } from "../errors";
import { MAX_INDEX_BYTES, readBaseImage } from "../restore/plan";
import { checkTargetRefs, createImageIfAbsent, putCheckpointRef } from "./target-refs";

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
  onBlob?(blob: { digest: string; size: number; bytesWritten: number; resumedAt: number; existed: boolean }): void;
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
}

/** One blob to bring over, with the GC labels it must carry on the target. */
interface BlobCopy {
  descriptor: Descriptor;
  labels?: Record<string, string>;
}

const gcLabels = (prefix: string, children: Descriptor[]) =>
  Object.fromEntries(children.map((c, i) => [`containerd.io/gc.ref.content.${prefix}${i}`, c.digest]));

/** The base image's blobs (list → manifest → config, layers), children first, with their GC labels. */
async function baseImageBlobs(source: ContainerdClient, name: string, target: Descriptor, platform: Platform) {
  const base = await readBaseImage(source, name, target as OciDescriptor, platform);
  const blobs: BlobCopy[] = [
    ...base.layers.map((layer) => ({ descriptor: layer as Descriptor })),
    { descriptor: base.config as Descriptor },
    { descriptor: base.manifest as Descriptor, labels: { "containerd.io/gc.ref.content.config": base.config.digest, ...gcLabels("l.", base.layers as Descriptor[]) } },
    ...(base.list ? [{ descriptor: base.list as Descriptor, labels: gcLabels("m.", [base.manifest as Descriptor]) }] : []),
  ];
  return { blobs, layers: base.layers as Descriptor[], configDigest: base.config.digest, diffIds: base.diffIds };
}

/** Brings one blob to the target: streamed (resuming an interrupted ingest), or labelled if present. */
async function copyBlob(source: ContainerdClient, target: ContainerdClient, blob: BlobCopy) {
  const { digest, size } = blob.descriptor;
  const present = await unlessNotFound(target.call("content.Info", { digest }));
  if (present) {
    await target.call("leases.AddResource", { id: target.lease!, resource: { id: digest, type: "content" } });
    if (blob.labels) await setLabels(target, digest, blob.labels);
    return { digest, size, bytesWritten: 0, resumedAt: 0, existed: true };
  }
  const written = await writeBlob(target, `copy-${digest}`, { digest, size, labels: blob.labels }, (offset) => readChunks(source, digest, size, offset));
  return { digest, size, ...written };
}

async function setLabels(client: ContainerdClient, digest: string, labels: Record<string, string>): Promise<void> {
  await client.call("content.Update", { info: { digest, labels }, updateMask: { paths: Object.keys(labels).map((k) => `labels.${k}`) } });
}

/**
 * Unpacks the base image into `snapshotter` on the target unless its chain id
 * snapshot exists: each missing layer is prepared on its parent, applied and
 * committed under its chain id; the config blob is labelled so GC keeps them.
 */
async function unpackBaseImage(client: ContainerdClient, snapshotter: string, layers: Descriptor[], diffIds: string[], configDigest: string): Promise<boolean> {
  let parent = "";
  let unpacked = false;
  for (let i = 0; i < layers.length; i++) {
    const chain = chainId(diffIds.slice(0, i + 1));
    const exists = await unlessNotFound(client.call("snapshots.Stat", { snapshotter, key: chain }));
    if (!exists) {
      const key = `extract-${randomBytes(4).toString("hex")}-${chain}`;
      const { mounts } = await client.call("snapshots.Prepare", { snapshotter, key, parent });
      try {
        const { applied } = await client.call("diff.Apply", { diff: layers[i], mounts });
        if (applied.digest !== diffIds[i]) {
          throw new RestoreError("base-image-invalid", `layer ${layers[i].digest} unpacked to ${applied.digest}, but the image config says ${diffIds[i]}`);
        }
        await client.call("snapshots.Commit", { snapshotter, name: chain, key });
        unpacked = true;
      } catch (err) {
        await unlessNotFound(client.call("snapshots.Remove", { snapshotter, key }));
        // A parallel copy of the same base image committed this layer first: same content, use it.
        if (!isContainerdError(err, "already-exists")) throw err;
      }
    }
    parent = chain;
  }
  if (parent) await setLabels(client, configDigest, { [`containerd.io/gc.ref.snapshot.${snapshotter}`]: parent });
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
export async function copyCheckpoint(source: ContainerdClient, target: ContainerdClient, ref: string, options: CopyOptions = {}): Promise<CopyResult> {
  const targetRef = options.targetRef ?? ref;
  try {
    const { image } = await source.call("images.Get", { name: ref }).catch((err: unknown) => {
      if (isContainerdError(err, "not-found")) throw new RestoreError("checkpoint-not-found", `checkpoint image ${ref} not found on the source daemon (namespace ${source.namespace})`, { cause: err });
      throw err;
    });
    if (image.target.mediaType !== MediaType.ociIndex) throw new RestoreError("not-a-checkpoint", `${ref} is not a checkpoint: its target is ${image.target.mediaType}`);
    const indexBytes = await readBlob(source, image.target.digest, MAX_INDEX_BYTES, { size: image.target.size, what: "checkpoint index" });
    const index = decodeCheckpointIndex(indexBytes, `${ref}@${image.target.digest}`);
    const entries = (JSON.parse(indexBytes.toString("utf8")) as { manifests: Descriptor[] }).manifests;
    const platform = (index.criuImage as OciDescriptor | undefined)?.platform ?? hostPlatform();

    const baseTarget =
      index.format === "modern" ? (await source.call("images.Get", { name: index.imageName })).image.target : (index.baseImage as Descriptor);
    const base = await baseImageBlobs(source, index.imageName, baseTarget, platform);
    // Before anything is written: the names this copy will set on the target (never retargets one).
    const refs = { targetRef, checkpoint: image.target, baseImage: { name: index.imageName, target: baseTarget, resolvedByName: index.format === "modern" }, overwrite: options.overwrite, owner: options.owner };
    const { createBaseImage } = await checkTargetRefs(target, refs);
    const baseDigests = new Set(base.blobs.map((b) => b.descriptor.digest));
    const blobs: BlobCopy[] = [
      ...base.blobs,
      ...entries.filter((e) => !baseDigests.has(e.digest)).map((descriptor) => ({ descriptor })),
      { descriptor: image.target, labels: gcLabels("", entries) },
    ];

    // One lease per copy, so parallel copies never release each other's. A failed copy leaves
    // its lease (and so its ingests) until it expires: the next try resumes them by ingest ref.
    const leaseId = `containerd-restore.copy.${image.target.digest.slice(7, 23)}.${randomBytes(4).toString("hex")}`;
    await openLease(target, leaseId);
    const leased = target.withLease(leaseId);
    let bytesMoved = 0;
    let blobsCopied = 0;
    for (const blob of blobs) {
      const result = await copyBlob(source, leased, blob);
      bytesMoved += result.bytesWritten;
      if (!result.existed) blobsCopied++;
      options.onBlob?.(result);
    }
    const baseImageCreated = createBaseImage && (await createImageIfAbsent(leased, index.imageName, baseTarget));
    const unpacked = await unpackBaseImage(leased, index.snapshotter, base.layers, base.diffIds, base.configDigest);
    await putCheckpointRef(leased, refs);
    await closeLease(target, leaseId);
    return {
      sourceRef: ref,
      targetRef,
      digest: image.target.digest,
      bytesMoved,
      blobsCopied,
      blobsPresent: blobs.length - blobsCopied,
      baseImage: { name: index.imageName, created: baseImageCreated, unpacked },
    };
  } catch (err) {
    throw daemonError(err);
  }
}
