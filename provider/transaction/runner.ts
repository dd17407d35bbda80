import { closeLease, openLease, type ContainerdClient } from "../containerd";
import { CleanupError, RestoreError, daemonError, messageOf, type StepName } from "../errors";

/**
 * One change on the daemon and the undo that reverses it. `run` gets the client
 * to work with (leased inside a lease scope) and returns what later steps and
 * its own undo need: the output of one step is a typed input of the next.
 */
export interface Step<Input, Output> {
  readonly name: StepName;
  run(client: ContainerdClient, input: Input): Promise<Output>;
  /** Reverses `run`; absent when there is nothing to reverse (or a later undo covers it). */
  undo?(client: ContainerdClient, output: Output, input: Input): Promise<void>;
}

export interface StepTiming {
  step: StepName;
  ms: number;
}

/** A lease the work inside a scope is made under, as containerd's `WithLease`. */
export interface LeaseScope {
  id: string;
  /** How long the lease protects its work if the holder dies (default: containerd/leases.ts). */
  ttlMs?: number;
  /** Labels the lease carries (e.g. who holds it, so a teardown can tell a live restore from a crashed one). */
  labels?: Record<string, string>;
  /**
   * Resumable work: a failed transaction leaves the lease until it expires, so the
   * next try finds what this one wrote (a copy's ingests). Released on success.
   */
  keepOnFailure?: boolean;
}

/** What a transaction that finished returns. */
export interface TransactionOutcome<T> {
  value: T;
  /** Every step that ran, lease open and release included, in the order they started. */
  steps: StepTiming[];
  /**
   * Cleanup that failed although the work succeeded (a lease that could not be
   * released: it expires by itself). Finished work is never undone for it.
   */
  cleanupErrors: CleanupError[];
}

interface Undo {
  step: StepName;
  undo(): Promise<void>;
}

/** What one transaction did so far: undos newest last, timings, cleanup failures, failed steps, work still running. */
class Journal {
  readonly undos: Undo[] = [];
  readonly steps: StepTiming[] = [];
  readonly cleanupErrors: CleanupError[] = [];
  /** Work that runs alongside later steps (a lease release); the transaction ends only once it has. */
  readonly alongside: Promise<void>[] = [];
  /** The step each thrown error came from (errors are not ours to mutate). */
  readonly failedStep = new WeakMap<object, StepName>();

  constructor(
    /** The client undos run with: the caller's, never a lease that may be gone. */
    readonly client: ContainerdClient,
  ) {}

  async timed<T>(step: StepName, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    // Listed when it starts: a lease release runs alongside the steps after it.
    const timing: StepTiming = { step, ms: NaN };
    this.steps.push(timing);
    try {
      return await work();
    } catch (err) {
      if (typeof err === "object" && err !== null && !this.failedStep.has(err)) this.failedStep.set(err, step);
      throw err;
    } finally {
      timing.ms = performance.now() - started;
    }
  }

  /** Waits for the work running alongside (it never throws: its failures are cleanup errors). */
  async settle(): Promise<void> {
    while (this.alongside.length > 0) await Promise.all(this.alongside.splice(0));
  }

  /** Undoes everything done so far, newest first; returns every undo failure, never throws. */
  async rollback(): Promise<CleanupError[]> {
    const failures: CleanupError[] = [];
    for (let entry = this.undos.pop(); entry; entry = this.undos.pop()) {
      try {
        await entry.undo();
      } catch (err) {
        failures.push(new CleanupError(entry.step, err));
      }
    }
    return failures;
  }
}

/** The handle steps are run through; `client` is leased inside `withLease`. */
export class Transaction {
  /** @internal Use `runTransaction`. */
  constructor(
    readonly client: ContainerdClient,
    private readonly journal: Journal,
  ) {}

  /** Runs `step` with `input`; its undo is kept until the transaction ends. */
  async run<Input, Output>(step: Step<Input, Output>, input: Input): Promise<Output> {
    const output = await this.journal.timed(step.name, () => step.run(this.client, input));
    const { undo } = step;
    if (undo) this.journal.undos.push({ step: step.name, undo: () => undo.call(step, this.journal.client, output, input) });
    return output;
  }

  /**
   * Runs `body` under a new lease: opened first (step create-lease), released when
   * `body` is done (release-lease), while the transaction goes on: what follows
   * `body` must not need the lease. The transaction ends only after the release.
   * On failure the lease goes after every undo of the steps inside it (unless
   * `keepOnFailure`); a failed release after success is a cleanup error, not a
   * failure.
   */
  async withLease<T>(scope: LeaseScope, body: (leased: Transaction) => Promise<T>): Promise<T> {
    const { id } = scope;
    await this.journal.timed("create-lease", () => openLease(this.client, id, { ttlMs: scope.ttlMs, labels: scope.labels }));
    let held = true;
    const release = async () => {
      if (!held) return;
      held = false;
      await closeLease(this.client, id);
    };
    this.journal.undos.push({ step: "release-lease", undo: scope.keepOnFailure ? async () => {} : release });
    const value = await body(new Transaction(this.client.withLease(id), this.journal));
    this.journal.alongside.push(
      this.journal.timed("release-lease", release).catch((err: unknown) => {
        this.journal.cleanupErrors.push(new CleanupError("release-lease", err));
      }),
    );
    return value;
  }
}

/**
 * Runs `body`, a sequence of steps, as one transaction: when anything in it
 * fails, every finished step is undone in reverse, every undo failure is kept,
 * and one RestoreError names the step that failed, with the original error as
 * its cause.
 */
export async function runTransaction<T>(client: ContainerdClient, body: (tx: Transaction) => Promise<T>): Promise<TransactionOutcome<T>> {
  const journal = new Journal(client);
  try {
    const value = await body(new Transaction(client, journal));
    await journal.settle();
    return { value, steps: journal.steps, cleanupErrors: journal.cleanupErrors };
  } catch (err) {
    const step = typeof err === "object" && err !== null ? journal.failedStep.get(err) : undefined;
    await journal.settle();
    const cleanupErrors = [...journal.cleanupErrors, ...(await journal.rollback())];
    throw transactionError(step, err, cleanupErrors);
  }
}

/** The one error of a failed transaction: the step, the original error's code and message, what cleanup left. */
function transactionError(step: StepName | undefined, err: unknown, cleanupErrors: CleanupError[]): RestoreError {
  const mapped = daemonError(err);
  const known = mapped instanceof RestoreError ? mapped : undefined;
  const cleanup = cleanupErrors.length
    ? `; cleanup also failed, the daemon may hold leftovers: ${cleanupErrors.map((e) => e.message).join("; ")}`
    : "";
  return new RestoreError(known?.code ?? "daemon-error", `${step ? `${step}: ` : ""}${messageOf(err)}${cleanup}`, {
    step,
    subject: known?.subject,
    cause: err,
    restoreLog: known?.restoreLog,
    cleanupErrors,
  });
}
