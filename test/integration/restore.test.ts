/**
 * The restore engine against a private containerd with real CRIU: live, cold and
 * rw-less restores, copies side by side, the legacy format, teardown.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { connect, inspect, planRestore, restore, teardown, updateLabels } from "../../provider/index";
import { closeLease, openLease } from "../../provider/containerd";
import { applyRwLayer, containerRecord, createContainer, createTask, prepareSnapshot } from "../../provider/restore/steps";
import { resolveOptions } from "../../provider/restore";
import { daemonSuite, makeLegacyCheckpoint, readCountSettled, readLog, taskStatus, uniqueId, waitFor } from "../harness";

/** The restored shell is pid 1 of its namespace and ignores SIGTERM: keep the grace short. */
const QUICK = { graceMs: 300 };

const suite = daemonSuite({
  connect: (d) => connect(d.address, { namespace: d.namespace }),
  checkpoints: { counter: { ref: "checkpoint/counter:v1" } },
});

/** Numbers the restored counter printed, in order (the `boot` line aside). */
function counted(logPath: string): number[] {
  return readLog(logPath)
    .filter((line) => /^\d+$/.test(line))
    .map(Number);
}

async function firstCounts(logPath: string, n: number): Promise<number[]> {
  return waitFor(() => (counted(logPath).length >= n ? counted(logPath) : undefined), 10_000, () => `${n} counts in ${logPath}`);
}

describe("live restore", () => {
  test("the restored process continues counting from the checkpointed value, in its own cgroup", async () => {
    const id = uniqueId("live");
    // Characters a file:// URL must escape: the log still lands at exactly this path.
    const logPath = path.join(suite.d.logDir, `${id} #1 50%.log`);
    const plan = await planRestore(suite.client, suite.checkpoints.counter.ref);
    assert.equal(plan.checkpoint.format, "modern");
    assert.equal(plan.checkpoint.digest, suite.checkpoints.counter.digest);
    assert.equal(plan.snapshotParent, suite.image.chainId);
    assert.equal(plan.image.name, suite.image.name);
    assert.ok(plan.criuImage && plan.criuImage.size > 0);

    const result = await restore(suite.client, plan, { id, logPath, labels: { team: "infra" } });
    assert.ok(result.pid > 0);
    assert.deepEqual(
      result.steps.map((s) => s.step),
      ["create-lease", "prepare-snapshot", "apply-rw-layer", "create-container", "release-lease", "create-task", "start-task"],
    );

    const [firstCount] = await firstCounts(logPath, 3);
    assert.ok(
      firstCount > suite.checkpoints.counter.countBefore && firstCount <= suite.checkpoints.counter.countAfter + 1,
      `restored counter resumed at ${firstCount}; checkpoint was taken between ${suite.checkpoints.counter.countBefore} and ${suite.checkpoints.counter.countAfter}`,
    );
    assert.ok(!readLog(logPath).some((line) => line.startsWith("boot")), "a live restore does not boot the process again");
    assert.ok((await readCountSettled(result.pid)) >= firstCount);
    assert.match(fs.readFileSync(`/proc/${result.pid}/cgroup`, "utf8"), new RegExp(`/${suite.d.namespace}/${id}\\b`));

    const state = await inspect(suite.client, id);
    assert.equal(state?.status, "running");
    assert.equal(state?.pid, result.pid);
    assert.equal(state?.checkpointDigest, suite.checkpoints.counter.digest);
    assert.equal(state?.labels.team, "infra");

    const down = await teardown(suite.client, id, { graceMs: 1000 });
    assert.equal(down.existed, true);
    await suite.assertUnchanged("after teardown");
  });

  test("two restores of one checkpoint run side by side; tearing one down leaves the other running", async () => {
    const plan = await planRestore(suite.client, suite.checkpoints.counter.ref);
    const [a, b] = [uniqueId("twin"), uniqueId("twin")];
    const [ra, rb] = await Promise.all([restore(suite.client, plan, { id: a }), restore(suite.client, plan, { id: b })]);
    assert.notEqual(ra.pid, rb.pid);
    await teardown(suite.client, a, { graceMs: 500 });
    assert.equal(await inspect(suite.client, a), undefined);
    assert.equal((await inspect(suite.client, b))?.status, "running");
    const before = await readCountSettled(rb.pid);
    await waitFor(async () => ((await readCountSettled(rb.pid)) > before ? true : undefined), 5000, () => `twin ${b} to keep counting`);
    await teardown(suite.client, b, { graceMs: 500 });
    await suite.assertUnchanged("after both teardowns");
  });

  test("labels are updated in place and the provider's own labels are kept", async () => {
    const id = uniqueId("lbl");
    const { pid } = await restore(suite.client, await planRestore(suite.client, suite.checkpoints.counter.ref), { id, labels: { a: "1" } });
    await updateLabels(suite.client, id, { b: "2" });
    const state = await inspect(suite.client, id);
    assert.equal(state?.pid, pid);
    assert.equal(state?.labels.a, undefined);
    assert.equal(state?.labels.b, "2");
    assert.equal(state?.checkpointDigest, suite.checkpoints.counter.digest);
    await teardown(suite.client, id, QUICK);
  });
});

describe("cold restore", () => {
  test("starts a fresh process that sees the checkpointed rw files", async () => {
    const id = uniqueId("cold");
    const logPath = path.join(suite.d.logDir, `${id}.log`);
    await restore(suite.client, await planRestore(suite.client, suite.checkpoints.counter.ref, { live: false }), { id, live: false, logPath });
    const [first] = await firstCounts(logPath, 1);
    assert.equal(first, 1, "a cold restore counts from 1");
    const boot = readLog(logPath).find((line) => line.startsWith("boot"));
    const seen = Number(boot?.split(" ")[1]);
    assert.ok(seen >= suite.checkpoints.counter.countBefore && seen <= suite.checkpoints.counter.countAfter, `boot line "${boot}" shows the checkpointed /tmp/count`);
    await teardown(suite.client, id, QUICK);
    await suite.assertUnchanged("after cold teardown");
  });

  test("without the rw layer the checkpointed files are absent", async () => {
    const id = uniqueId("norw");
    const logPath = path.join(suite.d.logDir, `${id}.log`);
    const plan = await planRestore(suite.client, suite.checkpoints.counter.ref, { live: false, restoreRw: false });
    const result = await restore(suite.client, plan, { id, live: false, restoreRw: false, logPath });
    assert.ok(!result.steps.some((s) => s.step === "apply-rw-layer"));
    await firstCounts(logPath, 1);
    assert.equal(readLog(logPath)[0], "boot none");
    await teardown(suite.client, id, QUICK);
    await suite.assertUnchanged("after rw-less teardown");
  });
});

describe("legacy format", () => {
  for (const variant of [
    { name: "containerd 1.0/1.1 index (schemaVersion 0, Docker schema2 manifest)", opts: {} },
    {
      name: "containerd 1.2 index (schemaVersion 2, OCI manifest, uncompressed rw layer type)",
      opts: { schemaVersion: 2 as const, dockerManifest: false, rwMediaType: "application/vnd.oci.image.layer.v1.tar+gzip" },
    },
  ]) {
    test(`restores live: ${variant.name}`, async () => {
      const legacy = await makeLegacyCheckpoint(suite.d, suite.checkpoints.counter, `checkpoint/legacy:${uniqueId("v")}`, variant.opts);
      const id = uniqueId("legacy");
      const logPath = path.join(suite.d.logDir, `${id}.log`);
      const plan = await planRestore(suite.client, legacy.ref);
      assert.equal(plan.checkpoint.format, "legacy");
      assert.equal(plan.image.name, suite.image.name);
      assert.equal(plan.snapshotter, "overlayfs");
      assert.equal(plan.runtime.name, "io.containerd.runc.v2");
      await restore(suite.client, plan, { id, logPath });
      const [first] = await firstCounts(logPath, 2);
      assert.ok(first > suite.checkpoints.counter.countBefore && first <= suite.checkpoints.counter.countAfter + 1, `legacy restore resumed at ${first}`);
      await teardown(suite.client, id, QUICK);
      await suite.d.ctr(["images", "rm", legacy.ref]);
    });
  }
});

describe("teardown", () => {
  test("is idempotent: a second teardown finds nothing and succeeds", async () => {
    const id = uniqueId("twice");
    await restore(suite.client, await planRestore(suite.client, suite.checkpoints.counter.ref), { id });
    assert.equal((await teardown(suite.client, id, QUICK)).existed, true);
    assert.deepEqual(await teardown(suite.client, id, QUICK), { existed: false, exitStatus: undefined, killed: false });
    await suite.assertUnchanged("after double teardown");
  });

  test("escalates to SIGKILL when the process ignores the stop signal", async () => {
    const id = uniqueId("term");
    await restore(suite.client, await planRestore(suite.client, suite.checkpoints.counter.ref), { id });
    // The restored shell loop runs as pid 1 of its pid namespace: SIGTERM has no default action there.
    const result = await teardown(suite.client, id, { graceMs: 300 });
    assert.equal(result.killed, true);
    assert.equal(result.exitStatus, 137);
  });

  test("cleans up a half-restored container (task CREATED with pid 0)", async () => {
    const id = uniqueId("half");
    const plan = await planRestore(suite.client, suite.checkpoints.counter.ref);
    // The restore's steps up to create-task, run by hand (no runner, so nothing is undone), under a
    // lease as restore() runs them: unleased, GC may take the fresh snapshot before the container holds it.
    const lease = `half-restore-${id}`;
    await openLease(suite.client, lease);
    const leased = suite.client.withLease(lease);
    const { mounts } = await prepareSnapshot.run(leased, { snapshotter: plan.snapshotter, key: id, parent: plan.snapshotParent });
    if (plan.rwLayer) await applyRwLayer.run(leased, { layer: plan.rwLayer, mounts });
    await createContainer.run(leased, { container: containerRecord(plan, resolveOptions({ id }), suite.client.namespace) });
    await closeLease(suite.client, lease);
    await createTask.run(suite.client, { id, rootfs: mounts, checkpoint: plan.criuImage });
    assert.equal(await taskStatus(suite.d, id), "CREATED");
    assert.equal((await inspect(suite.client, id))?.pid, 0);
    assert.equal((await teardown(suite.client, id, QUICK)).existed, true);
    await suite.assertUnchanged("after half-restored teardown");
  });
});
