/**
 * Hostile checkpoints made at test time from a real one: the same CRIU image,
 * rw layer and base image, with a changed spec and/or runtime options blob.
 * Built with ctr and hand-written protobuf, independent of provider/.
 */
import { createHash } from "node:crypto";
import type { PrivateContainerd } from "./containerd";
import { readContent, writeCustomIndex, type Checkpoint, type ImageRef } from "./fixtures";
import { MediaType, type ImageIndex } from "./mediatypes";

/** The type URL of the OCI spec inside a checkpoint config Any. */
export const SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const RUNC_OPTIONS_TYPE_URL = "containerd.runc.v1.Options";

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

const lengthDelimited = (field: number, data: Buffer) => Buffer.concat([varint((field << 3) | 2), varint(data.length), data]);
const varintField = (field: number, value: number) => Buffer.concat([varint(field << 3), varint(value)]);

/** A serialized google.protobuf.Any, encoded by hand: both fields are always written, even empty. */
export function anyBlob(typeUrl: string, value: Buffer | string): Buffer {
  return Buffer.concat([lengthDelimited(1, Buffer.from(typeUrl)), lengthDelimited(2, Buffer.from(value))]);
}

/** Reads field 2 (value) of a serialized Any. */
function anyValue(bytes: Buffer): Buffer {
  let at = 0;
  const read = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++];
      value |= (b & 0x7f) << shift;
      if (b < 0x80) return value;
    }
  };
  while (at < bytes.length) {
    const tag = read();
    const length = read();
    if (tag >> 3 === 2) return bytes.subarray(at, at + length);
    at += length;
  }
  throw new Error("Any without a value");
}

/** runc options as the wire format writes them (field numbers of containerd.runc.v1.Options). */
export interface RuncOptionsFixture {
  noPivotRoot?: boolean;
  noNewKeyring?: boolean;
  shimCgroup?: string;
  binaryName?: string;
  root?: string;
  criuPath?: string;
  systemdCgroup?: boolean;
  criuImagePath?: string;
  criuWorkPath?: string;
  /** Extra raw fields (e.g. a field number runc's schema here lacks). */
  raw?: Buffer;
}

/** A serialized Any holding runc options. */
export function runcOptionsBlob(options: RuncOptionsFixture): Buffer {
  const parts: Buffer[] = [];
  const str = (field: number, v?: string) => v !== undefined && parts.push(lengthDelimited(field, Buffer.from(v)));
  const bool = (field: number, v?: boolean) => v && parts.push(varintField(field, 1));
  bool(1, options.noPivotRoot);
  bool(2, options.noNewKeyring);
  str(3, options.shimCgroup);
  str(6, options.binaryName);
  str(7, options.root);
  str(8, options.criuPath);
  bool(9, options.systemdCgroup);
  str(10, options.criuImagePath);
  str(11, options.criuWorkPath);
  if (options.raw) parts.push(options.raw);
  return anyBlob(RUNC_OPTIONS_TYPE_URL, Buffer.concat(parts));
}

/** The checkpointed spec of a real checkpoint, decoded. */
export async function checkpointSpec(d: PrivateContainerd, checkpoint: Pick<Checkpoint, "index">): Promise<Record<string, any>> {
  const config = checkpoint.index.manifests.find((m) => m.mediaType === MediaType.checkpointConfig);
  if (!config) throw new Error("checkpoint has no spec entry");
  return JSON.parse(anyValue(await readContent(d, config.digest)).toString("utf8")) as Record<string, any>;
}

export interface HostileCheckpointOptions {
  /** Changes the checkpointed spec. */
  spec?: (spec: Record<string, any>) => void;
  /** A serialized Any for the runtime-options entry (replaced, or added when the checkpoint has none). */
  runtimeOptions?: Buffer;
  /** Index-level annotation changes, e.g. the runtime name. */
  annotations?: Record<string, string>;
}

const digestOf = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/**
 * Image `ref`: `base`'s checkpoint with the changes in `options`. The CRIU image,
 * rw layer and base image entries are the real ones (kept alive by `base`'s image).
 */
export async function makeHostileCheckpoint(
  d: PrivateContainerd,
  base: Checkpoint,
  ref: string,
  options: HostileCheckpointOptions,
): Promise<ImageRef> {
  const index: ImageIndex = structuredClone(base.index);
  const extra: Buffer[] = [];
  const replace = (mediaType: string, data: Buffer) => {
    const descriptor = { mediaType, digest: digestOf(data), size: data.length, platform: { architecture: "amd64", os: "linux" } };
    const at = index.manifests.findIndex((m) => m.mediaType === mediaType);
    if (at >= 0) index.manifests[at] = { ...index.manifests[at], digest: descriptor.digest, size: descriptor.size };
    else index.manifests.unshift(descriptor);
    extra.push(data);
  };
  if (options.spec) {
    const spec = await checkpointSpec(d, base);
    options.spec(spec);
    replace(MediaType.checkpointConfig, anyBlob(SPEC_TYPE_URL, Buffer.from(JSON.stringify(spec))));
  }
  if (options.runtimeOptions) replace(MediaType.checkpointRuntimeOptions, options.runtimeOptions);
  if (options.annotations) index.annotations = { ...index.annotations, ...options.annotations };
  return writeCustomIndex(d, ref, index, extra);
}
