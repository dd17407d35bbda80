import type { ContainerdClient } from "../containerd/client";
import { isContainerdError, unlessNotFound } from "../containerd/errors";
import type { Descriptor } from "../containerd/types";
import { RestoreError } from "../errors";

/**
 * The image names a copy writes on the target, checked before anything is
 * written there: a copy never moves an existing name to other content.
 *
 * - The checkpoint's ref: absent, or already at the checkpoint's digest (a
 *   repeated copy). At another digest it is refused (`target-ref-exists`) unless
 *   `overwrite` (the caller takes that name over, and deleting the copy later
 *   removes it).
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
  /** The digest of the copy this one replaces: the target ref may be moved from it (Pulumi's create-before-delete of a copy to the same ref). */
  replaces?: string;
}

export interface TargetRefsPlan {
  /** The target has no image named like the base image: the copy creates it. */
  createBaseImage: boolean;
}

async function targetDigest(client: ContainerdClient, name: string): Promise<string | undefined> {
  return (await unlessNotFound(client.call("images.Get", { name })))?.image.target.digest;
}

/** Checks the names a copy will write on `target` (see {@link TargetRefs}); changes nothing. */
export async function checkTargetRefs(target: ContainerdClient, refs: TargetRefs): Promise<TargetRefsPlan> {
  const [existing, base] = await Promise.all([targetDigest(target, refs.targetRef), targetDigest(target, refs.baseImage.name)]);
  if (existing !== undefined && !mayMove(refs, existing)) throw refExists(target, refs.targetRef, existing, refs.checkpoint.digest);
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
const mayMove = (refs: Pick<TargetRefs, "checkpoint" | "overwrite" | "replaces">, existing: string): boolean =>
  existing === refs.checkpoint.digest || refs.overwrite === true || (refs.replaces !== undefined && existing === refs.replaces);

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
export async function putCheckpointRef(target: ContainerdClient, refs: Pick<TargetRefs, "targetRef" | "checkpoint" | "overwrite" | "replaces">): Promise<void> {
  const { targetRef: name, checkpoint } = refs;
  try {
    await target.call("images.Create", { image: { name, target: checkpoint } });
    return;
  } catch (err) {
    if (!isContainerdError(err, "already-exists")) throw err;
  }
  const existing = await targetDigest(target, name);
  if (existing === checkpoint.digest) return;
  if (existing !== undefined && !mayMove(refs, existing)) throw refExists(target, name, existing, checkpoint.digest);
  await target.call("images.Update", { image: { name, target: checkpoint }, updateMask: { paths: ["target"] } });
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
