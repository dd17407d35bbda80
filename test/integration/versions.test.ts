/**
 * What depends on the daemon's version: the version in the plan, the refusal of
 * daemons older than 1.6, teardown under containerd 2.4's stream resets (60
 * teardowns at once), and both forms of `linux.cgroupsPath`. Runs on whatever
 * containerd and runc the leg selected (scripts/test.sh).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { connect, describeRestore, planRestore, restore, RestoreError, teardown, type ContainerdClient } from "../../provider/index";
import { resolveOptions } from "../../provider/restore";
import { applyRwLayer, containerRecord, createContainer, prepareSnapshot } from "../../provider/restore/steps";
import { decodeMessage, encodeMessage, messageType } from "../../provider/containerd/proto";
import { MIN_DAEMON_VERSION, parseDaemonVersion } from "../../provider/restore/daemon-version";
import {
  MediaType,
  assertInventoryUnchanged,
  blob,
  describeVersions,
  findEntry,
  importBaseImage,
  makeCheckpoint,
  readContent,
  short,
  startContainerd,
  takeInventory,
  uniqueId,
  which,
  writeCustomIndex,
  type BaseImage,
  type Checkpoint,
  type Inventory,
  type PrivateContainerd,
} from "../harness";
import { startFaultProxy } from "../harness/fault-proxy";

let d: PrivateContainerd;
let client: ContainerdClient;
let image: BaseImage;
let checkpoint: Checkpoint;
let baseline: Inventory;

before(async () => {
  d = await startContainerd();
  client = connect(d.address, { namespace: d.namespace });
  image = await importBaseImage(d);
  checkpoint = await makeCheckpoint(d, { ref: "checkpoint/versions:v1", image });
  baseline = await takeInventory(d);
  console.log(`# versions under test: ${describeVersions()}`);
});

after(async () => {
  client?.close();
  await d?.stop();
});

describe("daemon version", () => {
  test("the plan records the version the daemon's Version service reports", async () => {
    const plan = await planRestore(client, checkpoint.ref);
    const reported = (await d.ctr(["version"])).match(/Server:[\s\S]*?Version:\s*(\S+)/)![1];
    assert.equal(plan.daemonVersion, reported);
    const parsed = parseDaemonVersion(plan.daemonVersion)!;
    assert.deepEqual([parsed.major, parsed.minor, parsed.patch], [d.version.major, d.version.minor, d.version.patch]);
  });

  for (const version of ["v1.5.18", "1.4.13", "0.2.0", "unknown"]) {
    test(`a daemon reporting ${version} is refused before anything else is asked`, async (t) => {
      t.diagnostic("no containerd older than 1.6 can be built here (the Go proxy serves none that builds with Go 1.26): a gRPC server answering only the Version service stands in");
      const fake = await startFakeVersionServer(version);
      const c = connect(fake.address, { namespace: "default" });
      try {
        const err: RestoreError = await planRestore(c, "checkpoint/any:v1").then(
          () => assert.fail("planned on an unsupported daemon"),
          (e: unknown) => e as RestoreError,
        );
        assert.ok(err instanceof RestoreError, String(err));
        assert.equal(err.code, "unsupported-daemon-version");
        assert.equal(err.subject, "daemonVersion");
        assert.match(err.message, new RegExp(`${version.replace(/\./g, "\\.")}.*(needs containerd ${MIN_DAEMON_VERSION.major}\\.${MIN_DAEMON_VERSION.minor} or newer|not X\\.Y\\.Z)`));
        assert.deepEqual(fake.calls, ["/containerd.services.version.v1.Version/Version"], "the version was asked once");
      } finally {
        c.close();
        await fake.close();
      }
    });
  }
});

/** A gRPC server on a unix socket that serves only containerd's Version service, answering `version`. */
async function startFakeVersionServer(version: string): Promise<{ address: string; calls: string[]; close(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-ctrd-"));
  const address = `unix://${path.join(dir, "containerd.sock")}`;
  const calls: string[] = [];
  const server = new grpc.Server();
  const response = encodeMessage(messageType("containerd.services.version.v1.VersionResponse"), { version, revision: "fake" });
  const identity = (b: Buffer): Buffer => b;
  const versionPath = "/containerd.services.version.v1.Version/Version";
  server.addService(
    {
      Version: {
        path: versionPath,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      Version: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        calls.push(versionPath);
        callback(null, response);
      },
    },
  );
  // Any other method answers UNIMPLEMENTED: planning past the version check would fail with daemon-error.
  await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  return {
    address,
    calls,
    close: () =>
      new Promise<void>((resolve) =>
        server.tryShutdown(() => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        }),
      ),
  };
}

describe("teardown", () => {
  test("60 teardowns at once all succeed, each past its grace period (SIGTERM ignored, then SIGKILL)", async (t) => {
    t.diagnostic(`containerd ${d.version.text}: 2.4 resets a Wait stream at its deadline, reaching grpc-js as CANCELLED`);
    const ids = Array.from({ length: 60 }, (_, i) => uniqueId(`many${i}`));
    const plan = await planRestore(client, checkpoint.ref);
    // Restores six at a time (two cores); the teardowns then all run at once.
    for (let i = 0; i < ids.length; i += 6) await Promise.all(ids.slice(i, i + 6).map((id) => restore(client, plan, { id })));
    const results = await Promise.allSettled(ids.map((id) => teardown(client, id, { graceMs: 1_000 })));
    const failures = results.flatMap((r, i) => (r.status === "rejected" ? [`${ids[i]}: ${(r.reason as Error).message}`] : []));
    assert.deepEqual(failures, [], `${failures.length} of 60 teardowns failed`);
    for (const r of results) {
      const value = (r as PromiseFulfilledResult<Awaited<ReturnType<typeof teardown>>>).value;
      assert.equal(value.existed, true);
      assert.equal(value.killed, true, "the shell ignores SIGTERM as pid 1: the grace period ran out");
      assert.equal(value.exitStatus, 137);
    }
    await assertInventoryUnchanged(d, baseline, "after 60 concurrent teardowns");
  });
});

describe("teardown when the daemon resets a Wait stream early", () => {
  test("the wait is taken up again for the rest of the grace period: no failure, no grace cut short", async (t) => {
    t.diagnostic("a proxy resets the first tasks.Wait stream after 300 ms (RST_STREAM CANCEL), as containerd 2.4 does at a deadline");
    const proxy = await startFaultProxy(d);
    const viaProxy = connect(proxy.address, { namespace: d.namespace });
    const id = uniqueId("rst");
    try {
      await restore(client, await planRestore(client, checkpoint.ref), { id });
      proxy.reset();
      proxy.resetStreams("tasks.Wait", 1, 300);
      const t0 = performance.now();
      const result = await teardown(viaProxy, id, { graceMs: 1_500 });
      const waited = performance.now() - t0;
      assert.deepEqual(result, { existed: true, exitStatus: 137, killed: true });
      // The shell ignores SIGTERM: SIGKILL may only come once the whole grace period has passed.
      assert.ok(waited >= 1_500, `SIGKILL after ${Math.round(waited)} ms, before the 1500 ms grace period ended`);
      assert.ok(proxy.attempts("tasks.Wait") >= 3, `the reset wait, the wait for the rest, the wait after SIGKILL: ${proxy.attempts("tasks.Wait")}`);
      assert.equal(proxy.attempts("tasks.Kill"), 2, "SIGTERM once, SIGKILL once: no signal is sent again");
    } finally {
      viaProxy.close();
      await proxy.close();
    }
    await assertInventoryUnchanged(d, baseline, "after the teardown through resets");
  });
});

describe("cgroup drivers: linux.cgroupsPath of the restored container", () => {
  test("cgroupfs (a path): the copy runs in /<namespace>/<id> in every hierarchy", async (t) => {
    const hybrid = fs.existsSync("/sys/fs/cgroup/memory") && fs.existsSync("/sys/fs/cgroup/unified");
    t.diagnostic(`cgroup layout here: ${hybrid ? "v1 hybrid (v1 controllers, v2 unified at /sys/fs/cgroup/unified)" : fs.existsSync("/sys/fs/cgroup/cgroup.controllers") ? "v2 unified" : "v1"}`);
    const id = uniqueId("cgfs");
    const result = await restore(client, await planRestore(client, checkpoint.ref), { id });
    try {
      const lines = fs.readFileSync(`/proc/${result.pid}/cgroup`, "utf8").trim().split("\n");
      const want = `/${d.namespace}/${id}`;
      const controllers = lines.filter((line) => /^\d+:[^:]+:/.test(line) && !/:name=systemd:/.test(line));
      assert.ok(controllers.length > 0, lines.join("\n"));
      for (const line of controllers) assert.ok(line.endsWith(`:${want}`), `${line} is not in ${want}`);
      if (fs.existsSync("/sys/fs/cgroup/memory")) assert.ok(fs.existsSync(`/sys/fs/cgroup/memory${want}`), `memory cgroup ${want} exists`);
    } finally {
      await teardown(client, id, { graceMs: 300 });
    }
    await assertInventoryUnchanged(d, baseline, "after the cgroupfs restore");
  });

  test("systemd (slice:prefix:name): the copy keeps slice and prefix and takes its own name", async (t) => {
    // A checkpoint of a container made under the systemd driver: same blobs, the spec's cgroupsPath in systemd form.
    const configAny = decodeMessage<{ typeUrl: string; value: Uint8Array }>(
      messageType("google.protobuf.Any"),
      await readContent(d, findEntry(checkpoint.index, MediaType.checkpointConfig)!.digest),
    );
    const spec = JSON.parse(Buffer.from(configAny.value).toString("utf8")) as Record<string, unknown>;
    const original = (spec.linux as { cgroupsPath?: string }).cgroupsPath;
    assert.ok(original?.startsWith("/"), `ctr's checkpoint has a cgroupfs path (${original})`);
    (spec.linux as { cgroupsPath: string }).cgroupsPath = `system.slice:pcr-test:${checkpoint.originalId}`;
    const config = blob(encodeMessage(messageType("google.protobuf.Any"), { typeUrl: configAny.typeUrl, value: Buffer.from(JSON.stringify(spec)) }));
    const index = structuredClone(checkpoint.index);
    const entry = findEntry(index, MediaType.checkpointConfig)!;
    entry.digest = config.digest;
    entry.size = config.data.length;
    const { ref } = await writeCustomIndex(d, "checkpoint/systemd-cgroup:v1", index, [config.data]);

    const id = uniqueId("cgsd");
    const plan = await planRestore(client, ref);
    const described = describeRestore(plan, { id }, d.namespace).find((s) => s.step === "create-container")!;
    assert.equal(described.cgroupsPath, `system.slice:pcr-test:${id}`);
    // The container record the daemon stores (what the shim hands to runc).
    // The restore's steps up to create-container, run by hand.
    const { mounts } = await prepareSnapshot.run(client, { snapshotter: plan.snapshotter, key: id, parent: plan.snapshotParent });
    if (plan.rwLayer) await applyRwLayer.run(client, { layer: plan.rwLayer, mounts });
    await createContainer.run(client, { container: containerRecord(plan, resolveOptions({ id }), client.namespace) });
    try {
      const info = JSON.parse(await d.ctr(["containers", "info", id])) as { Spec?: { linux?: { cgroupsPath?: string } } };
      assert.equal(info.Spec?.linux?.cgroupsPath, `system.slice:pcr-test:${id}`);
    } finally {
      assert.equal((await teardown(client, id, { graceMs: 300 })).existed, true);
    }
    const systemdInit = fs.readFileSync("/proc/1/comm", "utf8").trim() === "systemd";
    t.diagnostic(
      systemdInit
        ? "systemd is pid 1 here, but the daemon's runc runs with the cgroupfs driver; a task under SystemdCgroup = true was not started"
        : `not run here: a task under the systemd driver (SystemdCgroup = true), because pid 1 is ${fs.readFileSync("/proc/1/comm", "utf8").trim()}, not systemd, and runc's systemd driver talks to systemd over D-Bus`,
    );
    await d.ctr(["images", "rm", ref]);
  });
});

test("the runc the daemon's shim runs is the one selected", (t) => {
  const runc = which("runc");
  t.diagnostic(`runc on PATH: ${runc}; containerd ${short(d.version)} from ${d.binDir}`);
  if (process.env.PCR_RUNC_VERSION === "1.1.5") assert.ok(runc === "/usr/sbin/runc" || runc === "/usr/bin/runc", `Debian's runc, not ${runc}`);
  else if (process.env.PCR_RUNC_VERSION) assert.ok(runc?.includes(`runc-v${process.env.PCR_RUNC_VERSION}/`), `${runc} is runc ${process.env.PCR_RUNC_VERSION}`);
});
