import { createHash } from "node:crypto";
import type { ContainerdClient } from "./client";
import { ContainerdError } from "./errors";

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
