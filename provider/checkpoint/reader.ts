/**
 * The one reader of checkpoint images on a daemon: the image lookup, the index
 * with its entries, the spec and runtime options, and the base image walk,
 * each decoded once per digest. Used by planning and by copies. Read-only.
 */
import { decodeAny, isContainerdError, readBlob, type Any, type ContainerdClient, type Descriptor } from "../containerd";
import { RestoreError, type RestoreErrorCode } from "../errors";
import { DecodedCache } from "./cache";
import {
  decodeCheckpointIndex,
  decodeImageConfig,
  decodeManifest,
  decodeSpec,
  selectPlatform,
  type CheckpointIndex,
  type OciDescriptor,
  type Platform,
} from "./decode";
import { MediaType, SPEC_TYPE_URL, hostPlatform } from "./media-types";

/**
 * Checkpoint indexes that containerd writes are under 2 KiB (five entries and three
 * annotations): 512 KiB is 250 times that, and far below gRPC's 16 MiB message limit.
 */
export const MAX_INDEX_BYTES = 512 * 1024;
/**
 * Specs (a runc spec with a full seccomp profile is 20–40 KiB), manifests, image
 * configs and runtime options: 1 MiB bounds what decoding one may cost (see json-limits.ts).
 */
export const MAX_SMALL_BLOB_BYTES = 1024 * 1024;

/** A checkpoint image as its index describes it. */
export interface CheckpointImage {
  ref: string;
  /** The image target: the checkpoint index. */
  target: Descriptor;
  index: CheckpointIndex;
}

/** Runtime options as a plan carries them: JSON-serializable. */
export interface RuntimeOptions {
  typeUrl: string;
  valueBase64: string;
}

/** What the checkpoint's own blobs say, checked to be on the daemon. */
export interface CheckpointConfig {
  spec: Record<string, unknown>;
  runtimeOptions?: RuntimeOptions;
}

/** A base image resolved for one platform: its target, the list (if any), the manifest, its config and layers. */
export interface BaseImage {
  target: OciDescriptor;
  list?: OciDescriptor;
  manifest: OciDescriptor;
  config: OciDescriptor;
  layers: OciDescriptor[];
  diffIds: string[];
}

/** Decoded blobs kept in memory, 8 MiB in all: specs can be large, indexes and base images are small. */
const indexes = new DecodedCache<CheckpointIndex>(1024 * 1024);
const configs = new DecodedCache<CheckpointConfig>(6 * 1024 * 1024);
const baseImages = new DecodedCache<BaseImage>(1024 * 1024);

/** Re-labels a daemon NotFound as a RestoreError with our code, keeping the daemon's error as cause. */
async function notFoundAs<T>(call: Promise<T>, onNotFound: () => RestoreError | Promise<RestoreError>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (isContainerdError(err, "not-found")) throw Object.assign(await onNotFound(), { cause: err });
    throw err;
  }
}

/**
 * Why `ref` is not found: containerd answers not-found alike for an image that
 * is missing and for a namespace that does not exist (a typo in the namespace
 * input), so the namespaces are listed before blaming the checkpoint.
 */
async function checkpointNotFound(client: ContainerdClient, ref: string): Promise<RestoreError> {
  // containerd's Namespaces.Get answers for any name; List tells. When it cannot be asked, the checkpoint is blamed as before.
  const namespaceExists = await client.call("namespaces.List", {}).then(
    ({ namespaces }) => namespaces.some((n) => n.name === client.namespace),
    () => true,
  );
  if (!namespaceExists) {
    return new RestoreError(
      "namespace-not-found",
      `namespace ${client.namespace} does not exist on the daemon at ${client.address}: check the namespace (input or stack config containerd-restore:namespace); \`ctr namespaces ls\` lists those that do`,
      { subject: "namespace" },
    );
  }
  return new RestoreError("checkpoint-not-found", `checkpoint image ${ref} not found in namespace ${client.namespace}`, { subject: "checkpoint" });
}

function missingBlob(entry: OciDescriptor, what: string): RestoreError {
  return new RestoreError(
    "missing-blob",
    `${what} ${entry.digest} (${entry.mediaType}) is not in the daemon's content store: the checkpoint is incomplete on this daemon; copy it again`,
    { subject: what },
  );
}

async function readSmallBlob(client: ContainerdClient, entry: OciDescriptor, what: string): Promise<Buffer> {
  return notFoundAs(readBlob(client, entry.digest, MAX_SMALL_BLOB_BYTES, { size: entry.size, what }), () => missingBlob(entry, what));
}

async function assertBlobPresent(client: ContainerdClient, entry: OciDescriptor | undefined, what: string): Promise<void> {
  if (entry) await notFoundAs(client.call("content.Info", { digest: entry.digest }), () => missingBlob(entry, what));
}

/** A serialized google.protobuf.Any blob, or a RestoreError with `code` naming `what`. */
function anyFrom(bytes: Buffer, what: string, code: RestoreErrorCode): Any {
  try {
    return decodeAny(bytes);
  } catch (err) {
    throw new RestoreError(code, `${what} is not a serialized google.protobuf.Any: ${(err as Error).message}`, { subject: what, cause: err });
  }
}

/**
 * Looks checkpoint image `ref` up and decodes its index: refuses an image that is
 * not an index, an index too large to be one, and one that is not a checkpoint.
 */
export async function readCheckpointImage(client: ContainerdClient, ref: string): Promise<CheckpointImage> {
  const { image } = await notFoundAs(client.call("images.Get", { name: ref }), () => checkpointNotFound(client, ref));
  const { target } = image;
  if (target.mediaType !== MediaType.ociIndex) {
    throw new RestoreError("not-a-checkpoint", `${ref} is not a checkpoint: its target is ${target.mediaType}, not a checkpoint index (${MediaType.ociIndex})`, {
      subject: "checkpoint",
    });
  }
  if (target.size > MAX_INDEX_BYTES) {
    throw new RestoreError("index-too-large", `checkpoint index of ${ref} is ${target.size} bytes; refusing more than ${MAX_INDEX_BYTES}`, { subject: "checkpoint" });
  }
  const index =
    indexes.get(client, target.digest) ??
    indexes.set(
      client,
      target.digest,
      decodeCheckpointIndex(
        await notFoundAs(readBlob(client, target.digest, MAX_INDEX_BYTES, { size: target.size, what: "checkpoint index" }), () => missingBlob(target as OciDescriptor, "checkpoint index")),
        `${ref}@${target.digest}`,
      ),
    );
  return { ref, target, index };
}

/**
 * The spec and runtime options of a checkpoint, and a check that every blob a
 * restore needs is in the content store. Cached only once `remember` is called
 * (a plan that succeeded), so a failed plan reads again next time.
 */
export async function readCheckpointConfig(client: ContainerdClient, checkpoint: CheckpointImage): Promise<{ config: CheckpointConfig; remember(): void }> {
  const digest = checkpoint.target.digest;
  const cached = configs.get(client, digest);
  const config = cached ?? (await decodeCheckpointConfig(client, checkpoint.index));
  return { config, remember: () => void (cached ?? configs.set(client, digest, config)) };
}

async function decodeCheckpointConfig(client: ContainerdClient, index: CheckpointIndex): Promise<CheckpointConfig> {
  const [spec, runtimeOptions] = await Promise.all([
    readSpec(client, index.config),
    readRuntimeOptions(client, index.runtimeOptions),
    assertBlobPresent(client, index.criuImage, "CRIU image"),
    assertBlobPresent(client, index.rwLayer, "rw layer"),
    // Modern restores resolve the base image by name; a missing entry still means an incomplete copy.
    assertBlobPresent(client, index.baseImage, "base image manifest"),
  ]);
  return { spec, ...(runtimeOptions ? { runtimeOptions } : {}) };
}

async function readSpec(client: ContainerdClient, entry: OciDescriptor): Promise<Record<string, unknown>> {
  const any = anyFrom(await readSmallBlob(client, entry, "checkpoint config"), "checkpoint config", "malformed-spec");
  if (any.typeUrl !== SPEC_TYPE_URL) {
    throw new RestoreError("malformed-spec", `checkpoint config ${entry.digest} holds ${any.typeUrl || "an empty Any"}, not ${SPEC_TYPE_URL}`, {
      subject: "checkpoint config",
    });
  }
  return decodeSpec(any.value, entry.digest);
}

async function readRuntimeOptions(client: ContainerdClient, entry: OciDescriptor | undefined): Promise<RuntimeOptions | undefined> {
  if (!entry) return undefined;
  const any = anyFrom(await readSmallBlob(client, entry, "runtime options"), "runtime options", "malformed-runtime-options");
  // Sent back verbatim: containerd 1.6 only resolves the bare type URL it wrote.
  return { typeUrl: any.typeUrl, valueBase64: Buffer.from(any.value).toString("base64") };
}

/** The platform a checkpoint was made on (its CRIU image entry's), else this host's. */
export function checkpointPlatform(index: CheckpointIndex): Platform {
  return index.criuImage?.platform ?? hostPlatform();
}

/**
 * The checkpoint's base image on the daemon, resolved for `platform`: modern
 * checkpoints name it (looked up by name), legacy ones carry its manifest entry
 * (containerd 1.0–1.2 resolved them from the index, not by name).
 */
export async function readBaseImage(client: ContainerdClient, index: CheckpointIndex, platform: Platform): Promise<BaseImage> {
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
    target = index.baseImage;
  }
  const key = `${target.digest}\0${platform.os}/${platform.architecture}/${platform.variant ?? ""}`;
  return baseImages.get(client, key) ?? baseImages.set(client, key, await walkBaseImage(client, index.imageName, target, platform));
}

/** Walks base image `name` from its target: a manifest list picks `platform`, then manifest and config. */
async function walkBaseImage(client: ContainerdClient, name: string, target: OciDescriptor, platform: Platform): Promise<BaseImage> {
  let manifest = target;
  let decoded = decodeManifest(await readSmallBlob(client, target, "base image manifest"), target.mediaType, target.digest);
  let list: OciDescriptor | undefined;
  if (decoded.kind === "list") {
    const chosen = selectPlatform(decoded.manifests, platform);
    if (!chosen) {
      throw new RestoreError("no-matching-platform", `base image ${name} has no manifest for ${platform.os}/${platform.architecture}`, { subject: "image" });
    }
    list = target;
    manifest = chosen;
    decoded = decodeManifest(await readSmallBlob(client, chosen, "base image manifest"), chosen.mediaType, chosen.digest);
    if (decoded.kind !== "manifest") throw new RestoreError("base-image-invalid", `manifest ${chosen.digest} is a nested list`, { subject: "image" });
  }
  const config = decodeImageConfig(await readSmallBlob(client, decoded.config, "base image config"), decoded.config.digest);
  return { target, ...(list ? { list } : {}), manifest, config: decoded.config, layers: decoded.layers, diffIds: config.diffIds };
}

/** @internal The caches, for tests of their budget. */
export const decodedCaches = { indexes, configs, baseImages };
