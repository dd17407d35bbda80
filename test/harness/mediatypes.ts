/** Media types and annotation/label keys used by the fixtures (values as in containerd 1.6). */
export const MediaType = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  criuCheckpoint: "application/vnd.containerd.container.criu.checkpoint.criu.tar",
  checkpointConfig: "application/vnd.containerd.container.checkpoint.config.v1+proto",
  checkpointOptions: "application/vnd.containerd.container.checkpoint.options.v1+proto",
  checkpointRuntimeOptions: "application/vnd.containerd.container.checkpoint.runtime.options+proto",
} as const;

/** Annotation and label keys. */
export const Annotation = {
  imageName: "io.containerd.image.name",
  ociRefName: "org.opencontainers.image.ref.name",
  checkpointRuntime: "io.containerd.checkpoint.runtime",
  checkpointSnapshotter: "io.containerd.checkpoint.snapshotter",
  legacyImageName: "image.name",
  checkpointLabel: "containerd.io/checkpoint",
} as const;

/** An OCI descriptor as it appears in index/manifest JSON. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

/** An OCI image index as parsed from JSON (fields optional: hostile inputs exist). */
export interface ImageIndex {
  schemaVersion?: number;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** OCI architecture name of this host (`x64` → `amd64`). */
export function ociArchitecture(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" };
  const mapped = map[arch];
  if (!mapped) throw new Error(`no OCI architecture for ${arch}`);
  return mapped;
}
