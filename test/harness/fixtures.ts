/**
 * Checkpoint fixtures made with `ctr` (the independent oracle): a counting
 * busybox container, modern checkpoints, the 1.6 re-checkpoint bug, legacy
 * (1.0/1.1-style) checkpoints and arbitrary hostile indexes.
 */
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseTable, type PrivateContainerd } from "./containerd";
import type { BaseImage } from "./image";
import { Annotation, MediaType, type Descriptor, type ImageIndex } from "./mediatypes";
import { sleep, waitFor } from "./proc";
import { blob, createOciLayoutTar, sha256Digest, type LayoutBlob } from "./tar";

/**
 * busybox sh script: prints `boot <previous /tmp/count or none>`, then counts
 * 1, 2, 3, … to stdout and /tmp/count, every 0.1 s.
 */
export const COUNTER_SCRIPT =
  'echo "boot $(cat /tmp/count 2>/dev/null || echo none)"; ' +
  "i=0; while true; do i=$((i+1)); echo $i; echo $i > /tmp/count; sleep 0.1; done";

/** A checkpoint image made by `ctr containers checkpoint`. */
export interface Checkpoint {
  /** Image name of the checkpoint. */
  ref: string;
  /** Digest of the checkpoint index (the image target). */
  digest: string;
  /** Counter value read just before the checkpoint. */
  countBefore: number;
  /** Counter value read just after it (the original keeps running). */
  countAfter: number;
  /** Id of the container that was checkpointed. */
  originalId: string;
  /** Pid of the original's init process (only alive with `keepOriginal`). */
  originalPid: number;
  /** The parsed checkpoint index. */
  index: ImageIndex;
}

/** Options for {@link makeCheckpoint}. */
export interface MakeCheckpointOptions {
  /** Image name for the checkpoint, e.g. `checkpoint/c1:v1`. */
  ref: string;
  /** Base image to run the counter from. */
  image: BaseImage;
  /** Include the task (CRIU image, spec, options); default true. */
  task?: boolean;
  /** Include the rw layer; default true. */
  rw?: boolean;
  /** Wait until the counter reached this value before checkpointing; default 5. */
  minCount?: number;
  /** Leave the original container running; default false (killed and removed). */
  keepOriginal?: boolean;
  /** Container id for the original (default: a fresh unique id). */
  id?: string;
  /** Namespace (default: the daemon's). */
  namespace?: string;
  /** Extra `ctr run` flags for the original, e.g. `--net-host`. */
  runArgs?: string[];
}

/** An image reference with its target digest. */
export interface ImageRef {
  ref: string;
  digest: string;
}

/** A fresh container id, valid for containerd (`prefix-<8 hex>`). */
export function uniqueId(prefix = "c"): string {
  return `${prefix}-${crypto.randomBytes(4).toString("hex")}`;
}

/** Options for {@link runCounter}. */
export interface RunCounterOptions {
  namespace?: string;
  /** Extra `ctr run` flags, placed before the image name. */
  extraArgs?: string[];
}

/**
 * Runs the counter ({@link COUNTER_SCRIPT}) detached, stdout and stderr to
 * `<logDir>/<id>.log`. Returns the init pid and the log path.
 */
export async function runCounter(
  d: PrivateContainerd,
  id: string,
  image: BaseImage | string,
  opts: RunCounterOptions = {},
): Promise<{ pid: number; logPath: string }> {
  const imageName = typeof image === "string" ? image : image.name;
  const logPath = path.join(d.logDir, `${id}.log`);
  fs.mkdirSync(d.logDir, { recursive: true });
  const extra = opts.extraArgs ?? [];
  // ctr 1.6's `run` stores runc options on the container, so its checkpoints carry a
  // runtime-options entry; ctr 1.7 and 2.x store (and checkpoint) options only
  // when given some: ask for runc by name, which is what 1.6 wrote too.
  const runtimeOptions = d.behaviour.ctrRunWritesRuntimeOptions || extra.includes("--runc-binary") ? [] : ["--runc-binary", "runc"];
  await d.ctr(
    ["run", "-d", "--log-uri", `file://${logPath}`, ...runtimeOptions, ...extra, imageName, id, "sh", "-c", COUNTER_SCRIPT],
    { namespace: opts.namespace },
  );
  const pid = await taskPid(d, id, opts.namespace);
  return { pid, logPath };
}

/** Pid of a task from `ctr tasks ls` (throws if the task does not exist). */
export async function taskPid(d: PrivateContainerd, id: string, namespace?: string): Promise<number> {
  const row = parseTable(await d.ctr(["tasks", "ls"], { namespace })).find((r) => r[0] === id);
  if (!row) throw new Error(`task ${id} not found in ctr tasks ls`);
  return Number(row[1]);
}

/** Status of a task (`RUNNING`, `STOPPED`, `CREATED`, `PAUSED`…) or undefined if there is none. */
export async function taskStatus(d: PrivateContainerd, id: string, namespace?: string): Promise<string | undefined> {
  return parseTable(await d.ctr(["tasks", "ls"], { namespace })).find((r) => r[0] === id)?.[2];
}

/** Counter value from `/proc/<pid>/root/tmp/count`; NaN if absent, empty or unreadable. */
export function readCount(pid: number): number {
  try {
    const text = fs.readFileSync(`/proc/${pid}/root/tmp/count`, "utf8").trim();
    return text === "" ? NaN : Number(text);
  } catch {
    return NaN;
  }
}

/**
 * Like {@link readCount} but retries briefly over the moment where the shell
 * has truncated the file and not yet written the number.
 */
export async function readCountSettled(pid: number, timeoutMs = 1_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = readCount(pid);
    if (!Number.isNaN(value) || Date.now() >= deadline) return value;
    await sleep(10);
  }
}

/** Waits until the counter of `pid` is at least `min`; returns the value seen. */
export function waitForCount(pid: number, min: number, timeoutMs = 15_000): Promise<number> {
  return waitFor(
    () => {
      const value = readCount(pid);
      return value >= min ? value : undefined;
    },
    timeoutMs,
    () => `count >= ${min} in pid ${pid} (last ${readCount(pid)})`,
    20,
  );
}

/** Lines of a container log file (empty array if it does not exist). */
export function readLog(logPath: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(logPath, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").filter((line, i, all) => line !== "" || i < all.length - 1);
}

/** SIGKILL a container's task, delete it, then remove the container (and its snapshot). */
export async function removeContainer(d: PrivateContainerd, id: string, namespace?: string): Promise<void> {
  const opts = { namespace };
  const status = await taskStatus(d, id, namespace);
  if (status !== undefined) {
    if (status === "PAUSED") await d.ctr(["tasks", "resume", id], opts);
    if (status !== "STOPPED") {
      await d.ctr(["tasks", "kill", "-s", "SIGKILL", id], opts).catch(() => undefined);
      await waitFor(
        async () => ((await taskStatus(d, id, namespace)) === "RUNNING" ? undefined : true),
        10_000,
        () => `task ${id} to stop`,
      );
    }
    await d.ctr(["tasks", "rm", id], opts);
  }
  await d.ctr(["containers", "rm", id], opts);
}

/** Target digest and media type of an image record, from `ctr images ls`. */
export async function imageTarget(
  d: PrivateContainerd,
  ref: string,
  namespace?: string,
): Promise<{ mediaType: string; digest: string }> {
  const row = parseTable(await d.ctr(["images", "ls"], { namespace })).find((r) => r[0] === ref);
  if (!row) throw new Error(`image ${ref} not found in ctr images ls`);
  return { mediaType: row[1], digest: row[2] };
}

/** Raw bytes of a blob (`ctr content get`). */
export function readContent(d: PrivateContainerd, digest: string, namespace?: string): Promise<Buffer> {
  return d.ctrRaw(["content", "get", digest], { namespace });
}

/** Parses a blob as an image index. */
export async function readIndex(d: PrivateContainerd, digest: string, namespace?: string): Promise<ImageIndex> {
  return JSON.parse((await readContent(d, digest, namespace)).toString("utf8")) as ImageIndex;
}

/** The first entry of an index with this media type, if any. */
export function findEntry(index: ImageIndex, mediaType: string): Descriptor | undefined {
  return index.manifests.find((m) => m.mediaType === mediaType);
}

/** Media types a modern checkpoint index must (and must not) contain for the given flags. */
function checkModernIndex(index: ImageIndex, task: boolean, rw: boolean): string[] {
  const problems: string[] = [];
  const expect = (mediaType: string, wanted: boolean): void => {
    const present = findEntry(index, mediaType) !== undefined;
    if (present !== wanted) problems.push(`${wanted ? "missing" : "unexpected"} entry ${mediaType}`);
  };
  expect(MediaType.criuCheckpoint, task);
  expect(MediaType.checkpointConfig, task);
  expect(MediaType.ociLayerGzip, rw);
  expect(MediaType.ociManifest, true);
  for (const key of [Annotation.ociRefName, Annotation.checkpointRuntime, Annotation.checkpointSnapshotter]) {
    if (!index.annotations?.[key]) problems.push(`missing index annotation ${key}`);
  }
  return problems;
}

/**
 * Runs a fresh counter container, waits for `minCount`, checkpoints it with
 * `ctr containers checkpoint [--task] [--rw] --image`, and (unless
 * `keepOriginal`) removes the original. Throws if the index lacks the
 * expected entries.
 */
export async function makeCheckpoint(d: PrivateContainerd, opts: MakeCheckpointOptions): Promise<Checkpoint> {
  const task = opts.task ?? true;
  const rw = opts.rw ?? true;
  const id = opts.id ?? uniqueId("ck");
  const ns = opts.namespace;
  const { pid } = await runCounter(d, id, opts.image, { namespace: ns, extraArgs: opts.runArgs });
  try {
    await waitForCount(pid, opts.minCount ?? 5);
    const countBefore = await readCountSettled(pid);
    const args = ["containers", "checkpoint", ...(task ? ["--task"] : []), ...(rw ? ["--rw"] : []), "--image"];
    await d.ctr([...args, id, opts.ref], { namespace: ns });
    const countAfter = await readCountSettled(pid);
    const { digest } = await imageTarget(d, opts.ref, ns);
    const index = await readIndex(d, digest, ns);
    const problems = checkModernIndex(index, task, rw);
    if (problems.length > 0) {
      throw new Error(`checkpoint ${opts.ref} is incomplete: ${problems.join("; ")}\n${JSON.stringify(index)}`);
    }
    return { ref: opts.ref, digest, countBefore, countAfter, originalId: id, originalPid: pid, index };
  } finally {
    if (!opts.keepOriginal) await removeContainer(d, id, ns);
  }
}

/** Result of {@link makeRecheckpointBugCheckpoint}. */
export interface RecheckpointBug {
  /** The container that was checkpointed twice (already removed). */
  containerId: string;
  /** First checkpoint: complete. */
  first: ImageRef & { index: ImageIndex };
  /** Second checkpoint: written with exit 0 but without criu.tar/config/options entries. */
  second: ImageRef & { index: ImageIndex };
  /**
   * True when the daemon itself wrote `second` (1.6, 1.7). On a daemon without the
   * bug (2.4) the real second checkpoint is `fixedSecond` (complete), and `second`
   * is the index the bug writes, made by hand from the first.
   */
  reproduced: boolean;
  /** Without the bug: the daemon's own, complete second checkpoint. */
  fixedSecond?: ImageRef & { index: ImageIndex };
}

/** The entries the re-checkpoint bug leaves out of the second index. */
const RECHECKPOINT_BUG_DROPS: readonly string[] = [MediaType.criuCheckpoint, MediaType.checkpointConfig, MediaType.checkpointRuntimeOptions];

/**
 * Reproduces the containerd 1.6/1.7 re-checkpoint bug: checkpoints one
 * running container twice (`--task --rw --image`). Throws if the first index
 * is incomplete, or if the second one is not what this daemon version writes:
 * incomplete where the bug exists (`d.behaviour.recheckpointBug`), complete where
 * it was fixed (2.4). Where it was fixed, the bug's index (the first one without
 * CRIU image, spec and options) is written with {@link writeCustomIndex} as `ref2`,
 * and the daemon's own second checkpoint is `fixedSecond` (`ref2` + `-fixed`).
 */
export async function makeRecheckpointBugCheckpoint(
  d: PrivateContainerd,
  ref1: string,
  ref2: string,
  image: BaseImage,
): Promise<RecheckpointBug> {
  const id = uniqueId("rk");
  const { pid } = await runCounter(d, id, image);
  try {
    await waitForCount(pid, 5);
    const checkpoint = async (ref: string): Promise<ImageRef & { index: ImageIndex }> => {
      await d.ctr(["containers", "checkpoint", "--task", "--rw", "--image", id, ref]);
      const { digest } = await imageTarget(d, ref);
      return { ref, digest, index: await readIndex(d, digest) };
    };
    const first = await checkpoint(ref1);
    const firstProblems = checkModernIndex(first.index, true, true);
    if (firstProblems.length > 0) throw new Error(`first checkpoint incomplete: ${firstProblems.join("; ")}`);
    if (d.behaviour.recheckpointBug) {
      const second = await checkpoint(ref2);
      if (findEntry(second.index, MediaType.criuCheckpoint) || findEntry(second.index, MediaType.checkpointConfig)) {
        throw new Error(`re-checkpoint bug not reproduced on containerd ${d.version.text}: ${ref2} has criu/config entries`);
      }
      return { containerId: id, first, second, reproduced: true };
    }
    const fixedSecond = await checkpoint(`${ref2}-fixed`);
    const fixedProblems = checkModernIndex(fixedSecond.index, true, true);
    if (fixedProblems.length > 0) {
      throw new Error(`containerd ${d.version.text} was expected to have no re-checkpoint bug, but its second checkpoint is incomplete: ${fixedProblems.join("; ")}`);
    }
    const bugIndex = structuredClone(first.index);
    bugIndex.manifests = bugIndex.manifests.filter((m) => !RECHECKPOINT_BUG_DROPS.includes(m.mediaType));
    const written = await writeCustomIndex(d, ref2, bugIndex);
    return { containerId: id, first, second: { ...written, index: bugIndex }, reproduced: false, fixedSecond };
  } finally {
    await removeContainer(d, id);
  }
}

/** Options for {@link makeLegacyCheckpoint}. */
export interface LegacyCheckpointOptions {
  /** `schemaVersion` of the index: 0 as written by 1.0/1.1 (default), 2 as by 1.2+. */
  schemaVersion?: 0 | 2;
  /** Reference the base image through a new Docker schema2 manifest (default true); else the OCI manifest entry as is. */
  dockerManifest?: boolean;
  /** Media type for the rw layer entry (default: the modern one, `…layer.v1.tar+gzip`). */
  rwMediaType?: string;
}

/** A legacy checkpoint image, see {@link makeLegacyCheckpoint}. */
export interface LegacyCheckpoint extends ImageRef {
  /** The legacy index as parsed. */
  index: ImageIndex;
  /** The exact index bytes (with the trailing newline). */
  raw: Buffer;
  /** Digest of the Docker schema2 manifest, when one was written. */
  dockerManifestDigest?: string;
}

/** Descriptor with only the fields a 1.0/1.1 writer emitted, platform reduced to `{architecture, os}`. */
function legacyEntry(desc: Descriptor, mediaType = desc.mediaType, withPlatform = true): Descriptor {
  const entry: Descriptor = { mediaType, digest: desc.digest, size: desc.size };
  if (withPlatform && desc.platform) {
    entry.platform = { architecture: desc.platform.architecture, os: desc.platform.os };
  }
  return entry;
}

function requireEntry(index: ImageIndex, mediaType: string, what: string): Descriptor {
  const entry = findEntry(index, mediaType);
  if (!entry) throw new Error(`modern checkpoint has no ${what} entry (${mediaType})`);
  return entry;
}

/** Fetches blobs by descriptor and returns them as layout blobs. */
async function fetchBlobs(d: PrivateContainerd, descs: Descriptor[], namespace?: string): Promise<LayoutBlob[]> {
  return Promise.all(descs.map(async (desc) => ({ digest: desc.digest, data: await readContent(d, desc.digest, namespace) })));
}

/**
 * Builds a legacy (containerd 1.0/1.1 `ctr tasks checkpoint`) checkpoint
 * from a modern one (containerd-restore.md §5.3): index with only the
 * `image.name` annotation, entries criu.tar, config, base image (Docker
 * schema2 manifest by default) and rw layer, trailing newline; imported
 * with `--no-unpack` and labelled `containerd.io/checkpoint=true`.
 */
export async function makeLegacyCheckpoint(
  d: PrivateContainerd,
  modern: Checkpoint,
  legacyRef: string,
  opts: LegacyCheckpointOptions = {},
): Promise<LegacyCheckpoint> {
  const index = modern.index;
  const criu = requireEntry(index, MediaType.criuCheckpoint, "criu.tar");
  const config = requireEntry(index, MediaType.checkpointConfig, "checkpoint config");
  const rw = requireEntry(index, MediaType.ociLayerGzip, "rw layer");
  const baseManifestEntry = requireEntry(index, MediaType.ociManifest, "base image manifest");
  const baseName = index.annotations?.[Annotation.ociRefName];
  if (!baseName) throw new Error("modern checkpoint has no org.opencontainers.image.ref.name annotation");

  const baseManifestBlob = await readContent(d, baseManifestEntry.digest);
  const baseManifest = JSON.parse(baseManifestBlob.toString("utf8")) as { config: Descriptor; layers: Descriptor[] };
  const blobs: LayoutBlob[] = [
    { digest: baseManifestEntry.digest, data: baseManifestBlob },
    ...(await fetchBlobs(d, [criu, config, rw, baseManifest.config, ...baseManifest.layers])),
  ];

  let baseEntry: Descriptor = legacyEntry(baseManifestEntry, baseManifestEntry.mediaType, false);
  let dockerManifestDigest: string | undefined;
  if (opts.dockerManifest ?? true) {
    const docker = blob(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, size: baseManifest.config.size, digest: baseManifest.config.digest },
        layers: baseManifest.layers.map((l) => ({ mediaType: MediaType.dockerLayerGzip, size: l.size, digest: l.digest })),
      }),
    );
    blobs.push(docker);
    dockerManifestDigest = docker.digest;
    baseEntry = { mediaType: MediaType.dockerManifest, digest: docker.digest, size: docker.data.length };
  }

  const legacy: ImageIndex = {
    schemaVersion: opts.schemaVersion ?? 0,
    manifests: [legacyEntry(criu), legacyEntry(config), baseEntry, legacyEntry(rw, opts.rwMediaType ?? rw.mediaType)],
    annotations: { [Annotation.legacyImageName]: baseName },
  };
  const raw = Buffer.from(JSON.stringify(legacy) + "\n", "utf8");
  const legacyBlob = blob(raw);
  blobs.push(legacyBlob);

  const layoutIndex = JSON.stringify({
    schemaVersion: 2,
    manifests: [
      { mediaType: MediaType.ociIndex, digest: legacyBlob.digest, size: raw.length, annotations: { [Annotation.imageName]: legacyRef } },
    ],
  });
  await importLayout(d, createOciLayoutTar(layoutIndex, blobs));
  await d.ctr(["images", "label", legacyRef, `${Annotation.checkpointLabel}=true`]);
  const target = await imageTarget(d, legacyRef);
  if (target.digest !== legacyBlob.digest) {
    throw new Error(`legacy image ${legacyRef} points at ${target.digest}, expected ${legacyBlob.digest}`);
  }
  return { ref: legacyRef, digest: legacyBlob.digest, index: legacy, raw, dockerManifestDigest };
}

/** Writes a layout tar to the daemon's tmp dir and `ctr images import --no-unpack`s it. */
async function importLayout(d: PrivateContainerd, tar: Buffer, namespace?: string): Promise<void> {
  const file = path.join(d.dir, `import-${crypto.randomBytes(6).toString("hex")}.tar`);
  fs.writeFileSync(file, tar);
  try {
    await d.ctr(["images", "import", "--no-unpack", file], { namespace });
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** Options for {@link writeCustomIndex}. */
export interface CustomIndexOptions {
  /** Media type of the image record's target (default: OCI index). */
  targetMediaType?: string;
  /** Namespace (default: the daemon's). */
  namespace?: string;
}

/** A platform no host matches: keeps `ctr images import` from walking (and parsing) the entry. */
const NO_WALK_PLATFORM = { architecture: "none", os: "harness-no-walk" };

/**
 * Creates image `ref` whose target is an arbitrary blob (`index`: object →
 * JSON, string → raw bytes, may be invalid JSON), plus `extraBlobs` in the
 * content store, kept alive by GC labels on the index blob.
 *
 * How (ctr 1.6 has no `images create`): the blobs go into an OCI layout tar
 * whose index.json names `ref` with a platform that matches no host, so
 * `ctr images import --no-unpack` creates the image record without parsing
 * the target (plus an unnamed anchor blob, because import refuses a walk
 * that finds no children). Extra blobs are imported as temporary images in the same tar,
 * then referenced with `ctr content label <index> containerd.io/gc.ref.content.harness.<i>=<digest>`
 * and the temporary images are deleted. The image target carries the
 * `io.containerd.image.name` annotation (import always sets it).
 */
export async function writeCustomIndex(
  d: PrivateContainerd,
  ref: string,
  index: object | string,
  extraBlobs: Buffer[] = [],
  opts: CustomIndexOptions = {},
): Promise<ImageRef> {
  const ns = opts.namespace;
  const indexBlob = blob(typeof index === "string" ? index : JSON.stringify(index));
  const extras = extraBlobs.map((b) => blob(b));
  const tempPrefix = `harness-tmp/${crypto.randomBytes(4).toString("hex")}`;
  // `images import` fails with "image might be filtered out" unless the walk
  // finds at least one child: an unnamed, unparsed anchor entry provides it
  // (it has no image record, so GC removes it after the import).
  const anchor = blob("harness-import-anchor\n");
  const layoutIndex = JSON.stringify({
    schemaVersion: 2,
    manifests: [
      {
        mediaType: opts.targetMediaType ?? MediaType.ociIndex,
        digest: indexBlob.digest,
        size: indexBlob.data.length,
        annotations: { [Annotation.imageName]: ref },
        platform: NO_WALK_PLATFORM,
      },
      ...extras.map((e, i) => ({
        mediaType: "application/octet-stream",
        digest: e.digest,
        size: e.data.length,
        annotations: { [Annotation.imageName]: `${tempPrefix}:extra${i}` },
        platform: NO_WALK_PLATFORM,
      })),
      { mediaType: "application/octet-stream", digest: anchor.digest, size: anchor.data.length },
    ],
  });
  await importLayout(d, createOciLayoutTar(layoutIndex, [indexBlob, ...extras, anchor]), ns);
  if (extras.length > 0) {
    const labels = extras.map((e, i) => `containerd.io/gc.ref.content.harness.${i}=${e.digest}`);
    await d.ctr(["content", "label", indexBlob.digest, ...labels], { namespace: ns });
    await d.ctr(["images", "rm", ...extras.map((_, i) => `${tempPrefix}:extra${i}`)], { namespace: ns });
  }
  return { ref, digest: indexBlob.digest };
}

/** Where ctr creates a stdio fifo dir per task it starts (and leaves it behind for a detached one). */
const FIFO_ROOT = "/run/containerd/fifo";

/** Names of the dirs in {@link FIFO_ROOT} (empty if it does not exist). */
export function fifoDirs(): Set<string> {
  try {
    return new Set(fs.readdirSync(FIFO_ROOT));
  } catch {
    return new Set();
  }
}

/**
 * Removes the stdio fifo dirs ctr left for the containers `ids`: the dirs in
 * {@link FIFO_ROOT} not in `before` (a {@link fifoDirs} taken before ctr ran)
 * whose entries all belong to one of `ids` (`<id>-stdin`, …). An empty dir is
 * left alone: it may be another ctr's that has not made its fifos yet.
 */
export function removeCtrFifos(before: Set<string>, ids: string[]): void {
  for (const name of fifoDirs()) {
    if (before.has(name)) continue;
    const dir = path.join(FIFO_ROOT, name);
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      continue;
    }
    if (entries.length > 0 && entries.every((f) => ids.some((id) => f.startsWith(`${id}-`)))) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The oracle restore: `ctr containers restore [--rw] [--live] ID REF`, then
 * removes the stdio fifo dir that ctr leaves in /run/containerd/fifo
 * (the restored task keeps its already-open fifo ends). Returns the new
 * task's pid (0 if there is no task, e.g. without `live`).
 */
export async function restoreWithCtr(
  d: PrivateContainerd,
  id: string,
  ref: string,
  opts: { rw?: boolean; live?: boolean; namespace?: string } = {},
): Promise<number> {
  const before = fifoDirs();
  const args = ["containers", "restore", ...((opts.rw ?? true) ? ["--rw"] : []), ...((opts.live ?? true) ? ["--live"] : []), id, ref];
  try {
    await d.ctr(args, { namespace: opts.namespace });
  } finally {
    removeCtrFifos(before, [id]);
  }
  const status = await taskStatus(d, id, opts.namespace);
  return status === undefined ? 0 : taskPid(d, id, opts.namespace);
}

/**
 * A copy of `checkpoint` whose CRIU image has garbage for its pstree image: it
 * untars fine, and CRIU's restore then fails (writing restore.log).
 */
export async function makeCorruptedCriuCheckpoint(d: PrivateContainerd, checkpoint: Checkpoint, ref: string): Promise<ImageRef> {
  const criuEntry = findEntry(checkpoint.index, MediaType.criuCheckpoint);
  if (!criuEntry) throw new Error(`${checkpoint.ref} has no CRIU image`);
  const corrupted = corruptCriuTar(await readContent(d, criuEntry.digest));
  const index = structuredClone(checkpoint.index);
  const criu = findEntry(index, MediaType.criuCheckpoint)!;
  criu.digest = sha256Digest(corrupted);
  criu.size = corrupted.length;
  return writeCustomIndex(d, ref, index, [corrupted]);
}

function corruptCriuTar(tar: Buffer): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "criu-corrupt-"));
  try {
    fs.writeFileSync(path.join(dir, "in.tar"), tar);
    fs.mkdirSync(path.join(dir, "img"));
    execFileSync("tar", ["-xf", path.join(dir, "in.tar"), "-C", path.join(dir, "img")]);
    fs.writeFileSync(path.join(dir, "img", "pstree.img"), Buffer.alloc(64, 0xab));
    execFileSync("tar", ["-cf", path.join(dir, "out.tar"), "-C", path.join(dir, "img"), "."]);
    return fs.readFileSync(path.join(dir, "out.tar"));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
