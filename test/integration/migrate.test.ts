/**
 * Checkpointing over gRPC and copying checkpoints between two private daemons:
 * the checkpoint restores, a second checkpoint of the same container works
 * (containerd 1.6's re-checkpoint bug is worked around), the copy restores on the
 * target with the count continuing, an interrupted copy resumes, a corrupted
 * blob is refused by digest.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  RestoreError,
  checkpointContainer,
  connect,
  copyCheckpoint,
  isContainerdError,
  planRestore,
  restore,
  teardown,
  type ContainerdClient,
} from "../../provider/index";
import { randomBytes } from "node:crypto";
import { digestOf, readChunks, writeBlob } from "../../provider/containerd";
import {
  MediaType,
  assertInventoryUnchanged,
  findEntry,
  importBaseImage,
  readCountSettled,
  readIndex,
  readLog,
  runCounter,
  startContainerd,
  takeInventory,
  uniqueId,
  waitFor,
  waitForCount,
  removeContainer,
  taskStatus,
  type PrivateContainerd,
} from "../harness";

const QUICK = { graceMs: 300 };
let a: PrivateContainerd;
let b: PrivateContainerd;
let ca: ContainerdClient;
let cb: ContainerdClient;

before(async () => {
  [a, b] = await Promise.all([startContainerd(), startContainerd()]);
  ca = connect(a.address, { namespace: a.namespace });
  cb = connect(b.address, { namespace: b.namespace });
  await importBaseImage(a);
});

after(async () => {
  ca?.close();
  cb?.close();
  await Promise.all([a?.stop(), b?.stop()]);
});

const counts = (logPath: string) => readLog(logPath).filter((l) => /^\d+$/.test(l)).map(Number);

describe("checkpointContainer", () => {
  test("checkpoints a running container twice; both restore, the original keeps running", async () => {
    const id = uniqueId("orig");
    const { pid } = await runCounter(a, id, (await importBaseImage(a)).name);
    await waitForCount(pid, 5);
    const first = await checkpointContainer(ca, id, { ref: "checkpoint/orig:1" });
    await waitForCount(pid, (await readCountSettled(pid)) + 3);
    const second = await checkpointContainer(ca, id, { ref: "checkpoint/orig:2" });
    assert.notEqual(first.digest, second.digest);
    assert.ok(second.criuImageBytes > 0);
    for (const ref of ["checkpoint/orig:1", "checkpoint/orig:2"]) {
      const index = await readIndex(a, (await planRestore(ca, ref)).checkpoint.digest);
      assert.ok(findEntry(index, MediaType.criuCheckpoint) && findEntry(index, MediaType.checkpointConfig), `${ref} has CRIU image and spec`);
    }
    assert.ok((await readCountSettled(pid)) > 0, "the original still runs");

    const restored = uniqueId("back");
    const logPath = path.join(a.logDir, `${restored}.log`);
    await restore(ca, await planRestore(ca, "checkpoint/orig:2"), { id: restored, logPath });
    const [resumed] = await waitFor(() => (counts(logPath).length ? counts(logPath) : undefined), 10_000, () => "restored counts");
    assert.ok(resumed > 5, `restored from the second checkpoint at ${resumed}`);
    await teardown(ca, restored, QUICK);
    await removeContainer(a, id);
  });
});

describe("checkpointContainer refuses bad requests before touching the container", () => {
  test("a ref that is taken: the container is neither paused nor checkpointed", async () => {
    const id = uniqueId("busy");
    const image = await importBaseImage(a);
    const { pid } = await runCounter(a, id, image.name);
    await waitForCount(pid, 2);
    const before = await takeInventory(a);
    const err = await checkpointContainer(ca, id, { ref: image.name, leaveRunning: false }).catch((e: unknown) => e);
    assert.ok(err instanceof RestoreError && err.code === "invalid-option" && err.subject === "ref", `refused: ${err}`);
    assert.match(err.message, /already exists/);
    assert.equal(await taskStatus(a, id), "RUNNING");
    const count = await readCountSettled(pid);
    await waitForCount(pid, count + 2, 5000);
    await assertInventoryUnchanged(a, before, "after the refused checkpoint");
    await removeContainer(a, id);
  });
});

describe("copyCheckpoint", () => {
  let ref: string;
  let countAtCheckpoint: number;

  before(async () => {
    const id = uniqueId("mig");
    const { pid } = await runCounter(a, id, (await importBaseImage(a)).name);
    await waitForCount(pid, 8);
    countAtCheckpoint = await readCountSettled(pid);
    ref = "checkpoint/mig:v1";
    await checkpointContainer(ca, id, { ref, leaveRunning: false });
    await removeContainer(a, id);
  });

  test("copies to a daemon that has nothing, unpacks the base image, and the count continues there", async () => {
    const before = await takeInventory(b);
    const result = await copyCheckpoint(ca, cb, ref);
    assert.ok(result.bytesMoved > 0);
    assert.equal(result.baseImage.created, true);
    assert.equal(result.baseImage.unpacked, true);
    const plan = await planRestore(cb, ref);
    assert.equal(plan.checkpoint.digest, result.digest, "identical index digest on the target");

    const id = uniqueId("onb");
    const logPath = path.join(b.logDir, `${id}.log`);
    await restore(cb, plan, { id, logPath });
    const [resumed] = await waitFor(() => (counts(logPath).length ? counts(logPath) : undefined), 10_000, () => "counts on b");
    assert.ok(resumed > countAtCheckpoint, `counting on b resumed at ${resumed}, checkpoint at ≥ ${countAtCheckpoint}`);
    await teardown(cb, id, QUICK);

    const again = await copyCheckpoint(ca, cb, ref);
    assert.equal(again.bytesMoved, 0, "a second copy moves nothing");
    assert.equal(again.baseImage.unpacked, false);
    await b.ctr(["images", "rm", "--sync", ref, again.baseImage.name]);
    await assertInventoryUnchanged(b, before, "after removing the copied images");
  });

  test("two copies of one checkpoint to one daemon at once both succeed (shared ingests are waited for)", async () => {
    const before = await takeInventory(b);
    const [first, second] = await Promise.all([copyCheckpoint(ca, cb, ref), copyCheckpoint(ca, cb, ref, { targetRef: "checkpoint/mig:twin" })]);
    assert.equal(first.digest, second.digest);
    assert.equal((await planRestore(cb, "checkpoint/mig:twin")).checkpoint.digest, first.digest);
    const after = await takeInventory(b);
    assert.deepEqual(after.leases, before.leases, "no lease left behind");
    assert.deepEqual(after.ingests, [], "no ingest left behind");
    await b.ctr(["images", "rm", "--sync", ref, "checkpoint/mig:twin"]);
  });

  test("an interrupted copy resumes from the target's ingest and ends with identical digests", async () => {
    const index = await readIndex(a, (await planRestore(ca, ref)).checkpoint.digest);
    const criu = findEntry(index, MediaType.criuCheckpoint)!;
    // First attempt: the source stream breaks after 64 KiB.
    // The interrupted attempt's lease, as copyCheckpoint leaves it when a copy fails.
    const lease = `containerd-restore.copy.${(await planRestore(ca, ref)).checkpoint.digest.slice(7, 23)}.interrupted`;
    await cb.call("leases.Create", { id: lease, labels: { "containerd.io/gc.expire": new Date(Date.now() + 600_000).toISOString() } });
    const broken = async function* () {
      let passed = 0;
      for await (const chunk of readChunks(ca, criu.digest, criu.size)) {
        const part = chunk.subarray(0, Math.min(chunk.length, 64 * 1024 - passed));
        passed += part.length;
        yield part;
        if (passed === 64 * 1024) throw new Error("stream broken");
      }
    };
    await assert.rejects(writeBlob(cb.withLease(lease), `copy-${criu.digest}`, { digest: criu.digest, size: criu.size }, broken), /stream broken/);
    const { statuses } = await cb.call("content.ListStatuses", {});
    assert.ok(statuses.some((s) => s.ref === `copy-${criu.digest}` && s.offset > 0), "the partial ingest is kept");

    const resumed: number[] = [];
    const result = await copyCheckpoint(ca, cb, ref, { onBlob: (blob) => blob.resumedAt > 0 && resumed.push(blob.resumedAt) });
    assert.deepEqual(resumed, [64 * 1024], "the CRIU image resumed where it broke");
    const { info } = await cb.call("content.Info", { digest: criu.digest });
    assert.equal(info.size, criu.size);
    assert.equal((await planRestore(cb, ref)).checkpoint.digest, result.digest);
    assert.deepEqual((await cb.call("content.ListStatuses", {})).statuses, [], "no ingest left");
    await cb.call("leases.Delete", { id: lease });
    await b.ctr(["images", "rm", "--sync", ref]);
  });

  test("a blob corrupted in transit is refused by digest", async () => {
    // A blob b never had (containerd 1.6 shares content across namespaces until GC, so a
    // recently removed blob would be "found" without any bytes being sent).
    const blob = Buffer.concat([randomBytes(3 * 1024 * 1024), Buffer.from("corrupt-me")]);
    const digest = digestOf(blob);
    const corrupted = async function* (offset: number) {
      const copy = Buffer.from(blob.subarray(offset));
      copy[copy.length >> 1] ^= 0xff;
      for (let at = 0; at < copy.length; at += 1024 * 1024) yield copy.subarray(at, at + 1024 * 1024);
    };
    const err = await writeBlob(cb, `corrupt-${digest}`, { digest, size: blob.length }, corrupted).catch((e: unknown) => e);
    assert.ok(isContainerdError(err, "failed-precondition"), `refused: ${err instanceof Error ? err : JSON.stringify(err)}`);
    assert.match((err as Error).message, /digest/);
    await cb.call("content.Abort", { ref: `corrupt-${digest}` }).catch(() => undefined);
    await assert.rejects(cb.call("content.Info", { digest }), /not found/);
  });
});
