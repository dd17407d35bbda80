/**
 * The restore engine against a private containerd with real CRIU: live, cold and
 * rw-less restores, copies side by side, the legacy format, teardown.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  connect,
  inspect,
  planRestore,
  restore,
  teardown,
  updateLabels,
  type ContainerdClient,
} from "../../provider/index";
import { applyRwLayer, containerRecord, createContainer, createTask, prepareSnapshot } from "../../provider/restore/steps";
import { resolveOptions } from "../../provider/restore";
import {
  assertInventoryUnchanged,
  importBaseImage,
  makeCheckpoint,
  makeLegacyCheckpoint,
  readCountSettled,
  readLog,
  startContainerd,
  takeInventory,
  taskStatus,
  uniqueId,
  waitFor,
  type BaseImage,
  type Checkpoint,
  type Inventory,
  type PrivateContainerd,
} from "../harness";

/** The restored shell is pid 1 of its namespace and ignores SIGTERM: keep the grace short. */
const QUICK = { graceMs: 300 };

let d: PrivateContainerd;
let client: ContainerdClient;
let image: BaseImage;
let checkpoint: Checkpoint;
let baseline: Inventory;

before(async () => {
  d = await startContainerd();
  client = connect(d.address, { namespace: d.namespace });
  image = await importBaseImage(d);
  checkpoint = await makeCheckpoint(d, { ref: "checkpoint/counter:v1", image });
  baseline = await takeInventory(d);
});

after(async () => {
  client?.close();
  await d?.stop();
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
    const logPath = path.join(d.logDir, `${id} #1 50%.log`);
    const plan = await planRestore(client, checkpoint.ref);
    assert.equal(plan.checkpoint.format, "modern");
    assert.equal(plan.checkpoint.digest, checkpoint.digest);
    assert.equal(plan.snapshotParent, image.chainId);
    assert.equal(plan.image.name, image.name);
    assert.ok(plan.criuImage && plan.criuImage.size > 0);

    const result = await restore(client, plan, { id, logPath, labels: { team: "infra" } });
    assert.ok(result.pid > 0);
    assert.deepEqual(
      result.steps.map((s) => s.step),
      ["create-lease", "prepare-snapshot", "apply-rw-layer", "create-container", "release-lease", "create-task", "start-task"],
    );

    const [firstCount] = await firstCounts(logPath, 3);
    assert.ok(
      firstCount > checkpoint.countBefore && firstCount <= checkpoint.countAfter + 1,
      `restored counter resumed at ${firstCount}; checkpoint was taken between ${checkpoint.countBefore} and ${checkpoint.countAfter}`,
    );
    assert.ok(!readLog(logPath).some((line) => line.startsWith("boot")), "a live restore does not boot the process again");
    assert.ok((await readCountSettled(result.pid)) >= firstCount);
    assert.match(fs.readFileSync(`/proc/${result.pid}/cgroup`, "utf8"), new RegExp(`/${d.namespace}/${id}\\b`));

    const state = await inspect(client, id);
    assert.equal(state?.status, "running");
    assert.equal(state?.pid, result.pid);
    assert.equal(state?.checkpointDigest, checkpoint.digest);
    assert.equal(state?.labels.team, "infra");

    const down = await teardown(client, id, { graceMs: 1000 });
    assert.equal(down.existed, true);
    await assertInventoryUnchanged(d, baseline, "after teardown");
  });

  test("two restores of one checkpoint run side by side; tearing one down leaves the other running", async () => {
    const plan = await planRestore(client, checkpoint.ref);
    const [a, b] = [uniqueId("twin"), uniqueId("twin")];
    const [ra, rb] = await Promise.all([restore(client, plan, { id: a }), restore(client, plan, { id: b })]);
    assert.notEqual(ra.pid, rb.pid);
    await teardown(client, a, { graceMs: 500 });
    assert.equal(await inspect(client, a), undefined);
    assert.equal((await inspect(client, b))?.status, "running");
    const before = await readCountSettled(rb.pid);
    await waitFor(async () => ((await readCountSettled(rb.pid)) > before ? true : undefined), 5000, () => `twin ${b} to keep counting`);
    await teardown(client, b, { graceMs: 500 });
    await assertInventoryUnchanged(d, baseline, "after both teardowns");
  });

  test("labels are updated in place and the provider's own labels are kept", async () => {
    const id = uniqueId("lbl");
    const { pid } = await restore(client, await planRestore(client, checkpoint.ref), { id, labels: { a: "1" } });
    await updateLabels(client, id, { b: "2" });
    const state = await inspect(client, id);
    assert.equal(state?.pid, pid);
    assert.equal(state?.labels.a, undefined);
    assert.equal(state?.labels.b, "2");
    assert.equal(state?.checkpointDigest, checkpoint.digest);
    await teardown(client, id, QUICK);
  });
});

describe("cold restore", () => {
  test("starts a fresh process that sees the checkpointed rw files", async () => {
    const id = uniqueId("cold");
    const logPath = path.join(d.logDir, `${id}.log`);
    await restore(client, await planRestore(client, checkpoint.ref, { live: false }), { id, live: false, logPath });
    const [first] = await firstCounts(logPath, 1);
    assert.equal(first, 1, "a cold restore counts from 1");
    const boot = readLog(logPath).find((line) => line.startsWith("boot"));
    const seen = Number(boot?.split(" ")[1]);
    assert.ok(seen >= checkpoint.countBefore && seen <= checkpoint.countAfter, `boot line "${boot}" shows the checkpointed /tmp/count`);
    await teardown(client, id, QUICK);
    await assertInventoryUnchanged(d, baseline, "after cold teardown");
  });

  test("without the rw layer the checkpointed files are absent", async () => {
    const id = uniqueId("norw");
    const logPath = path.join(d.logDir, `${id}.log`);
    const plan = await planRestore(client, checkpoint.ref, { live: false, restoreRw: false });
    const result = await restore(client, plan, { id, live: false, restoreRw: false, logPath });
    assert.ok(!result.steps.some((s) => s.step === "apply-rw-layer"));
    await firstCounts(logPath, 1);
    assert.equal(readLog(logPath)[0], "boot none");
    await teardown(client, id, QUICK);
    await assertInventoryUnchanged(d, baseline, "after rw-less teardown");
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
      const legacy = await makeLegacyCheckpoint(d, checkpoint, `checkpoint/legacy:${uniqueId("v")}`, variant.opts);
      const id = uniqueId("legacy");
      const logPath = path.join(d.logDir, `${id}.log`);
      const plan = await planRestore(client, legacy.ref);
      assert.equal(plan.checkpoint.format, "legacy");
      assert.equal(plan.image.name, image.name);
      assert.equal(plan.snapshotter, "overlayfs");
      assert.equal(plan.runtime.name, "io.containerd.runc.v2");
      await restore(client, plan, { id, logPath });
      const [first] = await firstCounts(logPath, 2);
      assert.ok(first > checkpoint.countBefore && first <= checkpoint.countAfter + 1, `legacy restore resumed at ${first}`);
      await teardown(client, id, QUICK);
      await d.ctr(["images", "rm", legacy.ref]);
    });
  }
});

describe("teardown", () => {
  test("is idempotent: a second teardown finds nothing and succeeds", async () => {
    const id = uniqueId("twice");
    await restore(client, await planRestore(client, checkpoint.ref), { id });
    assert.equal((await teardown(client, id, QUICK)).existed, true);
    assert.deepEqual(await teardown(client, id, QUICK), { existed: false, exitStatus: undefined, killed: false });
    await assertInventoryUnchanged(d, baseline, "after double teardown");
  });

  test("escalates to SIGKILL when the process ignores the stop signal", async () => {
    const id = uniqueId("term");
    await restore(client, await planRestore(client, checkpoint.ref), { id });
    // The restored shell loop runs as pid 1 of its pid namespace: SIGTERM has no default action there.
    const result = await teardown(client, id, { graceMs: 300 });
    assert.equal(result.killed, true);
    assert.equal(result.exitStatus, 137);
  });

  test("cleans up a half-restored container (task CREATED with pid 0)", async () => {
    const id = uniqueId("half");
    const plan = await planRestore(client, checkpoint.ref);
    // The restore's steps up to create-task, run by hand (no runner, so nothing is undone).
    const { mounts } = await prepareSnapshot.run(client, { snapshotter: plan.snapshotter, key: id, parent: plan.snapshotParent });
    if (plan.rwLayer) await applyRwLayer.run(client, { layer: plan.rwLayer, mounts });
    await createContainer.run(client, { container: containerRecord(plan, resolveOptions({ id }), client.namespace) });
    await createTask.run(client, { id, rootfs: mounts, checkpoint: plan.criuImage });
    assert.equal(await taskStatus(d, id), "CREATED");
    assert.equal((await inspect(client, id))?.pid, 0);
    assert.equal((await teardown(client, id, QUICK)).existed, true);
    await assertInventoryUnchanged(d, baseline, "after half-restored teardown");
  });
});
