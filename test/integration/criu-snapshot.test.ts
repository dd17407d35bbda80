/**
 * The CRIU image of a live restore goes into a snapshot the restore owns, passed
 * as runc's criu_image_path, never into the `ctrd-checkpoint*` temp dir that
 * containerd's Tasks.Create makes from a descriptor and never removes. Against a
 * private containerd with real CRIU: after a good and after a failed restore the
 * daemon's temp dir and its snapshots are as they were.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { RestoreError, connect, planRestore, restore, teardown } from "../../provider/index";
import {
  daemonSuite,
  listCheckpointTempDirs,
  makeCorruptedCriuCheckpoint,
  parseTable,
  readLog,
  removeContainer,
  restoreWithCtr,
  uniqueId,
  waitFor,
  type PrivateContainerd,
} from "../harness";

const suite = daemonSuite({
  connect: (d) => connect(d.address, { namespace: d.namespace }),
  checkpoints: { counter: { ref: "checkpoint/criu-dir:v1" } },
});

/** The restore's own CRIU snapshots on the daemon (`ctr snapshots ls`). */
async function criuSnapshots(d: PrivateContainerd): Promise<string[]> {
  const out = await d.ctr(["snapshots", "--snapshotter", "overlayfs", "ls"]);
  return parseTable(out)
    .map((row) => row[0])
    .filter((key) => key.startsWith("containerd-restore.criu."));
}

test("control: a restore through the descriptor (ctr) leaks a ctrd-checkpoint dir in the daemon's temp dir", async () => {
  const before = listCheckpointTempDirs(suite.d);
  const id = uniqueId("ctr");
  await restoreWithCtr(suite.d, id, suite.checkpoints.counter.ref);
  try {
    assert.equal(listCheckpointTempDirs(suite.d).length, before.length + 1, "what this file's checks would see if the library leaked");
  } finally {
    await removeContainer(suite.d, id);
  }
});

test("a live restore unpacks the CRIU image into its own snapshot and removes it: no temp dir, no snapshot left, the process continues", async () => {
  const before = listCheckpointTempDirs(suite.d);
  const id = uniqueId("own");
  const logPath = path.join(suite.d.logDir, `${id}.log`);
  const result = await restore(suite.client, await planRestore(suite.client, suite.checkpoints.counter.ref), { id, logPath });
  assert.ok(result.steps.some((s) => s.step === "unpack-criu-image"), `steps: ${result.steps.map((s) => s.step)}`);
  assert.deepEqual(result.cleanupErrors, []);
  // Removed before restore() returned: no settling.
  assert.deepEqual(await criuSnapshots(suite.d), []);
  assert.deepEqual(listCheckpointTempDirs(suite.d), before, "no ctrd-checkpoint dir");
  const counts = await waitFor(
    () => {
      const n = readLog(logPath).filter((line) => /^\d+$/.test(line)).map(Number);
      return n.length >= 2 ? n : undefined;
    },
    10_000,
    () => `counts in ${logPath}`,
  );
  assert.ok(counts[0] > suite.checkpoints.counter.countBefore, `resumed at ${counts[0]}, not from 1`);
  await teardown(suite.client, id, { graceMs: 300 });
  await suite.assertUnchanged("after teardown");
});

test("a restore that fails in CRIU leaves no temp dir and no CRIU snapshot", async () => {
  const corrupted = await makeCorruptedCriuCheckpoint(suite.d, suite.checkpoints.counter, `checkpoint/criu-dir-bad:${uniqueId("v")}`);
  const baseline = await suite.debris();
  const before = listCheckpointTempDirs(suite.d);
  const id = uniqueId("bad");
  const err = await restore(suite.client, await planRestore(suite.client, corrupted.ref), { id }).then(
    () => assert.fail("restored a corrupted CRIU image"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RestoreError);
  assert.equal(err.step, "start-task");
  assert.deepEqual(err.cleanupErrors, []);
  assert.deepEqual(await criuSnapshots(suite.d), []);
  assert.deepEqual(listCheckpointTempDirs(suite.d), before, "no ctrd-checkpoint dir");
  // Nothing new (blobs GC collected meanwhile may be gone, as the inventory allows).
  assert.deepEqual((await suite.debris()).filter((line) => !baseline.includes(line)), [], "the daemon holds nothing the restore made");
  await suite.d.ctr(["images", "rm", corrupted.ref]);
});
