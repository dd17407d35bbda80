/** The transaction runner every write path (restore, checkpoint, copy) runs its steps with. */
export { runTransaction, Transaction } from "./runner";
export type { LeaseScope, Step, StepTiming, TransactionOutcome } from "./runner";
