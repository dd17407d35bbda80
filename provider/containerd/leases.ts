import type { ContainerdClient } from "./client";
import { isContainerdError, unlessNotFound } from "./errors";

/** How long a lease protects its content and snapshots if its holder dies. */
export const LEASE_TTL_MS = 60 * 60 * 1000;

/**
 * Opens lease `id`, expiring after `ttlMs` so the work of a crashed holder is
 * collected. `reuse`: an existing lease of that id is taken over (resumable work).
 */
export async function openLease(
  client: ContainerdClient,
  id: string,
  options: { ttlMs?: number; reuse?: boolean; labels?: Record<string, string> } = {},
): Promise<void> {
  const expire = new Date(Date.now() + (options.ttlMs ?? LEASE_TTL_MS)).toISOString().replace(/\.\d+Z$/, "Z");
  try {
    await client.call("leases.Create", { id, labels: { ...options.labels, "containerd.io/gc.expire": expire } });
  } catch (err) {
    if (!(options.reuse && isContainerdError(err, "already-exists"))) throw err;
  }
}

/** Deletes lease `id` (already gone is fine); `sync` runs containerd's GC before returning. */
export async function closeLease(client: ContainerdClient, id: string, options: { sync?: boolean } = {}): Promise<boolean> {
  return (await unlessNotFound(client.call("leases.Delete", { id, sync: options.sync }))) !== undefined;
}
