/**
 * The library: restore containers from containerd checkpoints without Pulumi.
 *
 *   const client = connect("unix:///run/containerd/containerd.sock", { namespace: "default" });
 *   const plan = await planRestore(client, "checkpoint/app:v1");
 *   const { pid } = await restore(client, plan, { id: "app-restored" });
 *   await teardown(client, "app-restored", { graceMs: 5000 });
 *
 * Its surface is the verbs, their plan, result and state types, and the errors.
 * Raw daemon calls (`client.call`, codecs, address parsing) are the containerd
 * layer's, at the `pulumi-containerd-restore/containerd` subpath.
 */
export { connect, ContainerdError, isContainerdError, DEFAULT_ADDRESS, DEFAULT_NAMESPACE } from "./containerd";
export type { ContainerdClient, ConnectOptions, TlsOptions, ContainerdErrorCode, Descriptor } from "./containerd";
export { planRestore, restore, describeRestore, teardown, inspect, updateLabels, Label } from "./restore";
export type {
  RestorePlan,
  PlanRequirements,
  RestoreOptions,
  RestoreResult,
  StepTiming,
  StepDescription,
  TeardownOptions,
  TeardownResult,
  ContainerState,
  ContainerStatus,
} from "./restore";
export { checkpointContainer, imageDigest, removeImage } from "./checkpoint";
export type { CheckpointFormat, CheckpointOptions, CheckpointResult, RuntimeOptions } from "./checkpoint";
export { copyCheckpoint } from "./transfer";
export type { BlobCopied, CopyOptions, CopyResult } from "./transfer";
export { RestoreError, CleanupError } from "./errors";
export type { RestoreErrorCode, StepName, PolicyViolation } from "./errors";
export { evaluatePolicy, summaryLines, allowanceProblems } from "./policy";
export type { Allowances, RestorePolicy, SecuritySummary, PolicyInput, PolicyResult } from "./policy";
export { daemonVersion, MIN_DAEMON_VERSION } from "./restore";
export type { DaemonVersion } from "./restore";
