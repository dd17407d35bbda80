/** Media types of containerd checkpoint images and the OCI/Docker images they name. */
export const MediaType = {
  criuImage: "application/vnd.containerd.container.criu.checkpoint.criu.tar",
  checkpointConfig: "application/vnd.containerd.container.checkpoint.config.v1+proto",
  checkpointOptions: "application/vnd.containerd.container.checkpoint.options.v1+proto",
  runtimeOptions: "application/vnd.containerd.container.checkpoint.runtime.options+proto",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** Index-level annotations that tell the two checkpoint formats apart. */
export const Annotation = {
  /** modern: base image name */
  refName: "org.opencontainers.image.ref.name",
  /** modern: runtime of the checkpointed container */
  runtime: "io.containerd.checkpoint.runtime",
  /** modern: snapshotter of the checkpointed container */
  snapshotter: "io.containerd.checkpoint.snapshotter",
  /** legacy (`ctr tasks checkpoint`, containerd 1.0–1.2): base image name */
  legacyImageName: "image.name",
} as const;

/** The OCI spec's type URL inside the checkpoint config `Any`. */
export const SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/** Defaults for legacy checkpoints, which record neither (1.0–1.2's v1 runtime was removed in 2.0). */
export const LEGACY_DEFAULT_RUNTIME = "io.containerd.runc.v2";
export const LEGACY_DEFAULT_SNAPSHOTTER = "overlayfs";

export function isManifestList(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

export function isManifest(mediaType: string): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

/** Any OCI or Docker layer type (tar, +gzip, +zstd, non-distributable): Diff.Apply takes them all. */
export function isLayer(mediaType: string): boolean {
  return (
    mediaType.startsWith("application/vnd.oci.image.layer.") ||
    mediaType.startsWith("application/vnd.docker.image.rootfs.")
  );
}

/** This host's platform in OCI terms (Node's `process.arch` mapped to Go's GOARCH names). */
export function hostPlatform(): { os: string; architecture: string } {
  const goArch: Record<string, string> = { x64: "amd64", ia32: "386", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x" };
  return { os: "linux", architecture: goArch[process.arch] ?? process.arch };
}
