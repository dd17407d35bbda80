import { createHash } from "node:crypto";
import type { ContainerdClient } from "./client";
import { ContainerdError, isContainerdError } from "./errors";

/**
 * Reads a whole blob from the content store. Refuses blobs larger than `maxBytes`
 * (stops reading at that point) and checks the digest of what it read.
 */
export async function readBlob(client: ContainerdClient, digest: string, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const { data } of client.stream("content.Read", { digest, offset: 0, size: 0 })) {
    total += data.length;
    if (total > maxBytes) {
      throw new ContainerdError("out-of-range", "content.Read", `blob ${digest} is larger than ${maxBytes} bytes`, client.address);
    }
    chunks.push(Buffer.from(data.buffer, data.byteOffset, data.length));
  }
  const blob = Buffer.concat(chunks, total);
  const actual = digestOf(blob);
  if (digest.startsWith("sha256:") && actual !== digest) {
    throw new ContainerdError("internal", "content.Read", `blob ${digest} read back as ${actual}`, client.address);
  }
  return blob;
}

/** The OCI digest (`sha256:<hex>`) of `data`. */
export function digestOf(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** What a blob write must produce. */
export interface BlobTarget {
  digest: string;
  size: number;
  /** Labels set on commit (e.g. `containerd.io/gc.ref.content.*`). */
  labels?: Record<string, string>;
}

export interface WriteBlobResult {
  /** Bytes sent in this call (0 when the blob was already there). */
  bytesWritten: number;
  /** Where this call started: > 0 when it resumed an interrupted ingest. */
  resumedAt: number;
  /** The daemon already had the blob (it is added to the caller's lease). */
  existed: boolean;
}

/**
 * Writes a blob into the content store through Content.Write, resumable: the
 * ingest `ref` keeps what an interrupted write sent, and this call asks for its
 * offset (STAT) and only requests the rest from `source(offset)`. The daemon
 * verifies size and digest on COMMIT. Chunks stream through; nothing is buffered
 * beyond the stream's own window.
 */
export async function writeBlob(
  client: ContainerdClient,
  ref: string,
  target: BlobTarget,
  source: (offset: number) => AsyncIterable<Uint8Array>,
): Promise<WriteBlobResult> {
  // Another writer holds the ingest (a parallel copy of a shared layer): wait for it, as containerd's own client does.
  const giveUpAt = Date.now() + LOCKED_RETRY_MS;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    try {
      return await writeBlobOnce(client, ref, target, source);
    } catch (err) {
      if (!isIngestLocked(err) || Date.now() > giveUpAt) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

const LOCKED_RETRY_MS = 60_000;

/** containerd answers Unavailable "ref … locked" while another writer holds an ingest. */
function isIngestLocked(err: unknown): boolean {
  return isContainerdError(err, "unavailable") && /\blocked\b/.test((err as ContainerdError).details);
}

async function writeBlobOnce(
  client: ContainerdClient,
  ref: string,
  target: BlobTarget,
  source: (offset: number) => AsyncIterable<Uint8Array>,
): Promise<WriteBlobResult> {
  const call = client.duplex("content.Write");
  const { digest, size } = target;
  try {
    await call.send({ action: "STAT", ref, total: size, expected: digest });
    const status = await call.receive();
    const resumedAt = status.offset > 0 && status.offset <= size ? status.offset : 0;
    let offset = resumedAt;
    for await (const data of source(offset)) {
      if (data.length === 0) continue;
      if (offset + data.length > size) {
        throw new ContainerdError("out-of-range", "content.Write", `blob ${digest}: source gave more than ${size} bytes`, client.address);
      }
      // One response per request; on a local socket the round trip is small next to a 1 MiB chunk.
      await call.send({ action: "WRITE", ref, offset, data });
      offset = (await call.receive()).offset;
    }
    if (offset !== size) throw new ContainerdError("out-of-range", "content.Write", `blob ${digest}: source ended at ${offset} of ${size} bytes`, client.address);
    await call.send({ action: "COMMIT", ref, total: size, expected: digest, offset, labels: target.labels });
    await call.receive();
    call.end();
    return { bytesWritten: size - resumedAt, resumedAt, existed: false };
  } catch (err) {
    call.cancel();
    if (isContainerdError(err, "already-exists")) return { bytesWritten: 0, resumedAt: 0, existed: true };
    throw err;
  }
}

/** How much one Content.Read asks for: bounds what grpc-js reads ahead of the consumer. */
const READ_RANGE_BYTES = 2 * 1024 * 1024;

/**
 * Reads blob bytes `[offset, size)` as a stream of chunks, one bounded range at a
 * time, so a slow consumer (a write to another daemon) never has more than a range
 * buffered: copies stay within a small, constant memory footprint.
 */
export function readChunks(client: ContainerdClient, digest: string, size: number, offset = 0): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (let at = offset; at < size; at += READ_RANGE_BYTES) {
      const range = Math.min(READ_RANGE_BYTES, size - at);
      for await (const { data } of client.stream("content.Read", { digest, offset: at, size: range })) yield data;
    }
  })();
}
