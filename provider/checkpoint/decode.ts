import { z } from "zod";
import { RestoreError, type RestoreErrorCode } from "../errors";
import { IMAGE_CONFIG_LIMITS, INDEX_LIMITS, MANIFEST_LIMITS, SPEC_LIMITS, assertJsonWithinLimits, type JsonLimits } from "./json-limits";
import {
  Annotation,
  LEGACY_DEFAULT_RUNTIME,
  LEGACY_DEFAULT_SNAPSHOTTER,
  MediaType,
  isLayer,
  isManifest,
  isManifestList,
} from "./media-types";

const digest = z.string().regex(/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/, "not an OCI digest (sha256:<64 hex>)");
const stringMap = z.record(z.string(), z.string());
const platform = z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() });

const descriptorSchema = z.object({
  mediaType: z.string().min(1, "empty media type"),
  digest,
  size: z.number().int().nonnegative(),
  annotations: stringMap.optional(),
  platform: platform.optional(),
});

const indexSchema = z.object({
  schemaVersion: z.number().int().optional(),
  manifests: z.array(descriptorSchema),
  annotations: stringMap.optional(),
});

const manifestSchema = z.object({
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});

const manifestListSchema = z.object({
  manifests: z.array(descriptorSchema),
});

const imageConfigSchema = z.object({
  architecture: z.string().optional(),
  os: z.string().optional(),
  rootfs: z.object({ type: z.literal("layers"), diff_ids: z.array(digest) }),
});

/** An OCI descriptor as found in an index or manifest. */
export type OciDescriptor = z.infer<typeof descriptorSchema>;
export type Platform = z.infer<typeof platform>;

export type CheckpointFormat = "modern" | "legacy";

interface CheckpointIndexEntries {
  schemaVersion: number;
  /** Base image name (modern: `org.opencontainers.image.ref.name`; legacy: `image.name`). */
  imageName: string;
  runtime: string;
  snapshotter: string;
  /** Every entry of the index, in order. */
  entries: OciDescriptor[];
  criuImage?: OciDescriptor;
  /** The container spec entry: every checkpoint has one. */
  config: OciDescriptor;
  runtimeOptions?: OciDescriptor;
  rwLayer?: OciDescriptor;
}

/** What a checkpoint index says, before anything is looked up on the daemon. */
export type CheckpointIndex = CheckpointIndexEntries &
  (
    | { format: "modern"; /** The base image's manifest (or list) entry, as copied into the index. */ baseImage?: OciDescriptor }
    | { format: "legacy"; /** The base image's manifest (or list) entry: legacy restores resolve it from here. */ baseImage: OciDescriptor }
  );

/** Parses JSON bytes with a schema; failures name the blob and the path inside it. */
function parseJson<S extends z.ZodType>(
  schema: S,
  bytes: Buffer,
  what: string,
  codes: { notJson: RestoreErrorCode; invalid: RestoreErrorCode },
  limits: JsonLimits,
): z.infer<S> {
  assertJsonWithinLimits(bytes, what, limits);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new RestoreError(codes.notJson, `${what} is not JSON: ${(err as Error).message}`, { subject: what, cause: err });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue.path.length ? issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "") : "(top level)";
    throw new RestoreError(codes.invalid, `${what}: ${at}: ${issue.message}`, { subject: at, cause: parsed.error });
  }
  return parsed.data;
}

const first = (entries: OciDescriptor[], match: (mediaType: string) => boolean) =>
  entries.find((e) => match(e.mediaType));

/**
 * Decodes a checkpoint index and tells the formats apart by index-level
 * annotations only (an entry's own annotations can differ).
 */
export function decodeCheckpointIndex(bytes: Buffer, where: string): CheckpointIndex {
  const index = parseJson(indexSchema, bytes, `checkpoint index ${where}`, { notJson: "index-not-json", invalid: "index-invalid" }, INDEX_LIMITS);
  const annotations = index.annotations ?? {};
  const entries = index.manifests;
  const invalid = (message: string, subject: string) =>
    new RestoreError("index-invalid", `checkpoint index ${where}: ${message}`, { subject });

  let format: CheckpointFormat;
  let imageName: string | undefined;
  let runtime: string;
  let snapshotter: string;
  if (Annotation.runtime in annotations || Annotation.snapshotter in annotations) {
    format = "modern";
    imageName = annotations[Annotation.refName];
    runtime = annotations[Annotation.runtime] ?? "";
    snapshotter = annotations[Annotation.snapshotter] ?? "";
    if (!runtime) throw invalid(`annotation ${Annotation.runtime} (runtime name) is missing or empty`, `annotations.${Annotation.runtime}`);
    if (!snapshotter) {
      throw invalid(`annotation ${Annotation.snapshotter} (snapshotter) is missing or empty`, `annotations.${Annotation.snapshotter}`);
    }
    if (!imageName) throw invalid(`annotation ${Annotation.refName} (base image name) is missing or empty`, `annotations.${Annotation.refName}`);
  } else if (Annotation.legacyImageName in annotations) {
    format = "legacy";
    imageName = annotations[Annotation.legacyImageName];
    runtime = LEGACY_DEFAULT_RUNTIME;
    snapshotter = LEGACY_DEFAULT_SNAPSHOTTER;
    if (!imageName) throw invalid(`annotation ${Annotation.legacyImageName} (base image name) is empty`, `annotations.${Annotation.legacyImageName}`);
  } else {
    throw new RestoreError(
      "not-a-checkpoint",
      `${where} is not a containerd checkpoint: its index has neither the ${Annotation.runtime}/${Annotation.snapshotter} annotations (containerd ≥ 1.3) nor ${Annotation.legacyImageName} (ctr tasks checkpoint)`,
      { subject: "annotations" },
    );
  }

  const decoded = {
    format,
    schemaVersion: index.schemaVersion ?? 0,
    imageName,
    runtime,
    snapshotter,
    entries,
    criuImage: first(entries, (t) => t === MediaType.criuImage),
    config: first(entries, (t) => t === MediaType.checkpointConfig),
    runtimeOptions: format === "modern" ? first(entries, (t) => t === MediaType.runtimeOptions) : undefined,
    rwLayer: first(entries, isLayer),
    baseImage: first(entries, (t) => isManifest(t) || isManifestList(t)),
  };
  if (!decoded.config) {
    // Entries this reader does not recognize: say so, rather than blaming a missing --task.
    const unknown = entries.map((e, i) => ({ at: `manifests[${i}]`, mediaType: e.mediaType })).filter((e) => !isKnownEntry(e.mediaType));
    if (unknown.length > 0) {
      throw invalid(
        `no ${MediaType.checkpointConfig} entry (the container spec), and entries of unknown media types: ${unknown.map((e) => `${e.at} (${e.mediaType})`).join(", ")}; not a checkpoint index written by containerd`,
        `${unknown[0].at}.mediaType`,
      );
    }
    throw new RestoreError(
      "incomplete-checkpoint",
      decoded.criuImage
        ? `checkpoint ${where} has a CRIU image but no ${MediaType.checkpointConfig} entry (the container spec): the index is damaged`
        : `checkpoint ${where} has neither a CRIU image nor a spec (${MediaType.checkpointConfig}) entry: it was made without --task, ` +
            `or it hit containerd 1.6/1.7's re-checkpoint bug (a second checkpoint of the same container writes an incomplete index and exits 0); ` +
            `checkpoint a fresh container with --task`,
      { subject: "manifests" },
    );
  }
  const { config, baseImage } = decoded;
  if (format === "modern") return { ...decoded, format, config };
  if (!baseImage) throw invalid("legacy checkpoint has no base image manifest entry", "manifests");
  return { ...decoded, format, config, baseImage };
}

/** Media types a containerd checkpoint index may hold. */
function isKnownEntry(mediaType: string): boolean {
  return (
    mediaType === MediaType.criuImage ||
    mediaType === MediaType.checkpointConfig ||
    mediaType === MediaType.checkpointOptions ||
    mediaType === MediaType.runtimeOptions ||
    isLayer(mediaType) ||
    isManifest(mediaType) ||
    isManifestList(mediaType)
  );
}

/** Decodes a manifest or manifest list blob. */
export function decodeManifest(bytes: Buffer, mediaType: string, where: string):
  | { kind: "manifest"; config: OciDescriptor; layers: OciDescriptor[] }
  | { kind: "list"; manifests: OciDescriptor[] } {
  const codes = { notJson: "base-image-invalid", invalid: "base-image-invalid" } as const;
  if (isManifestList(mediaType)) {
    return { kind: "list", ...parseJson(manifestListSchema, bytes, `manifest list ${where}`, codes, MANIFEST_LIMITS) };
  }
  return { kind: "manifest", ...parseJson(manifestSchema, bytes, `manifest ${where}`, codes, MANIFEST_LIMITS) };
}

/** Decodes an image config blob to its rootfs diff ids. */
export function decodeImageConfig(bytes: Buffer, where: string): { diffIds: string[] } {
  const config = parseJson(imageConfigSchema, bytes, `image config ${where}`, { notJson: "base-image-invalid", invalid: "base-image-invalid" }, IMAGE_CONFIG_LIMITS);
  return { diffIds: config.rootfs.diff_ids };
}

/**
 * Picks the manifest for `want` from a list, as containerd's client does: by
 * entry platform (variant only when both give one).
 */
export function selectPlatform(manifests: OciDescriptor[], want: Platform): OciDescriptor | undefined {
  return manifests.find(
    (m) =>
      isManifest(m.mediaType) &&
      m.platform?.os === want.os &&
      m.platform?.architecture === want.architecture &&
      (!m.platform.variant || !want.variant || m.platform.variant === want.variant),
  );
}

/** Decodes a checkpoint's OCI spec JSON (the `value` of the config Any). */
export function decodeSpec(json: Uint8Array, where: string): Record<string, unknown> {
  assertJsonWithinLimits(json, `checkpoint spec ${where}`, SPEC_LIMITS);
  let spec: unknown;
  try {
    spec = JSON.parse(Buffer.from(json).toString("utf8"));
  } catch (err) {
    throw new RestoreError("malformed-spec", `checkpoint spec ${where} is not JSON: ${(err as Error).message}`, { subject: where, cause: err });
  }
  const parsed = z.object({ process: z.object({ args: z.array(z.string()).optional() }).loose() }).loose().safeParse(spec);
  if (!parsed.success) {
    throw new RestoreError("malformed-spec", `checkpoint spec ${where} is not an OCI runtime spec: ${parsed.error.issues[0].message} at ${parsed.error.issues[0].path.join(".") || "(top level)"}`, {
      subject: where,
    });
  }
  return parsed.data as Record<string, unknown>;
}
