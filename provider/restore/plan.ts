import { isContainerdError, type ContainerdClient, type Descriptor } from "../containerd";
import {
  MediaType,
  chainId,
  checkpointPlatform,
  readBaseImage,
  readCheckpointConfig,
  readCheckpointImage,
  type CheckpointFormat,
  type OciDescriptor,
  type RuntimeOptions,
} from "../checkpoint";
import { RestoreError, withDaemonErrors } from "../errors";
import { invalidIdReason } from "./rules";
import { assertHostPathsResolveInside, enforcePlanPolicy } from "./policy";
import type { RestorePolicy, SecuritySummary } from "../policy";
import { DAEMON_FACTS_TTL_MS, daemonVersion } from "./daemon-version";

/**
 * Everything a restore needs, resolved and checked against the daemon: plain data
 * (JSON-serializable), so a preview can show it and a restore can run it.
 */
export interface RestorePlan {
  checkpoint: { ref: string; digest: string; format: CheckpointFormat; schemaVersion: number };
  image: { name: string; manifestDigest: string; configDigest: string; diffIds: string[] };
  snapshotter: string;
  /** ChainID of the base image's layers: the committed snapshot the restore prepares on. */
  snapshotParent: string;
  runtime: { name: string; options?: RuntimeOptions };
  /** The checkpoint's rw layer (filesystem changes), if it was made with --rw. */
  rwLayer?: Descriptor;
  /** The CRIU image (process memory), if it was made with --task. */
  criuImage?: Descriptor;
  /** The checkpointed container's OCI runtime spec. */
  spec: Record<string, unknown>;
  /** What the checkpoint is granted on the host under the policy it was planned with (see the README's Trust section). */
  security: SecuritySummary;
  /** The daemon's version (Version service), e.g. `v2.4.2`; older than 1.6 is refused. */
  daemonVersion: string;
}

/** What the restore will need from the checkpoint, and the policy it runs under; checked at plan time. */
export interface PlanRequirements extends RestorePolicy {
  /** Restore process memory with CRIU (needs the CRIU image). Default true. */
  live?: boolean;
  /** Apply the checkpoint's rw layer (needs it). Default true. */
  restoreRw?: boolean;
}

const toDescriptor = (d: OciDescriptor): Descriptor => ({
  mediaType: d.mediaType,
  digest: d.digest,
  size: d.size,
  ...(d.annotations ? { annotations: d.annotations } : {}),
});

/** Snapshotters a client's daemon was seen to have loaded, and when: plugins load only at daemon start. */
const loadedSnapshotters = new WeakMap<ContainerdClient, Map<string, number>>();

async function assertSnapshotterLoaded(client: ContainerdClient, snapshotter: string): Promise<void> {
  const seen = loadedSnapshotters.get(client) ?? new Map<string, number>();
  const at = seen.get(snapshotter);
  if (at !== undefined && performance.now() - at < DAEMON_FACTS_TTL_MS) return;
  const { plugins } = await client.call("introspection.Plugins", {
    filters: [`type==io.containerd.snapshotter.v1,id==${snapshotter}`],
  });
  const plugin = plugins[0];
  const initError = plugin?.initErr?.message;
  if (!plugin || initError) {
    throw new RestoreError(
      "snapshotter-unavailable",
      `snapshotter ${snapshotter} (recorded in the checkpoint) is ${initError ? `not usable on this daemon: ${initError}` : "not loaded on this daemon"}`,
      { subject: "snapshotter" },
    );
  }
  seen.set(snapshotter, performance.now());
  loadedSnapshotters.set(client, seen);
}

async function assertParentSnapshot(client: ContainerdClient, plan: Pick<RestorePlan, "snapshotter" | "snapshotParent" | "image">): Promise<void> {
  if (!plan.snapshotParent) return;
  try {
    await client.call("snapshots.Stat", { snapshotter: plan.snapshotter, key: plan.snapshotParent });
  } catch (err) {
    if (!isContainerdError(err, "not-found")) throw err;
    throw new RestoreError(
      "base-image-not-unpacked",
      `base image ${plan.image.name} is not unpacked in snapshotter ${plan.snapshotter} (parent snapshot ${plan.snapshotParent} is missing): run \`ctr -n ${client.namespace} images unpack --snapshotter ${plan.snapshotter} ${plan.image.name}\``,
      { subject: "image", cause: err },
    );
  }
}

/** Checks that `plan` can do what `requirements` ask, before any side effect. */
export function assertPlanSupports(plan: Pick<RestorePlan, "checkpoint" | "criuImage" | "rwLayer">, requirements: PlanRequirements): void {
  const ref = `${plan.checkpoint.ref}@${plan.checkpoint.digest}`;
  if ((requirements.live ?? true) && !plan.criuImage) {
    throw new RestoreError(
      "no-criu-image",
      `checkpoint ${ref} was made without --task: no CRIU image (${MediaType.criuImage}), live restore impossible; use live: false for a filesystem-only restore`,
      { subject: "live" },
    );
  }
  if ((requirements.restoreRw ?? true) && !plan.rwLayer) {
    throw new RestoreError(
      "no-rw-layer",
      `checkpoint ${ref} was made without --rw: it has no rw layer; use restoreRw: false to restore on the bare base image`,
      { subject: "restoreRw" },
    );
  }
}

/**
 * Reads checkpoint `ref` from the daemon and resolves everything a restore needs:
 * format, base image and snapshot parent, snapshotter, runtime, rw layer, CRIU
 * image and spec. Read-only: safe in `pulumi preview`. Throws RestoreError.
 */
export const planRestore = withDaemonErrors(async function planRestore(
  client: ContainerdClient,
  ref: string,
  requirements: PlanRequirements = {},
): Promise<RestorePlan> {
  // containerd's namespace rule; checked here, as the daemon's answer is untyped
  // and grpc-js throws a plain Error for a non-ASCII header value.
  const namespaceProblem = invalidIdReason(client.namespace);
  if (namespaceProblem) {
    throw new RestoreError("invalid-option", `namespace "${client.namespace}" ${namespaceProblem} (containerd's rule for namespaces)`, { subject: "namespace" });
  }
  // First: a daemon older than 1.6 is refused before its answers are read.
  const { version } = await daemonVersion(client);
  const checkpoint = await readCheckpointImage(client, ref);
  const { index, target } = checkpoint;
  const { config, remember } = await readCheckpointConfig(client, checkpoint);
  const [base] = await Promise.all([readBaseImage(client, index, checkpointPlatform(index)), assertSnapshotterLoaded(client, index.snapshotter)]);
  remember();
  const plan: Omit<RestorePlan, "security"> = {
    checkpoint: { ref, digest: target.digest, format: index.format, schemaVersion: index.schemaVersion },
    image: { name: index.imageName, manifestDigest: base.manifest.digest, configDigest: base.config.digest, diffIds: base.diffIds },
    snapshotter: index.snapshotter,
    snapshotParent: chainId(base.diffIds),
    runtime: { name: index.runtime, ...(config.runtimeOptions ? { options: config.runtimeOptions } : {}) },
    ...(index.rwLayer ? { rwLayer: toDescriptor(index.rwLayer) } : {}),
    ...(index.criuImage ? { criuImage: toDescriptor(index.criuImage) } : {}),
    spec: structuredClone(config.spec),
    daemonVersion: version,
  };
  // The policy first: a refused checkpoint is refused whatever else is wrong with it.
  const security = enforcePlanPolicy(plan, requirements);
  if (!client.address.startsWith("tcp://")) await assertHostPathsResolveInside(plan, requirements);
  await assertParentSnapshot(client, plan);
  assertPlanSupports(plan, requirements);
  return { ...plan, security };
});
