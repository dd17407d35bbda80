export { RestoredContainer } from "./restored-container";
export type { RestoredContainerArgs, RestoreStepPlan } from "./restored-container";
export * from "../provider/index";
