export { RestoredContainer } from "./restored-container";
export type { RestoredContainerArgs, RestoreStepPlan, RestoreAllowances, SecuritySummary } from "./restored-container";
export { ContainerCheckpoint } from "./container-checkpoint";
export type { ContainerCheckpointArgs } from "./container-checkpoint";
export { CheckpointCopy } from "./checkpoint-copy";
export type { CheckpointCopyArgs } from "./checkpoint-copy";
export type { DaemonArgs, DaemonTls } from "./daemon";
