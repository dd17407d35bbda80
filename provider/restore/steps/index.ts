/** The restore steps, one per file, each with its undo beside it. */
export { prepareSnapshot, type SnapshotToPrepare } from "./prepare-snapshot";
export { applyRwLayer } from "./apply-rw-layer";
export { createContainer, containerRecord, containerLabels, specForContainer } from "./create-container";
export { createTask, type TaskToCreate } from "./create-task";
export { startTask, type TaskToStart } from "./start-task";
export type { DescribedStep, ResolvedRestoreOptions, RestoreStep, StepDetails } from "./step";
