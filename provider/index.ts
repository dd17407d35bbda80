/**
 * The library: restore containers from containerd checkpoints without Pulumi.
 *
 *   const client = connect("unix:///run/containerd/containerd.sock", { namespace: "default" });
 *   const plan = await planRestore(client, "checkpoint/app:v1");
 *   const { pid } = await restore(client, plan, { id: "app-restored" });
 *   await teardown(client, "app-restored", { graceMs: 5000 });
 */
export { connect, parseAddress, ContainerdClient, ContainerdError, isContainerdError, DEFAULT_ADDRESS, DEFAULT_NAMESPACE } from "./containerd";
export type { ConnectOptions, TlsOptions, ContainerdErrorCode, Descriptor } from "./containerd";
export { planRestore, assertPlanSupports } from "./restore/plan";
export { daemonVersion, parseDaemonVersion, assertSupportedVersion, MIN_DAEMON_VERSION } from "./containerd/version";
export type { DaemonVersion } from "./containerd/version";
export type { RestorePlan, PlanRequirements } from "./restore/plan";
export { restore, restoreSteps, describeRestore } from "./restore/restore";
export { invalidIdReason, MAX_ID_LENGTH } from "./restore/identifiers";
export type { RestoreOptions, RestoreResult, StepTiming, StepDescription } from "./restore/restore";
export { teardown } from "./restore/teardown";
export type { TeardownOptions, TeardownResult } from "./restore/teardown";
export { inspect, updateLabels } from "./restore/inspect";
export type { ContainerState, ContainerStatus } from "./restore/inspect";
export { RestoreError } from "./errors";
export type { RestoreErrorCode, StepName } from "./errors";
export { Label } from "./restore/labels";
export type { CheckpointFormat } from "./checkpoint/decode";
export { checkpointContainer } from "./checkpoint/create";
export type { CheckpointOptions, CheckpointResult } from "./checkpoint/create";
export { copyCheckpoint } from "./transfer/copy";
export type { CopyOptions, CopyResult } from "./transfer/copy";
export { imageDigest, removeImage } from "./checkpoint/images";
