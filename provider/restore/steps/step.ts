import type { ContainerdClient } from "../../containerd/client";
import type { Mount } from "../../containerd/types";
import type { StepName } from "../../errors";
import type { RestorePlan } from "../plan";

/** Restore options after defaults: what the steps read. */
export interface ResolvedRestoreOptions {
  id: string;
  live: boolean;
  restoreRw: boolean;
  labels: Record<string, string>;
  stopSignal?: string;
  logPath?: string;
  owner?: string;
}

/** The one object every step reads and fills in. */
export interface RestoreContext {
  readonly client: ContainerdClient;
  readonly plan: RestorePlan;
  readonly options: ResolvedRestoreOptions;
  /** The lease protecting the snapshot until the container references it. */
  lease?: string;
  /** The rootfs mounts of the prepared snapshot. */
  mounts?: Mount[];
  pid?: number;
  /** CRIU's work directory for a live restore on a local daemon, made by create-task. */
  criuWorkDir?: string;
}

/** One containerd step of a restore, with the undo that reverses it. */
export interface RestoreStep {
  readonly name: StepName;
  /** What the step will use, for a preview; plain data. */
  describe?(plan: RestorePlan, options: ResolvedRestoreOptions, namespace: string): Record<string, string | number>;
  run(ctx: RestoreContext): Promise<void>;
  undo?(ctx: RestoreContext): Promise<void>;
}
