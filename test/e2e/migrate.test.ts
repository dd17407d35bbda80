/**
 * Migration as a stack, through the real Pulumi engine: checkpoint a running
 * container on daemon A, copy the checkpoint to daemon B, restore it on B where
 * the count continues; destroy leaves both daemons as they were (the retained
 * checkpoint aside).
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, test } from "node:test";
import {
  BASE_IMAGE_NAME,
  importBaseImage,
  readCountSettled,
  readLog,
  imageTarget,
  removeContainer,
  runCounter,
  taskStatus,
  startContainerd,
  takeInventory,
  uniqueId,
  waitFor,
  waitForCount,
  type Inventory,
  type PrivateContainerd,
} from "../harness";
import { migrationProgram, newStack, type TestStack } from "./stack";

let a: PrivateContainerd;
let b: PrivateContainerd;
let s: TestStack;
let originalId: string;
let originalPid: number;
let beforeA: Inventory;
let beforeB: Inventory;
let baseChainId: string;

before(async () => {
  [a, b] = await Promise.all([startContainerd(), startContainerd()]);
  const image = await importBaseImage(a);
  baseChainId = image.chainId;
  originalId = uniqueId("app");
  ({ pid: originalPid } = await runCounter(a, originalId, image.name));
  await waitForCount(originalPid, 5);
  [beforeA, beforeB] = await Promise.all([takeInventory(a), takeInventory(b)]);
  s = await newStack(
    "restore-e2e-migrate",
    migrationProgram(a, b, {
      containerId: originalId,
      ref: "checkpoint/app:migrate",
      copyName: "to-b",
      restoredName: "app-on-b",
      logPath: path.join(b.logDir, "app-on-b.log"),
      retainCheckpoint: true,
    }),
  );
});

after(async () => {
  await s?.remove();
  await Promise.all([a?.stop(), b?.stop()]);
});

test("checkpoint on A, copy to B, restore on B: the restored process continues counting there", async () => {
  const countBefore = await readCountSettled(originalPid);
  const result = await s.stack.up();
  assert.equal(result.summary.result, "succeeded");
  const out = Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value]));
  assert.equal(out.copiedDigest, out.digest, "identical checkpoint digest on both daemons");
  assert.ok(Number(out.bytesMoved) > 0);
  assert.equal(out.status, "running");
  const counts = await waitFor(() => {
    const n = readLog(path.join(b.logDir, "app-on-b.log")).filter((l) => /^\d+$/.test(l)).map(Number);
    return n.length ? n : undefined;
  }, 10_000, () => "counts on B");
  assert.ok(counts[0] > countBefore, `B resumed at ${counts[0]}; A was at ${countBefore} before the checkpoint`);
  assert.ok((await readCountSettled(originalPid)) > countBefore, "the original on A keeps running (leaveRunning)");
});

test("a second up changes nothing, also once the original container has stopped", async () => {
  await a.ctr(["tasks", "kill", "-s", "SIGKILL", originalId]);
  await waitFor(async () => ((await taskStatus(a, originalId)) === "STOPPED" ? true : undefined), 5000, () => "original stopped");
  const preview = await s.stack.preview();
  assert.equal(preview.changeSummary.same, 4);
});

test("a checkpoint moved behind the source ref is copied again, and the target keeps the new copy", async () => {
  const image = await importBaseImage(a);
  const second = uniqueId("app2");
  const { pid } = await runCounter(a, second, image.name);
  await waitForCount(pid, 5);
  await a.ctr(["containers", "checkpoint", "--task", "--rw", "--image", second, "checkpoint/app:next"]);
  await a.ctr(["images", "tag", "--force", "checkpoint/app:next", "checkpoint/app:migrate"]);
  const moved = (await imageTarget(a, "checkpoint/app:migrate")).digest;

  const preview = await s.stack.preview();
  assert.equal(preview.changeSummary.replace, 2, "the copy and the restored container");
  const result = await s.stack.up();
  assert.equal(result.outputs.copiedDigest.value, moved);
  // Create-before-delete of the copy wrote the same ref; deleting the old copy must not remove it.
  assert.equal((await imageTarget(b, "checkpoint/app:migrate")).digest, moved);
  assert.equal(result.outputs.status.value, "running");
  await removeContainer(a, second);
  await a.ctr(["images", "rm", "checkpoint/app:next"]);
});

test("destroy leaves both daemons as they were, except the retained checkpoint on A and the base image B received", async () => {
  await s.stack.destroy();
  const afterB = await waitFor(async () => {
    const inv = await takeInventory(b);
    return inv.images.length === 1 ? inv : undefined;
  }, 5000, () => "B's checkpoint image to go");
  assert.deepEqual(afterB.containers, beforeB.containers);
  assert.deepEqual(afterB.tasks, beforeB.tasks);
  assert.deepEqual(afterB.leases, beforeB.leases);
  assert.deepEqual(afterB.ingests, beforeB.ingests);
  // The copy brought the base image (and unpacked it); it stays, since other copies may use it.
  assert.deepEqual(afterB.images, [BASE_IMAGE_NAME]);
  assert.deepEqual(afterB.snapshots.overlayfs.map((s) => s.slice(0, s.lastIndexOf(":"))), [baseChainId]);

  const afterA = await takeInventory(a);
  assert.deepEqual(afterA.containers, beforeA.containers);
  assert.deepEqual(afterA.leases, beforeA.leases);
  assert.deepEqual(afterA.images, [...beforeA.images, "checkpoint/app:migrate"].sort(), "only the retained checkpoint is new on A");
  assert.deepEqual(afterA.tasks, [`${originalId}:STOPPED`]);
  await removeContainer(a, originalId);
});
