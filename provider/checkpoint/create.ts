import { randomBytes } from "node:crypto";
import type { ContainerdClient } from "../containerd/client";
import { digestOf, writeBlob } from "../containerd/content";
import { isContainerdError, unlessNotFound } from "../containerd/errors";
import { encodeMessage, messageType } from "../containerd/proto";
import { closeLease, openLease } from "../containerd/leases";
import type { Any, Container, Descriptor } from "../containerd/types";
import { RestoreError } from "../errors";
import { daemonError } from "../errors";
import { imageDigest } from "./images";
import { Annotation, MediaType, hostPlatform } from "./media-types";

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
  let result: CheckpointResult | undefined;
  let failure: unknown;
  try {
    const { container } = await client.call("containers.Get", { id });
    const { image } = await assertCheckpointable(client, id, container, options.ref);
    await openLease(client, leaseId);
    const leased = client.withLease(leaseId);

    await client.call("tasks.Pause", { containerId: id });
    paused = true;
    const entries: Descriptor[] = [];
    const runtimeOptions = container.runtime?.options;
    if (runtimeOptions?.typeUrl) {
      const blob = await putBlob(leased, `${id}-runtime-options`, anyBlob(runtimeOptions));
      entries.push({ mediaType: MediaType.runtimeOptions, ...blob, platform: hostPlatform() } as Descriptor);
    }
    entries.push(image.target);
    if ((options.includeRw ?? true) && container.snapshotKey) {
      entries.push({ ...(await diffRwLayer(leased, container.snapshotter!, container.snapshotKey)), platform: hostPlatform() } as Descriptor);
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
    entries.push({ ...criu, platform: hostPlatform() } as Descriptor, { ...config, platform: hostPlatform() } as Descriptor);
    const opts = await putBlob(leased, `${id}-checkpoint-options`, anyBlob(checkpointOptions(leaveRunning)));
    entries.push({ mediaType: MediaType.checkpointOptions, ...opts, platform: hostPlatform() } as Descriptor);

    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: entries,
        annotations: {
          [Annotation.refName]: container.image,
          [Annotation.runtime]: container.runtime!.name,
          [Annotation.snapshotter]: container.snapshotter,
        },
      }),
    );
    const gcLabels = Object.fromEntries(entries.map((e, i) => [`containerd.io/gc.ref.content.${i}`, e.digest]));
    const indexBlob = await putBlob(leased, `${id}index`, index, gcLabels);
    await leased.call("images.Create", { image: { name: options.ref, target: { mediaType: MediaType.ociIndex, ...indexBlob } } });
    result = {
      ref: options.ref,
      digest: indexBlob.digest,
      indexSize: indexBlob.size,
      criuImageBytes: criu.size,
      checkpointedAt: new Date().toISOString(),
      durationMs: performance.now() - started,
    };
  } catch (err) {
    failure = daemonError(err);
  }
  // With leaveRunning: false the checkpoint stopped the task; otherwise it must run again.
  const cleanupErrors = await settleAll([
    paused && (leaveRunning || !checkpointed) ? () => unlessNotFound(client.call("tasks.Resume", { containerId: id })) : undefined,
    () => closeLease(client, leaseId),
  ]);
  if (failure === undefined && cleanupErrors.length === 0) return result!;
  const cause = failure ?? cleanupErrors[0];
  const message = failure !== undefined ? (failure as Error).message : `checkpoint ${options.ref} was written, but cleanup failed`;
  const cleanup = cleanupErrors.length ? `; cleanup failed: ${cleanupErrors.map((e) => (e as Error).message).join("; ")}` : "";
  throw new RestoreError(failure instanceof RestoreError ? failure.code : "daemon-error", `${message}${cleanup}`, {
    subject: failure instanceof RestoreError ? failure.subject : undefined,
    cause,
    cleanupErrors,
  });
}

/** Refuses, before anything changes, a container a checkpoint cannot describe and a ref that is taken. */
async function assertCheckpointable(client: ContainerdClient, id: string, container: Container, ref: string) {
  const missing = !container.image ? "an image" : !container.runtime?.name ? "a runtime" : !container.snapshotter || !container.snapshotKey ? "a snapshot" : undefined;
  if (missing) throw new RestoreError("invalid-option", `container ${id} has no ${missing.replace(/^an? /, "")}: a checkpoint records ${missing} to restore on`, { subject: "containerId" });
  if (await imageDigest(client, ref)) throw new RestoreError("invalid-option", `image ${ref} already exists: choose another ref or delete it`, { subject: "ref" });
  return client.call("images.Get", { name: container.image! });
}

/** Runs every cleanup (skipping undefined ones) and returns the failures. */
async function settleAll(cleanups: ((() => Promise<unknown>) | undefined)[]): Promise<unknown[]> {
  const outcomes = await Promise.allSettled(cleanups.filter((c) => c !== undefined).map((c) => c()));
  return outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected").map((o) => o.reason);
}
