/** The restore steps, one per file, each with its undo beside it. */
export { prepareSnapshot, type SnapshotToPrepare } from "./prepare-snapshot";
export { applyRwLayer } from "./apply-rw-layer";
export { createContainer, containerRecord, containerLabels, specForContainer } from "./create-container";
export { prepareCriuSnapshot, unpackCriuImage, removeCriuSnapshot, criuSnapshotKey, hostDirOf, CRIU_SNAPSHOT_PREFIX, type CriuSnapshot } from "./criu-snapshot";
export { createTask, type TaskToCreate } from "./create-task";
export { startTask, type TaskToStart } from "./start-task";
export type { DescribedStep, ResolvedRestoreOptions, RestoreStep, StepDetails } from "./step";
