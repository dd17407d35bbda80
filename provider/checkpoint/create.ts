import { randomBytes } from "node:crypto";
import {
  digestOf,
  encodeAny,
  isContainerdError,
  packAny,
  unlessNotFound,
  writeBlob,
  type Any,
  type ContainerdClient,
  type Descriptor,
} from "../containerd";
import { RestoreError, withDaemonErrors, type CleanupError } from "../errors";
import { runTransaction, type Step, type StepTiming } from "../transaction";
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
  steps: StepTiming[];
  /** Cleanup that failed after a good checkpoint (the lease could not be released; it expires within an hour). */
  cleanupErrors: CleanupError[];
}

/** Annotation that makes each checkpointed spec unique (see workaround below). */
export const CHECKPOINT_NONCE_ANNOTATION = "containerd-restore/checkpoint-nonce";

/** What a checkpoint records of the container: checked before anything changes. */
interface CheckpointSource {
  id: string;
  /** The base image's name and target (its manifest or list). */
  image: { name: string; target: Descriptor };
  runtime: { name: string; options?: Any | null };
  snapshotter: string;
  snapshotKey: string;
}

/** Writes a small blob under the client's lease; already present is fine (the daemon adds it to the lease). */
async function putBlob(client: ContainerdClient, ref: string, data: Buffer, labels?: Record<string, string>): Promise<{ digest: string; size: number }> {
  const digest = digestOf(data);
  await writeBlob(client, ref, { digest, size: data.length, labels }, async function* () {
    yield data;
  });
  return { digest, size: data.length };
}

/** The runc CheckpointOptions that ctr uses. */
const checkpointOptions = (leaveRunning: boolean): Any => packAny("containerd.runc.v1.CheckpointOptions", { exit: !leaveRunning, fileLocks: true });

/** An index entry, with the host platform as ctr writes it. */
const entryOf = (descriptor: Descriptor): Descriptor => ({ ...descriptor, platform: hostPlatform() }) as Descriptor;

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
  if (!container.spec) throw new RestoreError("invalid-option", `container ${id} has no spec to checkpoint`, { subject: "containerId" });
  const spec = JSON.parse(Buffer.from(container.spec.value).toString("utf8")) as { annotations?: Record<string, string> };
  spec.annotations = { ...spec.annotations, [CHECKPOINT_NONCE_ANNOTATION]: randomBytes(8).toString("hex") };
  await client.call("containers.Update", {
    container: { id, spec: { typeUrl: container.spec.typeUrl, value: Buffer.from(JSON.stringify(spec)) } },
    updateMask: { paths: ["spec"] },
  });
}

/** Resumes the task if it is still paused: after a checkpoint with exit there is nothing to resume. */
async function resumeIfPaused(client: ContainerdClient, id: string): Promise<void> {
  const task = await unlessNotFound(client.call("tasks.Get", { containerId: id }));
  if (task?.process.status === "PAUSED" || task?.process.status === "PAUSING") await unlessNotFound(client.call("tasks.Resume", { containerId: id }));
}

/** Pauses the task for a consistent rw layer and memory image. */
const pauseTask: Step<{ id: string }, void> = {
  name: "pause-task",
  async run(client, { id }) {
    await client.call("tasks.Pause", { containerId: id });
  },
  async undo(client, _output, { id }) {
    await resumeIfPaused(client, id);
  },
};

/** The index entries written before the checkpoint: runtime options, the base image's manifest, the rw layer. */
const writeBlobs: Step<{ source: CheckpointSource; includeRw: boolean }, { entries: Descriptor[] }> = {
  name: "write-blobs",
  // Blobs are written under the lease: its release hands them to GC.
  async run(client, { source, includeRw }) {
    const entries: Descriptor[] = [];
    if (source.runtime.options?.typeUrl) {
      const blob = await putBlob(client, `${source.id}-runtime-options`, encodeAny(source.runtime.options));
      entries.push(entryOf({ mediaType: MediaType.runtimeOptions, ...blob }));
    }
    entries.push(source.image.target);
    if (includeRw) entries.push(entryOf(await diffRwLayer(client, source.snapshotter, source.snapshotKey)));
    return { entries };
  },
};

/** CRIU dumps the task: the CRIU image and the spec, as the daemon wrote them. */
const checkpointTask: Step<{ id: string; leaveRunning: boolean }, { criuImage: Descriptor; spec: Descriptor }> = {
  name: "checkpoint-task",
  async run(client, { id, leaveRunning }) {
    const checkpoint = () => client.call("tasks.Checkpoint", { containerId: id, options: checkpointOptions(leaveRunning) });
    let descriptors: Descriptor[];
    try {
      ({ descriptors } = await checkpoint());
    } catch (err) {
      if (!isContainerdError(err, "already-exists")) throw err;
      await makeSpecUnique(client, id);
      ({ descriptors } = await checkpoint());
    }
    const criuImage = descriptors.find((d) => d.mediaType === MediaType.criuImage);
    const spec = descriptors.find((d) => d.mediaType === MediaType.checkpointConfig);
    if (!criuImage || !spec) {
      throw new RestoreError("incomplete-checkpoint", `Tasks.Checkpoint of ${id} returned ${descriptors.map((d) => d.mediaType).join(", ") || "nothing"}: no CRIU image or spec`);
    }
    return { criuImage, spec };
  },
};

/** The checkpoint options blob and the index over every entry, with the three checkpoint annotations and GC labels. */
const writeIndex: Step<{ source: CheckpointSource; entries: Descriptor[]; leaveRunning: boolean }, { index: Descriptor }> = {
  name: "write-index",
  async run(client, { source, entries, leaveRunning }) {
    const options = await putBlob(client, `${source.id}-checkpoint-options`, encodeAny(checkpointOptions(leaveRunning)));
    const manifests = [...entries, entryOf({ mediaType: MediaType.checkpointOptions, ...options })];
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests,
        annotations: {
          [Annotation.refName]: source.image.name,
          [Annotation.runtime]: source.runtime.name,
          [Annotation.snapshotter]: source.snapshotter,
        },
      }),
    );
    const gcLabels = Object.fromEntries(manifests.map((e, i) => [`containerd.io/gc.ref.content.${i}`, e.digest]));
    const blob = await putBlob(client, `${source.id}index`, index, gcLabels);
    return { index: { mediaType: MediaType.ociIndex, ...blob } };
  },
};

/** The image record that names the checkpoint. */
const createImage: Step<{ name: string; target: Descriptor }, void> = {
  name: "create-image",
  async run(client, { name, target }) {
    await client.call("images.Create", { image: { name, target } });
  },
  async undo(client, _output, { name }) {
    await unlessNotFound(client.call("images.Delete", { name }));
  },
};

/** Lets the task run again after a checkpoint that leaves it running. */
const resumeTask: Step<{ id: string }, void> = {
  name: "resume-task",
  async run(client, { id }) {
    await unlessNotFound(client.call("tasks.Resume", { containerId: id }));
  },
};

/**
 * Checkpoints running container `id` into a checkpoint image in the modern format
 * (what `ctr containers checkpoint --task [--rw] --image` writes): runtime options,
 * the base image's manifest, the rw layer, the CRIU image, the spec and the
 * checkpoint options, under an index with the three checkpoint annotations and GC
 * labels. Steps: pause → write blobs → checkpoint → write index → create image
 * under a lease, then resume; a failure undoes them (the task runs again, the
 * image goes). Checks the result, so containerd's re-checkpoint bug can never
 * yield an index without a CRIU image.
 */
export const checkpointContainer = withDaemonErrors(async function checkpointContainer(
  client: ContainerdClient,
  id: string,
  options: CheckpointOptions,
): Promise<CheckpointResult> {
  const started = performance.now();
  const leaveRunning = options.leaveRunning ?? true;
  const source = await checkpointSource(client, id, options.ref);
  const outcome = await runTransaction(client, async (tx) => {
    const written = await tx.withLease({ id: `containerd-restore.checkpoint.${id}.${randomBytes(4).toString("hex")}` }, async (leased) => {
      await leased.run(pauseTask, { id });
      const { entries } = await leased.run(writeBlobs, { source, includeRw: options.includeRw ?? true });
      const { criuImage, spec } = await leased.run(checkpointTask, { id, leaveRunning });
      const { index } = await leased.run(writeIndex, { source, entries: [...entries, entryOf(criuImage), entryOf(spec)], leaveRunning });
      await leased.run(createImage, { name: options.ref, target: index });
      return { index, criuImage };
    });
    // With leaveRunning: false the checkpoint stopped the task; otherwise it must run again.
    if (leaveRunning) await tx.run(resumeTask, { id });
    return written;
  });
  const { index, criuImage } = outcome.value;
  return {
    ref: options.ref,
    digest: index.digest,
    indexSize: index.size,
    criuImageBytes: criuImage.size,
    checkpointedAt: new Date().toISOString(),
    durationMs: performance.now() - started,
    steps: outcome.steps,
    cleanupErrors: outcome.cleanupErrors,
  };
});

/** Refuses, before anything changes, a container a checkpoint cannot describe and a ref that is taken. */
async function checkpointSource(client: ContainerdClient, id: string, ref: string): Promise<CheckpointSource> {
  const { container } = await client.call("containers.Get", { id });
  const { image, runtime, snapshotter, snapshotKey } = container;
  const lacking = (what: string) =>
    new RestoreError("invalid-option", `container ${id} has no ${what.replace(/^an? /, "")}: a checkpoint records ${what} to restore on`, { subject: "containerId" });
  if (!image) throw lacking("an image");
  if (!runtime?.name) throw lacking("a runtime");
  if (!snapshotter || !snapshotKey) throw lacking("a snapshot");
  if (await imageDigest(client, ref)) throw new RestoreError("invalid-option", `image ${ref} already exists: choose another ref or delete it`, { subject: "ref" });
  const { image: base } = await client.call("images.Get", { name: image });
  return { id, image: { name: image, target: base.target }, runtime, snapshotter, snapshotKey };
}
