import type { ContainerdClient } from "../containerd/client";
import { readBlob } from "../containerd/content";
import { isContainerdError } from "../containerd/errors";
import { decodeMessage, messageType } from "../containerd/proto";
import type { Any, Descriptor } from "../containerd/types";
import { chainId } from "../checkpoint/chain-id";
import {
  decodeCheckpointIndex,
  decodeImageConfig,
  decodeManifest,
  decodeSpec,
  selectPlatform,
  type CheckpointFormat,
  type CheckpointIndex,
  type OciDescriptor,
  type Platform,
} from "../checkpoint/decode";
import { MediaType, SPEC_TYPE_URL, hostPlatform } from "../checkpoint/media-types";
import { RestoreError, daemonError, type RestoreErrorCode } from "../errors";
import { invalidIdReason } from "./identifiers";
import { daemonVersion } from "../containerd/version";

/** Checkpoint indexes are a few KB; anything this big is not one. */
const MAX_INDEX_BYTES = 4 * 1024 * 1024;
/** Specs, manifests, configs and option blobs are small too. */
const MAX_SMALL_BLOB_BYTES = 16 * 1024 * 1024;

/**
 * Everything a restore needs, resolved and checked against the daemon: plain data
 * (JSON-serializable), so a preview can show it and a restore can run it.
 */
export interface RestorePlan {
  checkpoint: { ref: string; digest: string; format: CheckpointFormat; schemaVersion: number };
  image: { name: string; manifestDigest: string; configDigest: string; diffIds: string[] };
  snapshotter: string;
  /** ChainID of the base image's layers: the committed snapshot the restore prepares on. */
  snapshotParent: string;
  runtime: { name: string; options?: { typeUrl: string; valueBase64: string } };
  /** The checkpoint's rw layer (filesystem changes), if it was made with --rw. */
  rwLayer?: Descriptor;
  /** The CRIU image (process memory), if it was made with --task. */
  criuImage?: Descriptor;
  /** The checkpointed container's OCI runtime spec. */
  spec: Record<string, unknown>;
  /** The daemon's version (Version service), e.g. `v2.4.2`; older than 1.6 is refused. */
  daemonVersion: string;
}

/** What the restore will need from the checkpoint; checked at plan time. */
export interface PlanRequirements {
  /** Restore process memory with CRIU (needs the CRIU image). Default true. */
  live?: boolean;
  /** Apply the checkpoint's rw layer (needs it). Default true. */
  restoreRw?: boolean;
}

const toDescriptor = (d: OciDescriptor): Descriptor => ({
  mediaType: d.mediaType,
  digest: d.digest,
  size: d.size,
  ...(d.annotations ? { annotations: d.annotations } : {}),
});

/** Re-labels a daemon error as a plan error with our code, keeping it as cause. */
async function notFoundAs<T>(call: Promise<T>, onNotFound: () => RestoreError): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (isContainerdError(err, "not-found")) throw Object.assign(onNotFound(), { cause: err });
    throw daemonError(err);
  }
}


async function readSmallBlob(client: ContainerdClient, entry: OciDescriptor, what: string): Promise<Buffer> {
  return notFoundAs(readBlob(client, entry.digest, MAX_SMALL_BLOB_BYTES), () => missingBlob(entry, what));
}

function missingBlob(entry: OciDescriptor, what: string): RestoreError {
  return new RestoreError(
    "missing-blob",
    `${what} ${entry.digest} (${entry.mediaType}) is not in the daemon's content store: the checkpoint is incomplete on this daemon; copy it again`,
    { subject: what },
  );
}

/** Decodes a serialized google.protobuf.Any blob. */
function decodeAny(bytes: Buffer, what: string, code: RestoreErrorCode): Any {
  try {
    return decodeMessage<Any>(messageType("google.protobuf.Any"), bytes);
  } catch (err) {
    throw new RestoreError(code, `${what} is not a serialized google.protobuf.Any: ${(err as Error).message}`, { subject: what, cause: err });
  }
}

async function readSpec(client: ContainerdClient, entry: OciDescriptor): Promise<Record<string, unknown>> {
  const any = decodeAny(await readSmallBlob(client, entry, "checkpoint config"), "checkpoint config", "malformed-spec");
  if (any.typeUrl !== SPEC_TYPE_URL) {
    throw new RestoreError("malformed-spec", `checkpoint config ${entry.digest} holds ${any.typeUrl || "an empty Any"}, not ${SPEC_TYPE_URL}`, {
      subject: "checkpoint config",
    });
  }
  return decodeSpec(any.value, entry.digest);
}

async function readRuntimeOptions(client: ContainerdClient, entry: OciDescriptor | undefined): Promise<RestorePlan["runtime"]["options"]> {
  if (!entry) return undefined;
  const any = decodeAny(await readSmallBlob(client, entry, "runtime options"), "runtime options", "malformed-runtime-options");
  // Sent back verbatim: containerd 1.6 only resolves the bare type URL it wrote.
  return { typeUrl: any.typeUrl, valueBase64: Buffer.from(any.value).toString("base64") };
}

async function assertBlobPresent(client: ContainerdClient, entry: OciDescriptor | undefined, what: string): Promise<void> {
  if (entry) await notFoundAs(client.call("content.Info", { digest: entry.digest }), () => missingBlob(entry, what));
}

/** Blobs are immutable: what was decoded from a digest stays true (bounded, per daemon and namespace). */
class DecodedCache<T> {
  private readonly entries = new Map<string, T>();
  constructor(private readonly limit: number) {}
  get(client: ContainerdClient, digest: string): T | undefined {
    return this.entries.get(`${client.address}\0${client.namespace}\0${digest}`);
  }
  set(client: ContainerdClient, digest: string, value: T): T {
    if (this.entries.size >= this.limit) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(`${client.address}\0${client.namespace}\0${digest}`, value);
    return value;
  }
}

type BaseImage = Pick<RestorePlan["image"], "manifestDigest" | "configDigest" | "diffIds">;
type DecodedCheckpoint = { index: CheckpointIndex; spec: Record<string, unknown>; runtimeOptions: RestorePlan["runtime"]["options"] };

/** Base images by target digest, checkpoints by index digest (checked once, when first decoded). */
const baseImages = new DecodedCache<BaseImage>(64);
const checkpoints = new DecodedCache<DecodedCheckpoint>(64);

/** Resolves the base image to its manifest, config and diff ids. */
async function resolveBaseImage(client: ContainerdClient, index: CheckpointIndex, platform: Platform): Promise<BaseImage> {
  let target: OciDescriptor;
  if (index.format === "modern") {
    const { image } = await notFoundAs(
      client.call("images.Get", { name: index.imageName }),
      () =>
        new RestoreError(
          "base-image-missing",
          `base image ${index.imageName} (named by the checkpoint) is not on the daemon in namespace ${client.namespace}: import or pull it, then unpack it into snapshotter ${index.snapshotter}`,
          { subject: "image" },
        ),
    );
    target = image.target as OciDescriptor;
  } else {
    // containerd 1.0–1.2 resolved legacy checkpoints from the index entry, not by name.
    target = index.baseImage!;
  }
  return baseImages.get(client, target.digest) ?? baseImages.set(client, target.digest, await decodeBaseImage(client, index, target, platform));
}

async function decodeBaseImage(client: ContainerdClient, index: CheckpointIndex, target: OciDescriptor, platform: Platform): Promise<BaseImage> {
  const base = await readBaseImage(client, index.imageName, target, platform);
  return { manifestDigest: base.manifest.digest, configDigest: base.config.digest, diffIds: base.diffIds };
}

/** A base image resolved for one platform: the list (if any), the manifest, its config and layers. */
export interface ResolvedBaseImage {
  list?: OciDescriptor;
  manifest: OciDescriptor;
  config: OciDescriptor;
  layers: OciDescriptor[];
  diffIds: string[];
}

/** Reads base image `name` from its target: a manifest list picks `platform`, then manifest and config. */
export async function readBaseImage(client: ContainerdClient, name: string, target: OciDescriptor, platform: Platform): Promise<ResolvedBaseImage> {
  let manifestEntry = target;
  let decoded = decodeManifest(await readSmallBlob(client, target, "base image manifest"), target.mediaType, target.digest);
  let list: OciDescriptor | undefined;
  if (decoded.kind === "list") {
    const chosen = selectPlatform(decoded.manifests, platform);
    if (!chosen) {
      throw new RestoreError("no-matching-platform", `base image ${name} has no manifest for ${platform.os}/${platform.architecture}`, { subject: "image" });
    }
    list = target;
    manifestEntry = chosen;
    decoded = decodeManifest(await readSmallBlob(client, chosen, "base image manifest"), chosen.mediaType, chosen.digest);
    if (decoded.kind !== "manifest") throw new RestoreError("base-image-invalid", `manifest ${chosen.digest} is a nested list`, { subject: "image" });
  }
  const config = decodeImageConfig(await readSmallBlob(client, decoded.config, "base image config"), decoded.config.digest);
  return { list, manifest: manifestEntry, config: decoded.config, layers: decoded.layers, diffIds: config.diffIds };
}

async function assertSnapshotterLoaded(client: ContainerdClient, snapshotter: string): Promise<void> {
  const { plugins } = await client.call("introspection.Plugins", {
    filters: [`type==io.containerd.snapshotter.v1,id==${snapshotter}`],
  });
  const plugin = plugins[0];
  if (!plugin || plugin.initErr?.message) {
    throw new RestoreError(
      "snapshotter-unavailable",
      `snapshotter ${snapshotter} (recorded in the checkpoint) is ${plugin ? `not usable on this daemon: ${plugin.initErr!.message}` : "not loaded on this daemon"}`,
      { subject: "snapshotter" },
    );
  }
}

async function assertParentSnapshot(client: ContainerdClient, plan: Pick<RestorePlan, "snapshotter" | "snapshotParent" | "image">): Promise<void> {
  if (!plan.snapshotParent) return;
  await notFoundAs(
    client.call("snapshots.Stat", { snapshotter: plan.snapshotter, key: plan.snapshotParent }),
    () =>
      new RestoreError(
        "base-image-not-unpacked",
        `base image ${plan.image.name} is not unpacked in snapshotter ${plan.snapshotter} (parent snapshot ${plan.snapshotParent} is missing): run \`ctr -n ${client.namespace} images unpack --snapshotter ${plan.snapshotter} ${plan.image.name}\``,
        { subject: "image" },
      ),
  );
}

/** Checks that `plan` can do what `requirements` ask, before any side effect. */
export function assertPlanSupports(plan: RestorePlan, requirements: PlanRequirements): void {
  const ref = `${plan.checkpoint.ref}@${plan.checkpoint.digest}`;
  if ((requirements.live ?? true) && !plan.criuImage) {
    throw new RestoreError(
      "no-criu-image",
      `checkpoint ${ref} was made without --task: no CRIU image (${MediaType.criuImage}), live restore impossible; use live: false for a filesystem-only restore`,
      { subject: "live" },
    );
  }
  if ((requirements.restoreRw ?? true) && !plan.rwLayer) {
    throw new RestoreError(
      "no-rw-layer",
      `checkpoint ${ref} was made without --rw: it has no rw layer; use restoreRw: false to restore on the bare base image`,
      { subject: "restoreRw" },
    );
  }
}

/**
 * Reads checkpoint `ref` from the daemon and resolves everything a restore needs:
 * format, base image and snapshot parent, snapshotter, runtime, rw layer, CRIU
 * image and spec. Read-only: safe in `pulumi preview`. Throws RestoreError.
 */
export async function planRestore(
  client: ContainerdClient,
  ref: string,
  requirements: PlanRequirements = {},
): Promise<RestorePlan> {
  try {
    // containerd's namespace rule; checked here, as the daemon's answer is untyped
    // and grpc-js throws a plain Error for a non-ASCII header value.
    const namespaceProblem = invalidIdReason(client.namespace);
    if (namespaceProblem) {
      throw new RestoreError("invalid-option", `namespace "${client.namespace}" ${namespaceProblem} (containerd's rule for namespaces)`, { subject: "namespace" });
    }
    const { version } = await daemonVersion(client);
    const { image } = await notFoundAs(
      client.call("images.Get", { name: ref }),
      () => new RestoreError("checkpoint-not-found", `checkpoint image ${ref} not found in namespace ${client.namespace}`, { subject: "checkpoint" }),
    );
    const target = image.target;
    if (target.mediaType !== MediaType.ociIndex) {
      throw new RestoreError("not-a-checkpoint", `${ref} is not a checkpoint: its target is ${target.mediaType}, not a checkpoint index (${MediaType.ociIndex})`, {
        subject: "checkpoint",
      });
    }
    if (target.size > MAX_INDEX_BYTES) {
      throw new RestoreError("index-too-large", `checkpoint index of ${ref} is ${target.size} bytes; refusing more than ${MAX_INDEX_BYTES}`, { subject: "checkpoint" });
    }
    const decoded = checkpoints.get(client, target.digest) ?? (await decodeCheckpoint(client, ref, target as OciDescriptor));
    const { index, spec, runtimeOptions } = decoded;
    const platform: Platform = index.criuImage?.platform ?? hostPlatform();
    const [base] = await Promise.all([resolveBaseImage(client, index, platform), assertSnapshotterLoaded(client, index.snapshotter)]);
    checkpoints.set(client, target.digest, decoded);
    const plan: RestorePlan = {
      checkpoint: { ref, digest: target.digest, format: index.format, schemaVersion: index.schemaVersion },
      image: { name: index.imageName, ...base },
      snapshotter: index.snapshotter,
      snapshotParent: chainId(base.diffIds),
      runtime: { name: index.runtime, ...(runtimeOptions ? { options: runtimeOptions } : {}) },
      ...(index.rwLayer ? { rwLayer: toDescriptor(index.rwLayer) } : {}),
      ...(index.criuImage ? { criuImage: toDescriptor(index.criuImage) } : {}),
      spec: structuredClone(spec),
      daemonVersion: version,
    };
    await assertParentSnapshot(client, plan);
    assertPlanSupports(plan, requirements);
    return plan;
  } catch (err) {
    throw daemonError(err);
  }
}

/**
 * Reads and decodes the checkpoint index, its spec and runtime options, and checks
 * that every blob it names is in the content store.
 */
async function decodeCheckpoint(client: ContainerdClient, ref: string, target: OciDescriptor): Promise<DecodedCheckpoint> {
  const indexBytes = await notFoundAs(readBlob(client, target.digest, MAX_INDEX_BYTES), () => missingBlob(target, "checkpoint index"));
  const index = decodeCheckpointIndex(indexBytes, `${ref}@${target.digest}`);
  const [spec, runtimeOptions] = await Promise.all([
    readSpec(client, index.config!),
    readRuntimeOptions(client, index.runtimeOptions),
    assertBlobPresent(client, index.criuImage, "CRIU image"),
    assertBlobPresent(client, index.rwLayer, "rw layer"),
    // Modern restores resolve the base image by name; a missing entry still means an incomplete copy.
    assertBlobPresent(client, index.baseImage, "base image manifest"),
  ]);
  return { index, spec, runtimeOptions };
}

