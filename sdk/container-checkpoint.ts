import * as pulumi from "@pulumi/pulumi";
import type { DaemonArgs } from "./daemon";
import { secretTls, withDaemonDefaults, withSecretTls } from "./daemon";
import { containerCheckpointProvider } from "./provider";

/** Arguments of a ContainerCheckpoint. A change makes a new checkpoint (replace), except TLS material and `insecure` (in place). */
export interface ContainerCheckpointArgs extends DaemonArgs {
  /** The running container to checkpoint. */
  containerId: pulumi.Input<string>;
  /**
   * Image name for the checkpoint. Default `checkpoint/<resource name>:<8 hex>`, the hex hashed from the
   * project, stack, resource name and the inputs that replace it (stable across updates, new for a replacement).
   */
  ref?: pulumi.Input<string>;
  /** Keep the container running after the checkpoint. Default true. */
  leaveRunning?: pulumi.Input<boolean>;
  /** Include the container's filesystem changes (rw layer). Default true. */
  includeRw?: pulumi.Input<boolean>;
}

/**
 * A checkpoint image of a running container (the modern containerd format, with
 * CRIU image, spec and rw layer), ready for `RestoredContainer` or `CheckpointCopy`.
 * Delete removes the image record; use the `retainOnDelete` resource option to keep it.
 *
 * ## Example Usage
 *
 * ```ts
 * const snapshot = new ContainerCheckpoint("app", { containerId: "app", address: "unix:///run/containerd/containerd.sock" });
 * const copy = new RestoredContainer("app-copy", { checkpoint: snapshot.ref });
 * ```
 */
export class ContainerCheckpoint extends pulumi.dynamic.Resource {
  /** The checkpoint image name. Generated ones are unknown during preview of a create (made by create). */
  declare readonly ref: pulumi.Output<string>;
  /** The checkpoint index digest (unknown during preview of a create). */
  declare readonly digest: pulumi.Output<string>;
  /** Size of the CRIU image (process memory and state) in bytes. */
  declare readonly criuImageBytes: pulumi.Output<number>;
  /** When the checkpoint was taken (ISO 8601). */
  declare readonly checkpointedAt: pulumi.Output<string>;
  /** Wall time of the checkpoint (the task paused for part of it), in milliseconds. */
  declare readonly durationMs: pulumi.Output<number>;

  constructor(name: string, given: ContainerCheckpointArgs, opts?: pulumi.CustomResourceOptions) {
    const args = withDaemonDefaults(given);
    super(
      containerCheckpointProvider,
      name,
      { ...args, tls: secretTls(args.tls), resourceName: name, owner: `${pulumi.getProject()}/${pulumi.getStack()}/${name}`, ref: args.ref, digest: undefined, criuImageBytes: undefined, checkpointedAt: undefined, durationMs: undefined },
      withSecretTls(opts, ["tls"]),
      "containerd",
      "ContainerCheckpoint",
    );
  }
}
