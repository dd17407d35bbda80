import type { ContainerdClient } from "../containerd/client";
import { unlessNotFound } from "../containerd/errors";
import { daemonError } from "../errors";

/** The target digest of image `name`, or undefined when there is no such image. */
export async function imageDigest(client: ContainerdClient, name: string): Promise<string | undefined> {
  try {
    return (await unlessNotFound(client.call("images.Get", { name })))?.image.target.digest;
  } catch (err) {
    throw daemonError(err);
  }
}

/** Removes image record `name` (its content goes to containerd's GC); false when it was already gone. */
export async function removeImage(client: ContainerdClient, name: string): Promise<boolean> {
  try {
    return (await unlessNotFound(client.call("images.Delete", { name }))) !== undefined;
  } catch (err) {
    throw daemonError(err);
  }
}
