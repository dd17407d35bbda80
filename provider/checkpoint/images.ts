import { unlessNotFound, type ContainerdClient } from "../containerd";
import { withDaemonErrors } from "../errors";

/** The target digest of image `name`, or undefined when there is no such image. */
export const imageDigest = withDaemonErrors(async function imageDigest(client: ContainerdClient, name: string): Promise<string | undefined> {
  return (await unlessNotFound(client.call("images.Get", { name })))?.image.target.digest;
});

/** Removes image record `name` (its content goes to containerd's GC); false when it was already gone. */
export const removeImage = withDaemonErrors(async function removeImage(client: ContainerdClient, name: string): Promise<boolean> {
  return (await unlessNotFound(client.call("images.Delete", { name }))) !== undefined;
});
