/**
 * The base image for every fixture: Debian's busybox-static as a one-layer
 * OCI image, built deterministically without a registry and imported with
 * `ctr images import` (which unpacks it into the snapshotter).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import type { PrivateContainerd } from "./containerd";
import { MediaType, Annotation, ociArchitecture } from "./mediatypes";
import { blob, createOciLayoutTar, createTar, sha256Digest, type TarEntry } from "./tar";

/** Name of the base image in every daemon. */
export const BASE_IMAGE_NAME = "localhost/restore-test/busybox:1";

/** The imported base image. */
export interface BaseImage {
  /** Image name, `localhost/restore-test/busybox:1`. */
  name: string;
  /** Digest of the OCI manifest (the image record's target). */
  manifestDigest: string;
  /** Digest of the image config. */
  configDigest: string;
  /** ChainID of the rootfs (one layer: equal to its diff_id). */
  chainId: string;
  /** Digest of the gzip layer blob. */
  layerDigest: string;
  /** diff_id: digest of the uncompressed layer tar. */
  diffId: string;
}

/** Options for {@link importBaseImage}. */
export interface ImportBaseImageOptions {
  /** Namespace to import into (default: the daemon's). */
  namespace?: string;
  /** Snapshotter to unpack into (default: containerd's default, overlayfs). */
  snapshotter?: string;
}

/** Built image: the layout tar on disk plus the digests it contains. */
interface BuiltImage {
  tarPath: string;
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
  diffId: string;
}

const BUSYBOX = "/bin/busybox";
/** Bump when the recipe below changes, so stale cached tars are not reused. */
const RECIPE_VERSION = "2";
const APPLETS = [
  "sh", "ash", "cat", "sleep", "echo", "ls", "ps", "mkdir", "rm", "touch", "true", "false", "test", "[",
  "env", "grep", "sed", "wc", "head", "tail", "kill", "id", "pwd", "nc", "ip", "hostname", "date", "seq",
  "printf", "stat", "readlink", "mount", "uname", "ln", "cp", "mv", "chmod", "awk", "expr", "sort",
  "xargs", "find", "yes", "tr", "cut", "dd", "du", "df", "sync", "usleep", "timeout", "nsenter",
].sort();
const EMPTY_DIRS: ReadonlyArray<[string, number]> = [
  ["dev", 0o755], ["etc", 0o755], ["proc", 0o755], ["root", 0o700], ["run", 0o755], ["sys", 0o755],
  ["tmp", 0o1777], ["var", 0o755],
];

let built: Promise<BuiltImage> | undefined;

/**
 * Imports (and unpacks) the busybox base image into the daemon. The layout
 * tar is built once per process and cached in the OS temp dir.
 */
export async function importBaseImage(d: PrivateContainerd, opts: ImportBaseImageOptions = {}): Promise<BaseImage> {
  built ??= buildBaseImage();
  const image = await built;
  const args = ["images", "import"];
  if (opts.snapshotter) args.push("--snapshotter", opts.snapshotter);
  args.push(image.tarPath);
  await d.ctr(args, { namespace: opts.namespace });
  return {
    name: BASE_IMAGE_NAME,
    manifestDigest: image.manifestDigest,
    configDigest: image.configDigest,
    chainId: image.diffId,
    layerDigest: image.layerDigest,
    diffId: image.diffId,
  };
}

/** The layer: bin/busybox, applet symlinks and the usual empty dirs, sorted by name. */
function layerEntries(busybox: Buffer): TarEntry[] {
  const entries: TarEntry[] = [
    { type: "dir", name: "bin", mode: 0o755 },
    { type: "file", name: "bin/busybox", data: busybox, mode: 0o755 },
    ...APPLETS.map((a): TarEntry => ({ type: "symlink", name: `bin/${a}`, target: "busybox" })),
    ...EMPTY_DIRS.map(([name, mode]): TarEntry => ({ type: "dir", name, mode })),
  ];
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Builds the layout tar, or reuses the cached one (tar plus a `.json` sidecar with its digests). */
async function buildBaseImage(): Promise<BuiltImage> {
  const busybox = fs.readFileSync(BUSYBOX);
  const architecture = ociArchitecture();
  const key = crypto.createHash("sha256").update(`${RECIPE_VERSION}\0${architecture}\0`).update(busybox).digest("hex");
  const tarPath = path.join(os.tmpdir(), `restore-test-image-${key.slice(0, 16)}.tar`);
  const cached = readCachedDigests(tarPath);
  if (cached) return cached;
  const { tar, digests } = buildLayout(busybox, architecture);
  writeAtomically(tarPath, tar);
  writeAtomically(`${tarPath}.json`, Buffer.from(JSON.stringify(digests)));
  return { tarPath, ...digests };
}

type ImageDigests = Omit<BuiltImage, "tarPath">;

function readCachedDigests(tarPath: string): BuiltImage | undefined {
  try {
    const digests = JSON.parse(fs.readFileSync(`${tarPath}.json`, "utf8")) as ImageDigests;
    if (!fs.existsSync(tarPath) || typeof digests.manifestDigest !== "string") return undefined;
    return { tarPath, ...digests };
  } catch {
    return undefined;
  }
}

function writeAtomically(file: string, data: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** Layer, config, manifest and index.json, assembled into an OCI layout tar. */
function buildLayout(busybox: Buffer, architecture: string): { tar: Buffer; digests: ImageDigests } {
  const layerTar = createTar(layerEntries(busybox));
  const diffId = sha256Digest(layerTar);
  // gzip header from zlib: no file name, mtime 0, so the output is deterministic.
  const layer = blob(zlib.gzipSync(layerTar, { level: 6 }));
  const config = blob(
    JSON.stringify({
      architecture,
      os: "linux",
      config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: [diffId] },
    }),
  );
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: config.digest, size: config.data.length },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: layer.digest, size: layer.data.length }],
    }),
  );
  const index = JSON.stringify({
    schemaVersion: 2,
    manifests: [
      {
        mediaType: MediaType.ociManifest,
        digest: manifest.digest,
        size: manifest.data.length,
        annotations: {
          [Annotation.imageName]: BASE_IMAGE_NAME,
          // As `ctr images export` writes it: the tag only. Deliberately differs
          // from the full name (see containerd-restore.md §1.4 point 5).
          [Annotation.ociRefName]: BASE_IMAGE_NAME.slice(BASE_IMAGE_NAME.lastIndexOf(":") + 1),
        },
      },
    ],
  });
  return {
    tar: createOciLayoutTar(index, [manifest, config, layer]),
    digests: { manifestDigest: manifest.digest, configDigest: config.digest, layerDigest: layer.digest, diffId },
  };
}
