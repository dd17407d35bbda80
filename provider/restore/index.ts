/** Restoring containers from checkpoints: plan, restore, inspect, update labels, tear down. */
export { planRestore, assertPlanSupports, type PlanRequirements, type RestorePlan } from "./plan";
export {
  describeRestore,
  resolveOptions,
  restore,
  restoreSteps,
  type RestoreOptions,
  type RestoreResult,
  type StepDescription,
  type StepTiming,
} from "./restore";
export { teardown, signalNumber, type TeardownOptions, type TeardownResult } from "./teardown";
export { inspect, updateLabels, type ContainerState, type ContainerStatus } from "./inspect";
export { Label, isReservedLabel } from "../labels";
export { MAX_ID_LENGTH, invalidIdReason, invalidLogPathReason, invalidSignalReason, reservedLabelIn } from "./rules";
export { daemonVersion, parseDaemonVersion, assertSupportedVersion, MIN_DAEMON_VERSION, type DaemonVersion } from "./daemon-version";
