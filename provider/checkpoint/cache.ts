import type { ContainerdClient } from "../containerd";

/**
 * What was decoded from immutable blobs, by digest, per daemon and namespace:
 * what a digest decoded to stays true. Bounded by approximate bytes (the JSON
 * length of each value), not by count: one checkpoint's spec can be megabytes,
 * so a count limit lets hundreds of MiB stay on the heap. The oldest entries go
 * first; a value larger than the whole budget is not kept.
 */
export class DecodedCache<T> {
  private readonly entries = new Map<string, { value: T; bytes: number }>();
  private bytesHeld = 0;

  constructor(readonly budgetBytes: number) {}

  /** Approximate bytes held now. */
  get bytes(): number {
    return this.bytesHeld;
  }

  get size(): number {
    return this.entries.size;
  }

  get(client: Pick<ContainerdClient, "address" | "namespace">, digest: string): T | undefined {
    return this.entries.get(cacheKey(client, digest))?.value;
  }

  set(client: Pick<ContainerdClient, "address" | "namespace">, digest: string, value: T): T {
    const key = cacheKey(client, digest);
    this.delete(key);
    const bytes = approximateBytes(value);
    if (bytes > this.budgetBytes) return value;
    for (const [oldest] of this.entries) {
      if (this.bytesHeld + bytes <= this.budgetBytes) break;
      this.delete(oldest);
    }
    this.entries.set(key, { value, bytes });
    this.bytesHeld += bytes;
    return value;
  }

  private delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytesHeld -= entry.bytes;
  }
}

const cacheKey = (client: Pick<ContainerdClient, "address" | "namespace">, digest: string) => `${client.address}\0${client.namespace}\0${digest}`;

/** The JSON length of `value` (UTF-16 units, close enough to bytes for a budget). */
function approximateBytes(value: unknown): number {
  return JSON.stringify(value)?.length ?? 0;
}
