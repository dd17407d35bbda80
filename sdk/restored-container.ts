import * as pulumi from "@pulumi/pulumi";
import { withSecretTls, type DaemonTls } from "./daemon";
import { restoredContainerProvider } from "./provider";
import type { Allowances, SecuritySummary } from "../provider/policy";

export type { Allowances as RestoreAllowances, SecuritySummary } from "../provider/policy";

/** One step of the restore, and what it uses (see `RestoredContainer.plan`). */
export type RestoreStepPlan = { step: string } & Record<string, string | number>;

/** Arguments of a RestoredContainer. Changing a field marked "replaces" restores a new container. */
export interface RestoredContainerArgs {
  /**
   * The checkpoint image in the daemon's image store: a tag (`checkpoint/app:v1`) or
   * `name@sha256:…`. Both containerd checkpoint formats are accepted (`ctr containers
   * checkpoint`, containerd ≥ 1.3, and `ctr tasks checkpoint` / containerd 1.0–1.2).
   * A new digest behind the ref (e.g. the tag moved) replaces the container.
   */
  checkpoint: pulumi.Input<string>;
  /**
   * Container id. Default: the resource name plus a random suffix. Fixing it makes
   * replacements delete the old container first (ids collide). Replaces.
   */
  name?: pulumi.Input<string>;
  /** containerd address: `unix:///path/containerd.sock` or `tcp://host:port`. Default the system socket. Replaces. */
  address?: pulumi.Input<string>;
  /** containerd namespace. Default `default`. Replaces. */
  namespace?: pulumi.Input<string>;
  /** Restore the process's memory with CRIU (default true); false restores the filesystem only and starts a fresh process. Replaces. */
  live?: pulumi.Input<boolean>;
  /** Apply the checkpoint's rw layer (the container's filesystem changes). Default true. Replaces. */
  restoreRw?: pulumi.Input<boolean>;
  /** Signal that stops the container on delete. Default SIGTERM. In place. */
  stopSignal?: pulumi.Input<string>;
  /** Seconds between the stop signal and SIGKILL on delete. Default 10. In place. */
  stopTimeoutSeconds?: pulumi.Input<number>;
  /** Container labels. In place. */
  labels?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Absolute path on the daemon host for the container's stdout and stderr. Default: discarded. Replaces. */
  logPath?: pulumi.Input<string>;
  /**
   * Mutual TLS for a `tcp://` address: PEM CA certificate, client certificate and key.
   * Pass them as `pulumi.secret(...)`; they are kept secret in state.
   */
  tls?: pulumi.Input<DaemonTls>;
  /** Allow plaintext `tcp://` (no TLS). Default false: plaintext TCP is refused at check. */
  insecure?: pulumi.Input<boolean>;
  /**
   * What the checkpoint may grant itself beyond an ordinary unprivileged container,
   * one category each (hooks, host namespaces, capabilities, host mounts, devices,
   * runtime options, runtimes, runtime annotations, new privileges, unconfined LSMs,
   * unmasked paths, sysctls). Everything else a checkpoint asks for is refused at
   * preview, naming the field and the allowance that would admit it. In place:
   * checked again on the next restore, never restarts a running container.
   */
  allow?: pulumi.Input<Allowances>;
  /** Admit everything the checkpoint asks for (what `ctr` does). Default false. In place. */
  privileged?: pulumi.Input<boolean>;
}

/**
 * A container restored from a containerd checkpoint, owned by the stack: created by
 * a checkpoint restore (CRIU brings the process back with its memory), refreshed
 * from the daemon, torn down on delete.
 *
 * ## Example Usage
 *
 * ```ts
 * import { RestoredContainer } from "pulumi-containerd-restore";
 *
 * const counter = new RestoredContainer("counter", {
 *   checkpoint: "checkpoint/counter:v1",
 *   address: "unix:///run/containerd/containerd.sock",
 * });
 * export const pid = counter.pid;
 * ```
 */
export class RestoredContainer extends pulumi.dynamic.Resource {
  /** The containerd container id. */
  declare readonly containerId: pulumi.Output<string>;
  /** Host pid of the restored process (0 when not running). */
  declare readonly pid: pulumi.Output<number>;
  /** Task status: `running`, `stopped`, `paused`, `created`, `no-task`… */
  declare readonly status: pulumi.Output<string>;
  /** Exit status when the task stopped. */
  declare readonly exitStatus: pulumi.Output<number | undefined>;
  /** The checkpoint index digest that was restored. */
  declare readonly checkpointDigest: pulumi.Output<string>;
  /** `modern` (containerd ≥ 1.3) or `legacy` (`ctr tasks checkpoint`). */
  declare readonly checkpointFormat: pulumi.Output<string>;
  /** The base image the checkpoint was made on. */
  declare readonly imageName: pulumi.Output<string>;
  declare readonly snapshotter: pulumi.Output<string>;
  /** The container's snapshot key (its rootfs). */
  declare readonly snapshotKey: pulumi.Output<string>;
  /** The containerd runtime, e.g. `io.containerd.runc.v2`. */
  declare readonly runtime: pulumi.Output<string>;
  /** Size of the CRIU image (process memory and state) in bytes. */
  declare readonly criuImageBytes: pulumi.Output<number>;
  /** When the restored task started (ISO 8601). */
  declare readonly restoredAt: pulumi.Output<string>;
  /** Wall time of the restore, in milliseconds. */
  declare readonly restoreDurationMs: pulumi.Output<number>;
  /** The ordered restore steps and what each uses (also shown by `pulumi preview`). */
  declare readonly plan: pulumi.Output<RestoreStepPlan[]>;
  /** What the checkpoint is granted on the host: user, host namespaces, extra capabilities, host mounts, devices, hooks, runtime options (also shown by `pulumi preview`). */
  declare readonly security: pulumi.Output<SecuritySummary>;
  /** The containerd version (its Version service) that restored the container, e.g. `v2.4.2` or `1.6.20~ds1`. */
  declare readonly daemonVersion: pulumi.Output<string>;

  constructor(name: string, args: RestoredContainerArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      restoredContainerProvider,
      name,
      {
        ...args,
        resourceName: name,
        owner: `${pulumi.getProject()}/${pulumi.getStack()}/${name}`,
        containerId: undefined,
        pid: undefined,
        status: undefined,
        exitStatus: undefined,
        checkpointDigest: undefined,
        checkpointFormat: undefined,
        imageName: undefined,
        snapshotter: undefined,
        snapshotKey: undefined,
        runtime: undefined,
        criuImageBytes: undefined,
        restoredAt: undefined,
        restoreDurationMs: undefined,
        plan: undefined,
        security: undefined,
        daemonVersion: undefined,
      },
      withSecretTls(opts, ["tls"]),
      "containerd",
      "RestoredContainer",
    );
  }
}
