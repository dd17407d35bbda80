/** The restore verb over its typed steps, against a fake daemon: order, leases, undo, errors. No daemon. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { RestoreError } from "../../provider/errors";
import { describeRestore, resolveOptions, restore, type RestorePlan } from "../../provider/restore";
import { containerRecord } from "../../provider/restore/steps";
import { daemonFailure, fakeDaemon, restoreErrorOf, type Handlers } from "./fake-client";
import { evaluatePolicy } from "../../provider/policy";
import { decodeRuncOptions } from "../../provider/containerd";
import { ctrRunSpec } from "./fixtures/ctr-run-spec";

/** An ordinary container's spec (ctr run's): what the default restore policy admits. */
const spec = ctrRunSpec();

const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

const plan: RestorePlan = {
  checkpoint: { ref: "checkpoint/app:v1", digest: digest(1), format: "modern", schemaVersion: 2 },
  image: { name: "docker.io/library/busybox:1", manifestDigest: digest(2), configDigest: digest(3), diffIds: [digest(4)] },
  snapshotter: "overlayfs",
  snapshotParent: digest(4),
  runtime: { name: "io.containerd.runc.v2", options: { typeUrl: "containerd.runc.v1.Options", valueBase64: "" } },
  rwLayer: { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: digest(5), size: 50 },
  criuImage: { mediaType: "application/vnd.containerd.container.criu.checkpoint.criu.tar", digest: digest(6), size: 60 },
  spec,
  security: evaluatePolicy({ spec, runtime: { name: "io.containerd.runc.v2" } }).summary,
  daemonVersion: "v2.4.2",
};

/** A daemon on which every restore call succeeds, unless `overrides` say otherwise. */
function goodDaemon(overrides: Handlers = {}) {
  return fakeDaemon({
    "snapshots.Prepare": () => ({ mounts: [{ type: "overlay", source: "overlay", options: ["lowerdir=/l"] }] }),
    "diff.Apply": (request) => ({ applied: request.diff }),
    "containers.Create": (request) => ({ container: request.container }),
    "tasks.Create": () => ({ containerId: "c1", pid: 0 }),
    "tasks.Start": () => ({ pid: 4242 }),
    "tasks.Get": () => ({ process: { containerId: "c1", id: "c1", pid: 4242, status: "RUNNING", exitStatus: 0 } }),
    "tasks.Wait": () => ({ exitStatus: 137 }),
    ...overrides,
  });
}

const RESTORE_CALLS = [
  "leases.Create",
  "snapshots.Prepare@lease",
  "diff.Apply@lease",
  "containers.Create@lease",
  "leases.Delete",
  "tasks.Create",
  "tasks.Start",
];

describe("restore over the transaction runner", () => {
  test("a live rw restore: snapshot, rw layer and container under the lease, then the task; the preview lists the same order", async () => {
    const fake = goodDaemon();
    const result = await restore(fake.client, plan, { id: "c1" });
    assert.equal(result.pid, 4242);
    assert.deepEqual(fake.log(), RESTORE_CALLS);
    const steps = result.steps.map((s) => s.step);
    assert.deepEqual(steps, ["create-lease", "prepare-snapshot", "apply-rw-layer", "create-container", "release-lease", "create-task", "start-task"]);
    assert.deepEqual(describeRestore(plan, { id: "c1" }, "fake").map((s) => s.step), steps);
    const create = fake.calls.find((c) => c.method === "tasks.Create")?.request as { checkpoint?: { digest: string }; rootfs: unknown[] };
    assert.equal(create.checkpoint?.digest, plan.criuImage?.digest, "the CRIU image goes to create-task");
    assert.equal(create.rootfs.length, 1, "on the mounts prepare-snapshot returned");
    assert.deepEqual(result.cleanupErrors, []);
  });

  test("a cold restore without the rw layer: no diff, a fresh process; preview and run agree", async () => {
    const fake = goodDaemon();
    const result = await restore(fake.client, plan, { id: "c1", live: false, restoreRw: false });
    assert.deepEqual(fake.log(), RESTORE_CALLS.filter((c) => c !== "diff.Apply@lease"));
    const create = fake.calls.find((c) => c.method === "tasks.Create")?.request as { checkpoint?: unknown };
    assert.equal(create.checkpoint, undefined);
    assert.deepEqual(
      result.steps.map((s) => s.step),
      describeRestore(plan, { id: "c1", live: false, restoreRw: false }, "fake").map((s) => s.step),
    );
  });

  test("a failed start undoes task, container and snapshot in reverse, then the lease is already gone", async () => {
    const fake = goodDaemon({
      "tasks.Start": () => {
        throw daemonFailure("internal", "tasks.Start", "shim died");
      },
      "tasks.Get": () => ({ process: { containerId: "c1", id: "c1", pid: 0, status: "CREATED", exitStatus: 0 } }),
    });
    const err = await restoreErrorOf(restore(fake.client, plan, { id: "c1" }));
    assert.equal(err.step, "start-task");
    assert.equal(err.code, "daemon-error");
    assert.match(err.message, /^start-task: tasks\.Start: shim died$/);
    assert.deepEqual(fake.log().slice(RESTORE_CALLS.length), ["tasks.Get", "tasks.Delete", "containers.Delete", "snapshots.Remove"]);
  });

  test("a failure under the lease undoes the snapshot before the lease is deleted", async () => {
    const fake = goodDaemon({
      "containers.Create": () => {
        throw daemonFailure("internal", "containers.Create");
      },
    });
    const err = await restoreErrorOf(restore(fake.client, plan, { id: "c1" }));
    assert.equal(err.step, "create-container");
    assert.deepEqual(fake.log().slice(4), ["snapshots.Remove", "leases.Delete"]);
  });

  test("a lease that cannot be released leaves the restored container running and reports it", async () => {
    const fake = goodDaemon({
      "leases.Delete": () => {
        throw daemonFailure("unavailable", "leases.Delete");
      },
    });
    const result = await restore(fake.client, plan, { id: "c1" });
    assert.equal(result.pid, 4242);
    assert.deepEqual(result.cleanupErrors.map((e) => e.step), ["release-lease"]);
    assert.ok(!fake.log().includes("containers.Delete"), "the container is not undone");
  });

  test("a snapshot or container that exists already is id-in-use on the id", async () => {
    const fake = goodDaemon({
      "snapshots.Prepare": () => {
        throw daemonFailure("already-exists", "snapshots.Prepare");
      },
    });
    const err = await restoreErrorOf(restore(fake.client, plan, { id: "c1" }));
    assert.equal(err.code, "id-in-use");
    assert.equal(err.subject, "id");
    assert.equal(err.step, "prepare-snapshot");
    assert.match(err.message, /snapshot c1 already exists in overlayfs/);
  });

  test("CRIU failing at start: the tail of restore.log comes from the work dir the restore chose, never a path the message names", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "foreign-"));
    const foreign = path.join(dir, "other.log");
    fs.writeFileSync(foreign, "FOREIGN SECRET\n");
    let workDir = "";
    try {
      const fake = goodDaemon({
        "tasks.Create": (request) => {
          assert.equal(request.options?.typeUrl, "containerd.runc.v1.Options");
          workDir = decodeRuncOptions(request.options!.value).options.criuWorkPath ?? "";
          return { containerId: "c1", pid: 0 };
        },
        "tasks.Start": () => {
          // What CRIU would write into the work dir runc was given.
          fs.writeFileSync(path.join(workDir, "restore.log"), "line 1\n\nline 2\nError (criu/cr-restore.c:1): restore failed\n");
          throw daemonFailure("unknown", "tasks.Start", `criu failed: type RESTORE errno 0\nlog file: ${foreign}`);
        },
      });
      const err = await restoreErrorOf(restore(fake.client, plan, { id: "c1" }));
      assert.equal(err.code, "criu-failed");
      assert.deepEqual(err.restoreLog, ["line 1", "line 2", "Error (criu/cr-restore.c:1): restore failed"]);
      assert.match(err.message, /restore\.log \(last 3 lines\)/);
      assert.doesNotMatch(err.message, /FOREIGN SECRET/);
      assert.ok(workDir.startsWith(os.tmpdir()), `work dir ${workDir} chosen by the provider`);
      assert.equal(fs.existsSync(workDir), false, "the work dir is removed after the restore");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a live restore of a checkpoint without CRIU image is refused before any call", async () => {
    const fake = goodDaemon();
    const { criuImage: _none, ...withoutCriu } = plan;
    const err = await restoreErrorOf(restore(fake.client, withoutCriu, { id: "c1" }));
    assert.equal(err.code, "no-criu-image");
    assert.deepEqual(fake.log(), []);
  });
});

describe("restore options", () => {
  test("bad options are refused with the field as subject, before anything changes", () => {
    const refused = (options: Parameters<typeof resolveOptions>[0]) => {
      try {
        resolveOptions(options);
      } catch (err) {
        assert.ok(err instanceof RestoreError);
        return [err.code, err.subject, err.message];
      }
      assert.fail("accepted");
    };
    assert.deepEqual(refused({ id: "a/b" }).slice(0, 2), ["invalid-id", "id"]);
    assert.deepEqual(refused({ id: "ok", logPath: "rel.log" }), ["invalid-option", "logPath", "logPath must be an absolute path on the daemon host"]);
    assert.deepEqual(refused({ id: "ok", stopSignal: "SIGNOPE" }), ["invalid-option", "stopSignal", 'stopSignal unknown signal "SIGNOPE"']);
    assert.deepEqual(refused({ id: "ok", labels: { "containerd-restore/owner": "me" } }).slice(0, 2), ["invalid-option", "labels"]);
  });

  test("the container record carries the spec moved to its own cgroup, the runtime options and the labels", () => {
    const record = containerRecord(plan, resolveOptions({ id: "c1", labels: { team: "a" }, stopSignal: "SIGINT" }), "ns");
    const spec = JSON.parse(Buffer.from(record.spec?.value ?? []).toString()) as { linux: { cgroupsPath: string } };
    assert.equal(spec.linux.cgroupsPath, "/ns/c1");
    assert.equal(record.snapshotKey, "c1");
    assert.equal(record.runtime?.options?.typeUrl, "containerd.runc.v1.Options");
    assert.equal(record.labels?.team, "a");
    assert.equal(record.labels?.["io.containerd.image.config.stop-signal"], "SIGINT");
    assert.equal(record.labels?.["containerd-restore/mode"], "live");
  });
});
