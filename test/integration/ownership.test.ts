/**
 * Ownership (issue 8, item 6) in the library, against a real daemon: teardown
 * refuses a container this project did not restore, or one of another owner or
 * checkpoint, unless force; restore-lease clean-up spares a live restore attempt
 * (a concurrent restore of the same id in this process, or an attempt held by
 * another live process) and deletes abandoned ones; Leases.List is filtered on
 * the daemon. updateLabels refuses reserved keys (item 8). Every case ends with
 * the leak checker.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { Label, RestoreError, connect, inspect, planRestore, restore, teardown, updateLabels, type ContainerdClient, type RestorePlan } from "../../provider/index";
import { HOLDER_LABEL, restoreLeaseFilter } from "../../provider/restore/restore-leases";
import {
  assertInventoryUnchanged,
  importBaseImage,
  makeCheckpoint,
  runCounter,
  startContainerd,
  takeInventory,
  taskStatus,
  uniqueId,
  type BaseImage,
  type Checkpoint,
  type Inventory,
  type PrivateContainerd,
} from "../harness";
import { RESTORE_STEP_RPC, startFaultProxy, type FaultProxy } from "../harness/fault-proxy";

const QUICK = { graceMs: 300 };
let d: PrivateContainerd;
let client: ContainerdClient;
let image: BaseImage;
let checkpoint: Checkpoint;
let plan: RestorePlan;
let baseline: Inventory;

before(async () => {
  d = await startContainerd();
  client = connect(d.address, { namespace: d.namespace });
  image = await importBaseImage(d);
  checkpoint = await makeCheckpoint(d, { ref: "checkpoint/ownership:v1", image });
  plan = await planRestore(client, checkpoint.ref);
  baseline = await takeInventory(d);
});

after(async () => {
  client?.close();
  await d?.stop();
});

const bootId = (): string => fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();

async function refusal(call: Promise<unknown>): Promise<RestoreError> {
  const err = await call.then(
    () => assert.fail("expected a not-owned refusal"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RestoreError, String(err));
  assert.equal(err.code, "not-owned", err.message);
  assert.equal(err.subject, "owner");
  return err;
}

describe("teardown and ownership", () => {
  test("a container started by ctr (not restored by this project) is refused without force, torn down with it", async () => {
    const id = uniqueId("ctr");
    await runCounter(d, id, image.name);
    const before = await takeInventory(d);
    const err = await refusal(teardown(client, id, QUICK));
    assert.match(err.message, new RegExp(`container ${id} was not restored by this project .*pass force: true`));
    assert.equal(await taskStatus(d, id), "RUNNING", "left running");
    await assertInventoryUnchanged(d, before, "after the refused teardown", { settleMs: 0 });

    const forced = await teardown(client, id, { ...QUICK, force: true });
    assert.equal(forced.existed, true);
    assert.equal(await inspect(client, id), undefined);
  });

  test("a restored container of another owner, or of another checkpoint, is refused, naming its owner", async () => {
    const id = uniqueId("owned");
    await restore(client, plan, { id, owner: "pulumi:proj/stack-a/app" });
    const before = await takeInventory(d);
    const other = await refusal(teardown(client, id, { ...QUICK, owner: "pulumi:proj/stack-b/app" }));
    assert.match(other.message, /belongs to "pulumi:proj\/stack-a\/app", not "pulumi:proj\/stack-b\/app"/);
    const digest = await refusal(teardown(client, id, { ...QUICK, owner: "pulumi:proj/stack-a/app", checkpointDigest: `sha256:${"0".repeat(64)}` }));
    assert.match(digest.message, new RegExp(`restored from checkpoint ${checkpoint.digest}, not sha256:0{64}`));
    assert.equal((await inspect(client, id))?.status, "running", "left running");
    await assertInventoryUnchanged(d, before, "after the refused teardowns", { settleMs: 0 });

    const own = await teardown(client, id, { ...QUICK, owner: "pulumi:proj/stack-a/app", checkpointDigest: checkpoint.digest });
    assert.equal(own.existed, true);
    await assertInventoryUnchanged(d, baseline, "after the owner's teardown");
  });

  test("updateLabels refuses reserved keys and leaves the labels as they were", async () => {
    const id = uniqueId("labels");
    await restore(client, plan, { id, owner: "pulumi:proj/stack-a/labels", labels: { team: "a" } });
    for (const key of [Label.owner, Label.checkpointDigest, Label.managedBy, Label.stopSignal]) {
      const err = await updateLabels(client, id, { team: "b", [key]: "mine" }).catch((e: unknown) => e);
      assert.ok(err instanceof RestoreError && err.code === "invalid-option" && err.subject === "labels", String(err));
      assert.match(err.message, new RegExp(`labels must not set ${key.replace(/[./]/g, "\\$&")}`));
    }
    const labels = (await inspect(client, id))!.labels;
    assert.equal(labels.team, "a");
    assert.equal(labels[Label.owner], "pulumi:proj/stack-a/labels");
    await updateLabels(client, id, { team: "b" });
    assert.equal((await inspect(client, id))!.labels.team, "b");
    await teardown(client, id, QUICK);
    await assertInventoryUnchanged(d, baseline, "after the labels test");
  });
});

describe("restore leases", () => {
  let proxy: FaultProxy;
  before(async () => {
    proxy = await startFaultProxy(d);
  });
  after(async () => proxy?.close());

  test("a concurrent restore's lease survives a teardown of the same id, and that restore completes", async () => {
    const id = uniqueId("race");
    const viaProxy = connect(proxy.address, { namespace: d.namespace });
    let during: { leasesLeft?: string[]; existed: boolean } | undefined;
    let leasesSeen: string[] = [];
    try {
      proxy.reset();
      // While the restore holds its lease (before it prepares the snapshot), another caller tears the id down.
      const fired = proxy.arm({
        method: RESTORE_STEP_RPC["prepare-snapshot"],
        when: "on-request",
        action: async () => {
          during = await teardown(client, id, QUICK);
          leasesSeen = (await client.call("leases.List", { filters: [restoreLeaseFilter(id)] })).leases.map((l) => l.id);
        },
      });
      const result = await restore(viaProxy, plan, { id });
      await fired;
      assert.ok(during, "the teardown ran during the restore");
      assert.equal(during.leasesLeft?.length, 1, `the live attempt's lease was left: ${JSON.stringify(during)}`);
      assert.deepEqual(leasesSeen, during.leasesLeft, "and is still on the daemon");
      assert.match(during.leasesLeft![0], new RegExp(`^containerd-restore\\.restore\\.${id}\\.[0-9a-f]{8}$`));
      assert.equal((await inspect(client, result.id))?.status, "running", "the concurrent restore completed");
      const after = await client.call("leases.List", { filters: [restoreLeaseFilter(id)] });
      assert.deepEqual(after.leases, [], "the restore released its own lease");
    } finally {
      viaProxy.close();
    }
    await teardown(client, id, QUICK);
    await assertInventoryUnchanged(d, baseline, "after the concurrent restore and teardown");
  });

  test("teardown deletes a dead process's lease, keeps a live process's and a recent remote one's", async () => {
    const id = uniqueId("held");
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid!; // exited and reaped
    const daemonPid = d.pid!;
    const leases = {
      dead: { id: `containerd-restore.restore.${id}.00000001`, holder: `${bootId()}/${dead}` },
      live: { id: `containerd-restore.restore.${id}.00000002`, holder: `${bootId()}/${daemonPid}` },
      remote: { id: `containerd-restore.restore.${id}.00000003`, holder: `another-host-boot-id/${process.pid}` },
      unlabelled: { id: `containerd-restore.restore.${id}.00000004`, holder: undefined },
    };
    for (const lease of Object.values(leases)) {
      await client.call("leases.Create", { id: lease.id, labels: lease.holder ? { [HOLDER_LABEL]: lease.holder } : {} });
    }
    // Another id's lease (a shared prefix) must not even be listed.
    const neighbour = `containerd-restore.restore.${id}.x.0000000a`;
    await client.call("leases.Create", { id: neighbour });
    const listed = (await client.call("leases.List", { filters: [restoreLeaseFilter(id)] })).leases.map((l) => l.id).sort();
    assert.deepEqual(listed, Object.values(leases).map((l) => l.id).sort(), "the daemon filters Leases.List by the id");

    const result = await teardown(client, id, QUICK);
    assert.equal(result.existed, true, "a lease was deleted");
    assert.deepEqual(result.leasesLeft?.sort(), [leases.live.id, leases.remote.id, leases.unlabelled.id].sort());
    const remaining = (await client.call("leases.List", {})).leases.map((l) => l.id);
    assert.ok(!remaining.includes(leases.dead.id), "the dead process's lease is gone");
    for (const kept of [leases.live.id, leases.remote.id, leases.unlabelled.id, neighbour]) assert.ok(remaining.includes(kept), `${kept} kept`);
    for (const kept of [leases.live.id, leases.remote.id, leases.unlabelled.id, neighbour]) await client.call("leases.Delete", { id: kept });
    await assertInventoryUnchanged(d, baseline, "after the lease test");
  });

  test("a restore killed in another process: its lease is deleted by the next teardown (the holder is gone)", async () => {
    const id = uniqueId("orphan");
    // A child process opens a restore lease the way create-lease does, then exits without releasing it.
    const script = `
      const { connect } = require(${JSON.stringify(require.resolve("../../provider/index"))});
      const { beginAttempt } = require(${JSON.stringify(require.resolve("../../provider/restore/restore-leases"))});
      const c = connect(${JSON.stringify(d.address)}, { namespace: ${JSON.stringify(d.namespace)} });
      const lease = "containerd-restore.restore.${id}.0000abcd";
      c.call("leases.Create", { id: lease, labels: beginAttempt(lease) }).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
    `;
    execFileSync(process.execPath, ["-e", script]);
    const before = (await client.call("leases.List", { filters: [restoreLeaseFilter(id)] })).leases;
    assert.equal(before.length, 1);
    assert.match(before[0].labels?.[HOLDER_LABEL] ?? "", new RegExp(`^${bootId()}/\\d+$`));
    const result = await teardown(client, id, QUICK);
    assert.equal(result.existed, true);
    assert.equal(result.leasesLeft, undefined, "nothing left");
    await assertInventoryUnchanged(d, baseline, "after the orphaned lease's teardown");
  });
});
