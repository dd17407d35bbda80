import { isContainerdError, unlessNotFound, type ContainerdClient, type Descriptor } from "../containerd";
import { RestoreError } from "../errors";
import { Label } from "../labels";

/**
 * The image names a copy writes on the target, checked before anything is
 * written there: a copy never moves an existing name to other content.
 *
 * - The checkpoint's ref: absent, already at the checkpoint's digest (a
 *   repeated copy), or written by a copy for the same `owner` (its
 *   `containerd-restore/owner` label: Pulumi's create-before-delete replacement
 *   of a copy to the same ref). Otherwise it is refused (`target-ref-exists`)
 *   unless `overwrite` (the caller takes that name over, and deleting the copy
 *   later removes it).
 * - The base image's name (from the checkpoint's index: untrusted, it could say
 *   `docker.io/library/alpine:latest` or `victim/app:prod`): created only when
 *   the target has no image of that name. Never re-pointed, `overwrite` or not.
 *   When the name is there at another digest and the checkpoint resolves its
 *   base image by name (containerd ≥ 1.3 checkpoints), a restore on the target
 *   would run on another filesystem: refused (`target-ref-exists`, subject
 *   `baseImage`) rather than copied into a checkpoint that cannot restore right.
 */
export interface TargetRefs {
  /** The checkpoint's image name on the target. */
  targetRef: string;
  /** The checkpoint index descriptor. */
  checkpoint: Descriptor;
  baseImage: { name: string; target: Descriptor; resolvedByName: boolean };
  overwrite?: boolean;
  /** Who the copy is for: recorded on the target ref (label `containerd-restore/owner`); a ref this owner's copy wrote may be moved. */
  owner?: string;
}

export interface TargetRefsPlan {
  /** The target has no image named like the base image: the copy creates it. */
  createBaseImage: boolean;
}

interface Existing {
  digest: string;
  owner?: string;
}

async function existingImage(client: ContainerdClient, name: string): Promise<Existing | undefined> {
  const found = await unlessNotFound(client.call("images.Get", { name }));
  return found && { digest: found.image.target.digest, owner: found.image.labels?.[Label.owner] };
}

/** Checks the names a copy will write on `target` (see {@link TargetRefs}); changes nothing. */
export async function checkTargetRefs(target: ContainerdClient, refs: TargetRefs): Promise<TargetRefsPlan> {
  const [existing, baseImage] = await Promise.all([existingImage(target, refs.targetRef), existingImage(target, refs.baseImage.name)]);
  if (existing !== undefined && !mayMove(refs, existing)) throw refExists(target, refs.targetRef, existing.digest, refs.checkpoint.digest);
  const base = baseImage?.digest;
  if (base !== undefined && base !== refs.baseImage.target.digest && refs.baseImage.resolvedByName) {
    throw new RestoreError(
      "target-ref-exists",
      `base image ${refs.baseImage.name} (named by the checkpoint) is already on the target daemon (${target.address}, namespace ${target.namespace}) as ${base}, ` +
        `not ${refs.baseImage.target.digest} as on the source: the copy never re-points an existing image, and a restore there would run on another filesystem; ` +
        `make the target's ${refs.baseImage.name} the same image, or copy to a namespace without it`,
      { subject: "baseImage" },
    );
  }
  return { createBaseImage: base === undefined };
}

/** Whether the checkpoint's ref may be set while it names `existing`. */
const mayMove = (refs: Pick<TargetRefs, "checkpoint" | "overwrite" | "owner">, existing: Existing): boolean =>
  existing.digest === refs.checkpoint.digest || refs.overwrite === true || (refs.owner !== undefined && existing.owner === refs.owner);

function refExists(target: ContainerdClient, name: string, existing: string, wanted: string): RestoreError {
  return new RestoreError(
    "target-ref-exists",
    `target ref ${name} already exists on the target daemon (${target.address}, namespace ${target.namespace}) as ${existing}, not the checkpoint ${wanted}: ` +
      `choose another target ref, or set overwrite: true to move it to the checkpoint`,
    { subject: "targetRef" },
  );
}

/**
 * Points the checkpoint's ref at the checkpoint: creates it; when it exists (a
 * repeated copy, or one made since the check), it is left if it already names the
 * checkpoint, moved only with `overwrite`, refused otherwise.
 */
export async function putCheckpointRef(target: ContainerdClient, refs: Pick<TargetRefs, "targetRef" | "checkpoint" | "overwrite" | "owner">): Promise<void> {
  const { targetRef: name, checkpoint } = refs;
  const labels = refs.owner !== undefined ? { [Label.owner]: refs.owner } : undefined;
  try {
    await target.call("images.Create", { image: { name, target: checkpoint, ...(labels ? { labels } : {}) } });
    return;
  } catch (err) {
    if (!isContainerdError(err, "already-exists")) throw err;
  }
  const existing = await existingImage(target, name);
  if (existing?.digest === checkpoint.digest) return;
  if (existing !== undefined && !mayMove(refs, existing)) throw refExists(target, name, existing.digest, checkpoint.digest);
  const paths = ["target", ...(labels ? [`labels.${Label.owner}`] : [])];
  await target.call("images.Update", { image: { name, target: checkpoint, ...(labels ? { labels } : {}) }, updateMask: { paths } });
}

/** Creates the base image record when the name is absent; one that appeared meanwhile is left as it is. True when created. */
export async function createImageIfAbsent(target: ContainerdClient, name: string, descriptor: Descriptor): Promise<boolean> {
  try {
    await target.call("images.Create", { image: { name, target: descriptor } });
    return true;
  } catch (err) {
    if (isContainerdError(err, "already-exists")) return false;
    throw err;
  }
}
