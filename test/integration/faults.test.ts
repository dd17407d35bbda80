/**
 * Daemon faults at the library level, through a transparent gRPC proxy in front
 * of a private containerd: transient UNAVAILABLE is retried with backoff for
 * read-only calls only, other errors are not retried, a dead daemon fails fast,
 * and teardown clears what a restore killed mid-way left (lease, snapshot).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ContainerdError, RestoreError, connect, inspect, planRestore, restore, teardown, type ContainerdClient } from "../../provider/index";
import { daemonSuite } from "../harness";
import { RESTORE_STEP_RPC, rpcPath, startFaultProxy, type FaultProxy } from "../harness/fault-proxy";

const suite = daemonSuite({
  checkpoints: { faults: { ref: "checkpoint/faults:v1" } },
  // The library client talks through the proxy; the harness's ctr talks to the daemon itself.
  setUp: async ({ d }) => {
    proxy = await startFaultProxy(d);
    client = connect(proxy.address, { namespace: d.namespace });
  },
  tearDown: async () => {
    client?.close();
    await proxy?.close();
  },
});

let proxy: FaultProxy;
let client: ContainerdClient;

/** Milliseconds between consecutive attempts of `method`. */
function gaps(method: string): number[] {
  const at = proxy.calls.filter((c) => c.path === rpcPath(method)).map((c) => c.at);
  return at.slice(1).map((t, i) => t - at[i]);
}

/** The client's backoff before retries 1, 2, 3 (client.ts), less timer slack. */
const BACKOFF_MS = [50, 200, 500];
const SLACK_MS = 5;

test("a transient UNAVAILABLE on a read-only call is retried with backoff, then succeeds", async () => {
  proxy.reset();
  proxy.inject("containers.List", 2);
  const { containers } = await client.call("containers.List", {});
  assert.deepEqual(containers, []);
  assert.equal(proxy.attempts("containers.List"), 3, "two refused, the third forwarded");
  const waited = gaps("containers.List");
  waited.forEach((ms, i) => assert.ok(ms >= BACKOFF_MS[i] - SLACK_MS, `retry ${i + 1} after ${ms} ms, backoff ${BACKOFF_MS[i]} ms`));
});

test("three retries at most: the fourth attempt may succeed, a fifth is never made", async () => {
  proxy.reset();
  proxy.inject("version.Version", 3);
  assert.ok((await client.call("version.Version", {})).version);
  assert.equal(proxy.attempts("version.Version"), 4);

  proxy.reset();
  proxy.inject("version.Version", 4);
  const t0 = Date.now();
  await assert.rejects(client.call("version.Version", {}), (err: unknown) => {
    assert.ok(err instanceof ContainerdError);
    assert.equal(err.code, "unavailable");
    assert.match(err.message, new RegExp(`^cannot reach containerd at ${proxy.address}: version.Version: injected`));
    return true;
  });
  assert.equal(proxy.attempts("version.Version"), 4);
  assert.ok(Date.now() - t0 >= 750 - SLACK_MS, "waited 50 + 200 + 500 ms");
});

test("library calls ride out a transient UNAVAILABLE: inspect retries both of its reads", async () => {
  proxy.reset();
  proxy.inject("containers.Get", 1);
  proxy.inject("tasks.Get", 2);
  assert.equal(await inspect(client, "nobody"), undefined);
  assert.equal(proxy.attempts("containers.Get"), 2);
  assert.equal(proxy.attempts("tasks.Get"), 3);
});

test("NOT_FOUND is not retried: one attempt, from the daemon or injected", async () => {
  proxy.reset();
  await assert.rejects(client.call("containers.Get", { id: "nobody" }), (err: unknown) => err instanceof ContainerdError && err.code === "not-found");
  assert.equal(proxy.attempts("containers.Get"), 1, "the daemon's NOT_FOUND");

  proxy.reset();
  proxy.inject("images.Get", 1, 5, "image not found (injected)");
  await assert.rejects(client.call("images.Get", { name: suite.checkpoints.faults.ref }), (err: unknown) => err instanceof ContainerdError && err.code === "not-found");
  assert.equal(proxy.attempts("images.Get"), 1, "an injected NOT_FOUND");
});

test("a call that changes something is not retried on UNAVAILABLE: one attempt, nothing created", async () => {
  proxy.reset();
  proxy.inject("leases.Create", 1);
  await assert.rejects(client.call("leases.Create", { id: "fault-test" }), (err: unknown) => err instanceof ContainerdError && err.code === "unavailable");
  assert.equal(proxy.attempts("leases.Create"), 1);
  await suite.assertUnchanged("after a refused lease create", { settleMs: 0 });
});

test("a dead daemon: read-only calls fail fast after their retries, and work again once it is back", async () => {
  await suite.d.kill();
  try {
    proxy.reset();
    const t0 = Date.now();
    await assert.rejects(client.call("containers.List", {}), (err: unknown) => {
      assert.ok(err instanceof ContainerdError);
      assert.equal(err.code, "unavailable");
      assert.match(err.message, /^cannot reach containerd at unix:\/\/.*fault-proxy\.sock/);
      return true;
    });
    assert.ok(Date.now() - t0 < 5_000, `failed after ${Date.now() - t0} ms`);
    assert.equal(proxy.attempts("containers.List"), 4, "first attempt and three retries");
    await assert.rejects(planRestore(client, suite.checkpoints.faults.ref), (err: unknown) => err instanceof RestoreError && err.code === "daemon-unreachable");
  } finally {
    await suite.d.start();
  }
  const plan = await planRestore(client, suite.checkpoints.faults.ref);
  assert.equal(plan.checkpoint.digest, suite.checkpoints.faults.digest);
});

for (const [step, rpc] of [
  ["create-lease", RESTORE_STEP_RPC["create-lease"]],
  ["prepare-snapshot", RESTORE_STEP_RPC["prepare-snapshot"]],
] as const) {
  test(`a restore killed after ${step} leaves a lease${step === "prepare-snapshot" ? " and a snapshot" : ""}; teardown of the id clears them`, async () => {
    const plan = await planRestore(client, suite.checkpoints.faults.ref);
    const id = `killed-${step}`;
    proxy.reset();
    const fired = proxy.arm({ method: rpc, when: "after-response" });
    await assert.rejects(restore(client, plan, { id }), (err: unknown) => {
      assert.ok(err instanceof RestoreError);
      assert.ok(err.cleanupErrors.length > 0, "undo could not reach the daemon");
      return true;
    });
    await fired;
    await suite.d.start();
    const debris = await suite.debris();
    assert.ok(debris.some((line) => line.startsWith(`+ lease containerd-restore.restore.${id}.`)), `debris: ${debris}`);
    if (step === "prepare-snapshot") assert.ok(debris.includes(`+ snapshot(overlayfs) ${id} Active`), `debris: ${debris}`);

    const result = await teardown(client, id, { graceMs: 300 });
    assert.equal(result.existed, true);
    await suite.assertUnchanged(`after teardown of ${id}`);
    assert.equal((await teardown(client, id)).existed, false, "idempotent");
  });
}

test("teardown leaves other containers' leases alone (ids that share a prefix)", async () => {
  const other = "containerd-restore.restore.app.v2.0123abcd"; // a restore of app.v2, not of app
  await client.call("leases.Create", { id: other });
  try {
    await teardown(client, "app");
    const { leases } = await client.call("leases.List", {});
    assert.ok(leases.some((l) => l.id === other));
  } finally {
    await client.call("leases.Delete", { id: other });
  }
});
