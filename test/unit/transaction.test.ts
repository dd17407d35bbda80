/** The transaction runner: order, undo, undo failures, the lease scope, the cause. No daemon. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ContainerdClient } from "../../provider/containerd";
import { CleanupError, RestoreError, type StepName } from "../../provider/errors";
import { runTransaction, type Step } from "../../provider/transaction";
import { daemonFailure, fakeDaemon, restoreErrorOf } from "./fake-client";

/** A step that records its run and undo in `journal`, failing where told. */
function recordingStep<I, O>(
  name: StepName,
  journal: string[],
  behaviour: { output?: O; fail?: unknown; failUndo?: unknown; noUndo?: boolean } = {},
): Step<I, O> {
  return {
    name,
    async run(client: ContainerdClient, input: I) {
      journal.push(`run ${name}${client.lease ? " (leased)" : ""} ${JSON.stringify(input)}`);
      if (behaviour.fail) throw behaviour.fail;
      return behaviour.output as O;
    },
    ...(behaviour.noUndo
      ? {}
      : {
          async undo(_client: ContainerdClient, output: O) {
            journal.push(`undo ${name} ${JSON.stringify(output)}`);
            if (behaviour.failUndo) throw behaviour.failUndo;
          },
        }),
  };
}

describe("transaction runner", () => {
  test("each step's output is the next one's input, and every step is timed in order", async () => {
    const journal: string[] = [];
    const { client } = fakeDaemon();
    const prepare = recordingStep<{ key: string }, { mounts: string[] }>("prepare-snapshot", journal, { output: { mounts: ["m1"] } });
    const start = recordingStep<{ mounts: string[] }, { pid: number }>("start-task", journal, { output: { pid: 42 } });
    const outcome = await runTransaction(client, async (tx) => {
      const { mounts } = await tx.run(prepare, { key: "c1" });
      return tx.run(start, { mounts });
    });
    assert.deepEqual(outcome.value, { pid: 42 });
    assert.deepEqual(journal, ['run prepare-snapshot {"key":"c1"}', 'run start-task {"mounts":["m1"]}']);
    assert.deepEqual(outcome.steps.map((s) => s.step), ["prepare-snapshot", "start-task"]);
    assert.deepEqual(outcome.cleanupErrors, []);
  });

  test("a failed step undoes the finished ones newest first, with the outputs they returned", async () => {
    const journal: string[] = [];
    const { client } = fakeDaemon();
    const err = await restoreErrorOf(
      runTransaction(client, async (tx) => {
        await tx.run(recordingStep("prepare-snapshot", journal, { output: "snapshot" }), {});
        await tx.run(recordingStep("create-container", journal, { output: "container" }), {});
        await tx.run(recordingStep("create-task", journal, { fail: daemonFailure("internal", "tasks.Create") }), {});
      }),
    );
    assert.deepEqual(journal.slice(3), ['undo create-container "container"', 'undo prepare-snapshot "snapshot"']);
    assert.equal(err.step, "create-task");
    assert.deepEqual(err.cleanupErrors, []);
  });

  test("the failed step itself is not undone; steps without undo are passed over", async () => {
    const journal: string[] = [];
    const { client } = fakeDaemon();
    await restoreErrorOf(
      runTransaction(client, async (tx) => {
        await tx.run(recordingStep("prepare-snapshot", journal, { output: 1 }), {});
        await tx.run(recordingStep("apply-rw-layer", journal, { noUndo: true }), {});
        await tx.run(recordingStep("create-container", journal, { fail: new Error("boom") }), {});
      }),
    );
    assert.deepEqual(journal.filter((line) => line.startsWith("undo")), ["undo prepare-snapshot 1"]);
  });

  test("every undo failure is kept, in undo order, and the other undos still run", async () => {
    const journal: string[] = [];
    const { client } = fakeDaemon();
    const err = await restoreErrorOf(
      runTransaction(client, async (tx) => {
        await tx.run(recordingStep("prepare-snapshot", journal, { output: 1, failUndo: new Error("snapshot busy") }), {});
        await tx.run(recordingStep("create-container", journal, { output: 2 }), {});
        await tx.run(recordingStep("create-task", journal, { output: 3, failUndo: daemonFailure("unavailable", "tasks.Delete") }), {});
        await tx.run(recordingStep("start-task", journal, { fail: new Error("start failed") }), {});
      }),
    );
    assert.deepEqual(journal.filter((line) => line.startsWith("undo")), ["undo create-task 3", "undo create-container 2", "undo prepare-snapshot 1"]);
    assert.deepEqual(err.cleanupErrors.map((e) => e.step), ["create-task", "prepare-snapshot"]);
    assert.ok(err.cleanupErrors.every((e) => e instanceof CleanupError));
    assert.match(err.message, /^start-task: start failed; cleanup also failed, the daemon may hold leftovers: create-task: .*; prepare-snapshot: snapshot busy$/);
  });

  test("the original error is the cause, its code and subject survive, and the step names it", async () => {
    const { client } = fakeDaemon();
    const original = new RestoreError("id-in-use", "id c1 is in use", { subject: "id" });
    const err = await restoreErrorOf(runTransaction(client, (tx) => tx.run(recordingStep("prepare-snapshot", [], { fail: original }), {})));
    assert.equal(err.cause, original);
    assert.equal(err.code, "id-in-use");
    assert.equal(err.subject, "id");
    assert.equal(err.message, "prepare-snapshot: id c1 is in use");
  });

  test("a daemon that is gone maps to daemon-unreachable; any other daemon error to daemon-error", async () => {
    const { client } = fakeDaemon();
    const gone = await restoreErrorOf(runTransaction(client, (tx) => tx.run(recordingStep("create-task", [], { fail: daemonFailure("unavailable", "tasks.Create") }), {})));
    assert.equal(gone.code, "daemon-unreachable");
    assert.ok(gone.cause instanceof Error && gone.cause.name === "ContainerdError");
    const broken = await restoreErrorOf(runTransaction(client, (tx) => tx.run(recordingStep("create-task", [], { fail: daemonFailure("internal", "tasks.Create") }), {})));
    assert.equal(broken.code, "daemon-error");
  });

  test("an error between steps undoes what ran and names no step", async () => {
    const journal: string[] = [];
    const { client } = fakeDaemon();
    const err = await restoreErrorOf(
      runTransaction(client, async (tx) => {
        await tx.run(recordingStep("prepare-snapshot", journal, { output: 1 }), {});
        throw new RestoreError("incomplete-checkpoint", "no CRIU image");
      }),
    );
    assert.equal(err.step, undefined);
    assert.equal(err.code, "incomplete-checkpoint");
    assert.equal(err.message, "no CRIU image");
    assert.deepEqual(journal.filter((line) => line.startsWith("undo")), ["undo prepare-snapshot 1"]);
  });
});

describe("the lease scope", () => {
  test("opens the lease, hands the steps a leased client, releases it when the scope ends", async () => {
    const journal: string[] = [];
    const fake = fakeDaemon();
    const outcome = await runTransaction(fake.client, async (tx) => {
      await tx.withLease({ id: "l1" }, (leased) => leased.run(recordingStep("prepare-snapshot", journal, { output: 1 }), {}));
      await tx.run(recordingStep("create-task", journal, { output: 2 }), {});
    });
    assert.deepEqual(journal, ["run prepare-snapshot (leased) {}", "run create-task {}"]);
    assert.deepEqual(fake.log(), ["leases.Create", "leases.Delete"]);
    assert.deepEqual(outcome.steps.map((s) => s.step), ["create-lease", "prepare-snapshot", "release-lease", "create-task"]);
  });

  test("the release runs alongside the next step, and the transaction ends only after it", async () => {
    const order: string[] = [];
    let releaseLease!: () => void;
    const fake = fakeDaemon({
      "leases.Delete": () =>
        new Promise((resolve) => {
          releaseLease = () => {
            order.push("lease released");
            resolve({});
          };
        }),
    });
    const outcome = await runTransaction(fake.client, async (tx) => {
      setTimeout(() => releaseLease(), 15);
      await tx.withLease({ id: "l1" }, async () => undefined);
      order.push("next step began");
      return "done";
    }).then((o) => {
      order.push("transaction ended");
      return o;
    });
    assert.equal(outcome.value, "done");
    assert.deepEqual(order, ["next step began", "lease released", "transaction ended"]);
  });

  test("on failure the steps inside are undone first, then the lease goes", async () => {
    const order: string[] = [];
    const fake = fakeDaemon({
      "leases.Delete": () => {
        order.push("release lease");
        return {};
      },
    });
    await restoreErrorOf(
      runTransaction(fake.client, (tx) =>
        tx.withLease({ id: "l1" }, async (leased) => {
          await leased.run(recordingStep("prepare-snapshot", order, { output: 1 }), {});
          await leased.run(recordingStep("create-container", order, { fail: new Error("no") }), {});
        }),
      ),
    );
    assert.deepEqual(order.slice(-2), ["undo prepare-snapshot 1", "release lease"]);
  });

  test("a lease that cannot be released after good work is a cleanup error: nothing is undone", async () => {
    const journal: string[] = [];
    const fake = fakeDaemon({
      "leases.Delete": () => {
        throw daemonFailure("unavailable", "leases.Delete");
      },
    });
    const outcome = await runTransaction(fake.client, async (tx) => {
      await tx.withLease({ id: "l1" }, (leased) => leased.run(recordingStep("create-container", journal, { output: 1 }), {}));
      return tx.run(recordingStep("start-task", journal, { output: { pid: 7 } }), {});
    });
    assert.deepEqual(outcome.value, { pid: 7 });
    assert.deepEqual(journal.filter((line) => line.startsWith("undo")), []);
    assert.deepEqual(outcome.cleanupErrors.map((e) => e.step), ["release-lease"]);
    assert.match(outcome.cleanupErrors[0].message, /^release-lease: cannot reach containerd/);
  });

  test("a release that failed stays reported when a later step fails, and is not tried again", async () => {
    let releases = 0;
    const fake = fakeDaemon({
      "leases.Delete": () => {
        releases++;
        throw daemonFailure("internal", "leases.Delete");
      },
    });
    const err = await restoreErrorOf(
      runTransaction(fake.client, async (tx) => {
        await tx.withLease({ id: "l1" }, async () => undefined);
        await tx.run(recordingStep("start-task", [], { fail: new Error("late") }), {});
      }),
    );
    assert.equal(releases, 1);
    assert.deepEqual(err.cleanupErrors.map((e) => e.step), ["release-lease"]);
  });

  test("keepOnFailure leaves the lease for the next try, and still releases it on success", async () => {
    const failed = fakeDaemon();
    await restoreErrorOf(runTransaction(failed.client, (tx) => tx.withLease({ id: "l1", keepOnFailure: true }, () => Promise.reject(new Error("cut")))));
    assert.deepEqual(failed.log(), ["leases.Create"]);
    const done = fakeDaemon();
    await runTransaction(done.client, (tx) => tx.withLease({ id: "l1", keepOnFailure: true }, async () => undefined));
    assert.deepEqual(done.log(), ["leases.Create", "leases.Delete"]);
  });

  test("a lease that cannot be opened fails as create-lease, with nothing to undo", async () => {
    const fake = fakeDaemon({
      "leases.Create": () => {
        throw daemonFailure("unavailable", "leases.Create");
      },
    });
    const err = await restoreErrorOf(runTransaction(fake.client, (tx) => tx.withLease({ id: "l1" }, async () => undefined)));
    assert.equal(err.step, "create-lease");
    assert.equal(err.code, "daemon-unreachable");
    assert.deepEqual(fake.log(), ["leases.Create"]);
  });

  test("undos run with the caller's client, not under a lease that may be gone", async () => {
    const fake = fakeDaemon();
    const leases: (string | undefined)[] = [];
    const step: Step<Record<string, never>, void> = {
      name: "prepare-snapshot",
      run: async () => undefined,
      undo: async (client) => void leases.push(client.lease),
    };
    await restoreErrorOf(
      runTransaction(fake.client, (tx) =>
        tx.withLease({ id: "l1" }, async (leased) => {
          await leased.run(step, {});
          throw new Error("after");
        }),
      ),
    );
    assert.deepEqual(leases, [undefined]);
  });
});
