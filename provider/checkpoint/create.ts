import { randomBytes } from "node:crypto";
import type { ContainerdClient } from "../containerd/client";
import { digestOf, writeBlob } from "../containerd/content";
import { isContainerdError, unlessNotFound } from "../containerd/errors";
import { encodeMessage, messageType } from "../containerd/proto";
import type { Any, Descriptor } from "../containerd/types";
import { RestoreError } from "../restore/errors";
import { daemonError } from "../restore/plan";
import { Annotation, MediaType } from "./media-types";

export interface CheckpointOptions {
  /** Image name for the checkpoint, e.g. `checkpoint/app:v1`. */
  ref: string;
  /** Keep the container running after the checkpoint (default true). */
  leaveRunning?: boolean;
  /** Include the rw layer: the container's filesystem changes (default true). */
  includeRw?: boolean;
}

export interface CheckpointResult {
  ref: string;
  /** Digest of the checkpoint index (the image target). */
  digest: string;
  indexSize: number;
  criuImageBytes: number;
  checkpointedAt: string;
  durationMs: number;
}

/** Annotation that makes each checkpointed spec unique (see workaround below). */
export const CHECKPOINT_NONCE_ANNOTATION = "containerd-restore/checkpoint-nonce";

const platform = () => ({ os: "linux", architecture: ({ x64: "amd64", arm64: "arm64" } as Record<string, string>)[process.arch] ?? process.arch });

/** Writes a small blob under the client's lease; already present is fine (the daemon adds it to the lease). */
async function putBlob(client: ContainerdClient, ref: string, data: Buffer, labels?: Record<string, string>): Promise<{ digest: string; size: number }> {
  const digest = digestOf(data);
  await writeBlob(client, ref, { digest, size: data.length, labels }, async function* () {
    yield data;
  });
  return { digest, size: data.length };
}

/** A serialized google.protobuf.Any, the form of every `+proto` checkpoint blob. */
function anyBlob(any: Any): Buffer {
  return encodeMessage(messageType("google.protobuf.Any"), any);
}

/** The runc CheckpointOptions that ctr uses, as an Any. */
function checkpointOptions(leaveRunning: boolean): Any {
  const type = messageType("containerd.runc.v1.CheckpointOptions");
  return { typeUrl: "containerd.runc.v1.CheckpointOptions", value: encodeMessage(type, { exit: !leaveRunning, fileLocks: true }) };
}

/** The rw layer: the diff between the snapshot's parent and the container's active snapshot. */
async function diffRwLayer(client: ContainerdClient, snapshotter: string, key: string): Promise<Descriptor> {
  const { info } = await client.call("snapshots.Stat", { snapshotter, key });
  const viewKey = `${key}-parent-view-${randomBytes(4).toString("hex")}`;
  const { mounts: left } = await client.call("snapshots.View", { snapshotter, key: viewKey, parent: info.parent });
  try {
    const { mounts: right } = await client.call("snapshots.Mounts", { snapshotter, key });
    const { diff } = await client.call("diff.Diff", { left, right, mediaType: MediaType.ociLayerGzip, ref: `checkpoint-rw-${key}` });
    return diff;
  } finally {
    await unlessNotFound(client.call("snapshots.Remove", { snapshotter, key: viewKey }));
  }
}

/**
 * containerd 1.6/1.7 fail Tasks.Checkpoint with AlreadyExists when the spec blob is
 * already stored (a second checkpoint of the same container), and `ctr` then writes an
 * index without CRIU entries. A unique annotation makes every checkpointed spec a new
 * blob; the running task is not affected (its spec was read at start).
 */
async function makeSpecUnique(client: ContainerdClient, id: string): Promise<void> {
  const { container } = await client.call("containers.Get", { id });
  const spec = JSON.parse(Buffer.from(container.spec!.value).toString("utf8")) as { annotations?: Record<string, string> };
  spec.annotations = { ...spec.annotations, [CHECKPOINT_NONCE_ANNOTATION]: randomBytes(8).toString("hex") };
  await client.call("containers.Update", {
    container: { id, spec: { typeUrl: container.spec!.typeUrl, value: Buffer.from(JSON.stringify(spec)) } },
    updateMask: { paths: ["spec"] },
  });
}

/**
 * Checkpoints running container `id` into a checkpoint image in the modern format
 * (what `ctr containers checkpoint --task [--rw] --image` writes): runtime options,
 * the base image's manifest, the rw layer, the CRIU image, the spec and the
 * checkpoint options, under an index with the three checkpoint annotations and GC
 * labels. The task is paused for a consistent rw layer and memory image. Checks the
 * result, so containerd's re-checkpoint bug can never yield an index without a CRIU image.
 */
export async function checkpointContainer(client: ContainerdClient, id: string, options: CheckpointOptions): Promise<CheckpointResult> {
  const started = performance.now();
  const leaveRunning = options.leaveRunning ?? true;
  const leaseId = `containerd-restore.checkpoint.${id}.${randomBytes(4).toString("hex")}`;
  let paused = false;
  let checkpointed = false;
  try {
    const { container } = await client.call("containers.Get", { id });
    if (!container.image) throw new RestoreError("invalid-option", `container ${id} has no image: a checkpoint names its base image`, { subject: "containerId" });
    const { image } = await client.call("images.Get", { name: container.image });
    await client.call("leases.Create", { id: leaseId, labels: { "containerd.io/gc.expire": new Date(Date.now() + 3_600_000).toISOString() } });
    const leased = client.withLease(leaseId);

    await client.call("tasks.Pause", { containerId: id });
    paused = true;
    const entries: Descriptor[] = [];
    const runtimeOptions = container.runtime?.options;
    if (runtimeOptions?.typeUrl) {
      const blob = await putBlob(leased, `${id}-runtime-options`, anyBlob(runtimeOptions));
      entries.push({ mediaType: MediaType.runtimeOptions, ...blob, platform: platform() } as Descriptor);
    }
    entries.push(image.target);
    if ((options.includeRw ?? true) && container.snapshotter && container.snapshotKey) {
      entries.push({ ...(await diffRwLayer(leased, container.snapshotter, container.snapshotKey)), platform: platform() } as Descriptor);
    }

    const checkpointTask = () => leased.call("tasks.Checkpoint", { containerId: id, options: checkpointOptions(leaveRunning) });
    let descriptors: Descriptor[];
    try {
      ({ descriptors } = await checkpointTask());
    } catch (err) {
      if (!isContainerdError(err, "already-exists")) throw err;
      await makeSpecUnique(client, id);
      ({ descriptors } = await checkpointTask());
    }
    checkpointed = true;
    const criu = descriptors.find((d) => d.mediaType === MediaType.criuImage);
    const config = descriptors.find((d) => d.mediaType === MediaType.checkpointConfig);
    if (!criu || !config) {
      throw new RestoreError("incomplete-checkpoint", `Tasks.Checkpoint of ${id} returned ${descriptors.map((d) => d.mediaType).join(", ") || "nothing"}: no CRIU image or spec`);
    }
    entries.push({ ...criu, platform: platform() } as Descriptor, { ...config, platform: platform() } as Descriptor);
    const opts = await putBlob(leased, `${id}-checkpoint-options`, anyBlob(checkpointOptions(leaveRunning)));
    entries.push({ mediaType: MediaType.checkpointOptions, ...opts, platform: platform() } as Descriptor);

    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: entries,
        annotations: {
          [Annotation.refName]: container.image,
          [Annotation.runtime]: container.runtime?.name ?? "",
          [Annotation.snapshotter]: container.snapshotter ?? "",
        },
      }),
    );
    const gcLabels = Object.fromEntries(entries.map((e, i) => [`containerd.io/gc.ref.content.${i}`, e.digest]));
    const indexBlob = await putBlob(leased, `${id}index`, index, gcLabels);
    await leased.call("images.Create", { image: { name: options.ref, target: { mediaType: MediaType.ociIndex, ...indexBlob } } }).catch((err: unknown) => {
      if (isContainerdError(err, "already-exists")) {
        throw new RestoreError("invalid-option", `image ${options.ref} already exists: choose another ref or delete it`, { subject: "ref", cause: err });
      }
      throw err;
    });
    return {
      ref: options.ref,
      digest: indexBlob.digest,
      indexSize: indexBlob.size,
      criuImageBytes: criu.size,
      checkpointedAt: new Date().toISOString(),
      durationMs: performance.now() - started,
    };
  } catch (err) {
    throw daemonError(err);
  } finally {
    // With leaveRunning: false the checkpoint stopped the task; otherwise it must run again.
    if (paused && (leaveRunning || !checkpointed)) await unlessNotFound(client.call("tasks.Resume", { containerId: id })).catch(() => undefined);
    await unlessNotFound(client.call("leases.Delete", { id: leaseId })).catch(() => undefined);
  }
}
