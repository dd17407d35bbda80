import * as pulumi from "@pulumi/pulumi";
import type { DaemonArgs } from "./daemon";
import { endpointWithDefaults, secretEndpoint, withSecretTls } from "./daemon";
import { checkpointCopyProvider } from "./provider";

/** Arguments of a CheckpointCopy. A new endpoint or a new digest behind the source ref makes a new copy (replace); TLS material changes in place. */
export interface CheckpointCopyArgs {
  /** Where the checkpoint is: daemon and image ref. A new digest behind the ref copies again. */
  source: pulumi.Input<DaemonArgs & { ref: pulumi.Input<string> }>;
  /** Where it goes: daemon and (default the source's) image ref. */
  target: pulumi.Input<DaemonArgs & { ref?: pulumi.Input<string> }>;
  /**
   * When the target ref already exists on the target with another digest, move it to the
   * checkpoint (and delete it with this resource). Default false: the copy is refused. The base
   * image's name is never re-pointed. In place.
   */
  overwrite?: pulumi.Input<boolean>;
}

/**
 * A checkpoint copied from one containerd daemon to another: the index and every
 * blob it names, the base image when the target lacks it (unpacked into the
 * checkpoint's snapshotter), streamed Content.Read → Content.Write and checked by
 * digest; an interrupted copy resumes. Delete removes the checkpoint image on the
 * target (the base image stays).
 *
 * ## Example Usage
 *
 * ```ts
 * const moved = new CheckpointCopy("to-b", {
 *   source: { address: "unix:///run/containerd/containerd.sock", ref: "checkpoint/app:v1" },
 *   target: { address: "tcp://host-b:7443", tls: pulumi.secret({ ca, cert, key }) },
 * });
 * new RestoredContainer("app-on-b", { checkpoint: moved.targetRef, address: "tcp://host-b:7443", tls: pulumi.secret({ ca, cert, key }) });
 * ```
 */
export class CheckpointCopy extends pulumi.dynamic.Resource {
  /** The checkpoint image name on the target. */
  declare readonly targetRef: pulumi.Output<string>;
  /** The checkpoint index digest (the same on both daemons). */
  declare readonly digest: pulumi.Output<string>;
  /** Bytes streamed to the target when the copy was made. */
  declare readonly bytesMoved: pulumi.Output<number>;
  /** Blobs written to the target when the copy was made (those it already had are not counted). */
  declare readonly blobsCopied: pulumi.Output<number>;

  constructor(name: string, args: CheckpointCopyArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      checkpointCopyProvider,
      name,
      { ...args, source: secretEndpoint(endpointWithDefaults(args.source)), target: secretEndpoint(endpointWithDefaults(args.target)), resourceName: name, owner: `${pulumi.getProject()}/${pulumi.getStack()}/${name}`, targetRef: undefined, digest: undefined, bytesMoved: undefined, blobsCopied: undefined },
      withSecretTls(opts, ["source", "target"]),
      "containerd",
      "CheckpointCopy",
    );
  }
}
