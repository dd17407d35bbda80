/**
 * Snapshot of everything a namespace holds in a daemon, read with `ctr`, to
 * prove that an operation (or its failure) left nothing behind.
 */
import { AssertionError } from "node:assert";
import * as fs from "node:fs";
import { parseTable, type PrivateContainerd } from "./containerd";

/** Sorted lists of what a namespace holds. Entries with a state are `key:state`. */
export interface Inventory {
  namespace: string;
  /** Container ids. */
  containers: string[];
  /** `id:STATUS`. */
  tasks: string[];
  /** Snapshots per snapshotter, `key:Kind`. */
  snapshots: { overlayfs: string[]; native: string[] };
  /** Lease ids. */
  leases: string[];
  /** Image names. */
  images: string[];
  /** Blob digests in the content store. */
  content: string[];
  /** Refs of active (unfinished) content ingests. */
  ingests: string[];
}

function lines(output: string): string[] {
  return output
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

const sorted = (xs: string[]): string[] => [...xs].sort();

/** Reads the inventory of `namespace` (default: the daemon's namespace). */
export async function takeInventory(d: PrivateContainerd, namespace: string = d.namespace): Promise<Inventory> {
  const o = { namespace };
  const snapshots = (snapshotter: string): Promise<string[]> =>
    d.ctr(["snapshots", "--snapshotter", snapshotter, "ls"], o).then((out) =>
      // KEY PARENT KIND; PARENT may be empty, so take the first and the last field.
      sorted(parseTable(out).map((r) => `${r[0]}:${r[r.length - 1]}`)),
    );
  const [containers, tasks, overlayfs, native, leases, images, content, ingests] = await Promise.all([
    d.ctr(["containers", "ls", "-q"], o).then((out) => sorted(lines(out))),
    d.ctr(["tasks", "ls"], o).then((out) => sorted(parseTable(out).map((r) => `${r[0]}:${r[2]}`))),
    snapshots("overlayfs"),
    snapshots("native"),
    d.ctr(["leases", "ls", "-q"], o).then((out) => sorted(lines(out))),
    d.ctr(["images", "ls", "-q"], o).then((out) => sorted(lines(out))),
    d.ctr(["content", "ls", "-q"], o).then((out) => sorted(lines(out))),
    d.ctr(["content", "active"], o).then((out) => sorted(parseTable(out).map((r) => r[0]))),
  ]);
  return { namespace, containers, tasks, snapshots: { overlayfs, native }, leases, images, content, ingests };
}

/** Splits `key:state` (at the last colon); plain entries have no state. */
function splitState(entry: string, withState: boolean): [string, string | undefined] {
  if (!withState) return [entry, undefined];
  const i = entry.lastIndexOf(":");
  return i < 0 ? [entry, undefined] : [entry.slice(0, i), entry.slice(i + 1)];
}

/** Differences in one category as `+ kind key`, `- kind key`, `~ kind key OLD→NEW`. */
function diffCategory(kind: string, before: string[], after: string[], withState: boolean): string[] {
  const toMap = (xs: string[]): Map<string, string | undefined> => new Map(xs.map((x) => splitState(x, withState)));
  const a = toMap(before);
  const b = toMap(after);
  const out: string[] = [];
  const fmt = (key: string, state: string | undefined): string => (state === undefined ? key : `${key} ${state}`);
  for (const [key, state] of a) {
    if (!b.has(key)) out.push(`- ${kind} ${fmt(key, state)}`);
    else if (b.get(key) !== state) out.push(`~ ${kind} ${key} ${state}→${b.get(key)}`);
  }
  for (const [key, state] of b) if (!a.has(key)) out.push(`+ ${kind} ${fmt(key, state)}`);
  return out;
}

/** Human-readable differences, e.g. `+ container r1`, `- image x`, `~ task r1 RUNNING→STOPPED`. */
export function diffInventory(before: Inventory, after: Inventory): string[] {
  return [
    ...diffCategory("container", before.containers, after.containers, false),
    ...diffCategory("task", before.tasks, after.tasks, true),
    ...diffCategory("snapshot(overlayfs)", before.snapshots.overlayfs, after.snapshots.overlayfs, true),
    ...diffCategory("snapshot(native)", before.snapshots.native, after.snapshots.native, true),
    ...diffCategory("lease", before.leases, after.leases, false),
    ...diffCategory("image", before.images, after.images, false),
    // Blobs that vanished were collected by containerd's GC (unreferenced): not a leak. New ones are.
    ...diffCategory("content", before.content, after.content, false).filter((line) => line.startsWith("+")),
    ...diffCategory("ingest", before.ingests, after.ingests, false),
  ];
}

/** Options for {@link assertInventoryUnchanged}. */
export interface AssertInventoryOptions {
  /**
   * Keep re-reading for up to this many ms while there are differences
   * (containerd's GC runs asynchronously after deletes). Default 2000; 0 = read once.
   */
  settleMs?: number;
}

/**
 * Re-reads the inventory of `before.namespace` and throws an AssertionError
 * listing every difference (after letting asynchronous GC settle).
 */
export async function assertInventoryUnchanged(
  d: PrivateContainerd,
  before: Inventory,
  message?: string,
  opts: AssertInventoryOptions = {},
): Promise<void> {
  const deadline = Date.now() + (opts.settleMs ?? 2_000);
  for (;;) {
    const after = await takeInventory(d, before.namespace);
    const diff = diffInventory(before, after);
    if (diff.length === 0) return;
    if (Date.now() >= deadline) {
      throw new AssertionError({
        message: `${message ?? "inventory changed"} (namespace ${before.namespace}):\n  ${diff.join("\n  ")}`,
        actual: after,
        expected: before,
        operator: "inventoryUnchanged",
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * `ctrd-checkpoint*` dirs in the daemon's TMPDIR: containerd 1.6 leaks one
 * per `Tasks.Create` with a checkpoint (containerd-restore.md §6.10).
 */
export function listCheckpointTempDirs(d: PrivateContainerd): string[] {
  try {
    return fs.readdirSync(d.tmpDir).filter((n) => n.startsWith("ctrd-checkpoint")).sort();
  } catch {
    return [];
  }
}
