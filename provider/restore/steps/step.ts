import type { StepName } from "../../errors";
import type { Step } from "../../transaction";
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

/** What a preview shows of one step: plain data. */
export type StepDetails = Record<string, string | number>;

/** How a step appears in a preview: its name and what it will use. */
export interface DescribedStep {
  readonly name: StepName;
  describe?(plan: RestorePlan, options: ResolvedRestoreOptions, namespace: string): StepDetails;
}

/** One containerd step of a restore, with the undo that reverses it and its preview. */
export type RestoreStep<Input, Output> = Step<Input, Output> & DescribedStep;
