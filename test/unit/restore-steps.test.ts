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

const CRIU_DIR = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/9/fs";

/** What overlayfs answers: the container's snapshot on its parent, the CRIU one (no parent) a bind of its dir. */
function overlayPrepare(request: { key: string; parent: string }) {
  if (request.parent === "") return { mounts: [{ type: "bind", source: CRIU_DIR, options: ["rw", "rbind"] }] };
  return { mounts: [{ type: "overlay", source: "overlay", options: ["lowerdir=/l"] }] };
}

/** A daemon on which every restore call succeeds, unless `overrides` say otherwise. */
function goodDaemon(overrides: Handlers = {}) {
  return fakeDaemon(goodDaemonHandlers(overrides));
}

function goodDaemonHandlers(overrides: Handlers = {}): Handlers {
  return {
    "snapshots.Prepare": overlayPrepare,
    "diff.Apply": (request) => ({ applied: request.diff }),
    "containers.Create": (request) => ({ container: request.container }),
    "tasks.Create": () => ({ containerId: "c1", pid: 0 }),
    "tasks.Start": () => ({ pid: 4242 }),
    "tasks.Get": () => ({ process: { containerId: "c1", id: "c1", pid: 4242, status: "RUNNING", exitStatus: 0 } }),
    "tasks.Wait": () => ({ exitStatus: 137 }),
    ...overrides,
  };
}

/** A live restore on a local daemon: the CRIU image unpacked into a snapshot of its own, the lease held until start. */
const RESTORE_CALLS = [
  "leases.Create",
  "snapshots.Prepare@lease",
  "containers.Create@lease",
  "snapshots.Prepare@lease",
  "diff.Apply@lease",
  "diff.Apply@lease",
  "tasks.Create",
  "tasks.Start",
  "leases.Delete",
  "snapshots.Remove",
];

/** The steps before a cold (or remote) restore's create-task: the lease goes alongside the task. */
const COLD_CALLS = ["leases.Create", "snapshots.Prepare@lease", "containers.Create@lease", "diff.Apply@lease", "leases.Delete", "tasks.Create", "tasks.Start"];

type CreateRequest = { checkpoint?: { digest: string }; rootfs: unknown[]; options?: { value: Uint8Array } };
const taskCreate = (fake: ReturnType<typeof goodDaemon>) => fake.calls.find((c) => c.method === "tasks.Create")?.request as CreateRequest;
const criuSnapshotCalls = (fake: ReturnType<typeof goodDaemon>) =>
  fake.calls.filter((c) => (c.request as { key?: string } | undefined)?.key?.startsWith("containerd-restore.criu.c1.")).map((c) => c.method);

describe("restore over the transaction runner", () => {
  test("a live rw restore: snapshots, rw layer, CRIU image and container under the lease, then the task from the CRIU dir; the preview lists the same order", async () => {
    const fake = goodDaemon();
    const result = await restore(fake.client, plan, { id: "c1" });
    assert.equal(result.pid, 4242);
    assert.deepEqual(fake.log(), RESTORE_CALLS);
    const steps = result.steps.map((s) => s.step);
    assert.deepEqual(steps, [
      "create-lease",
      "prepare-snapshot",
      "create-container",
      "prepare-criu-snapshot",
      "apply-rw-layer",
      "unpack-criu-image",
      "create-task",
      "start-task",
      "release-lease",
      "remove-criu-snapshot",
    ]);
    assert.deepEqual(describeRestore(plan, { id: "c1" }, "fake").map((s) => s.step), steps);
    const criuPrepare = fake.calls.filter((c) => c.method === "snapshots.Prepare")[1].request as { key: string; parent: string; snapshotter: string };
    assert.match(criuPrepare.key, /^containerd-restore\.criu\.c1\.[0-9a-f]{8}$/);
    assert.equal(criuPrepare.parent, "");
    assert.equal(criuPrepare.snapshotter, plan.snapshotter);
    const unpack = fake.calls.filter((c) => c.method === "diff.Apply")[1].request as { diff: { mediaType: string; digest: string; size: number }; mounts: { source: string }[] };
    assert.deepEqual(unpack.diff, { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: plan.criuImage?.digest, size: plan.criuImage?.size });
    assert.equal(unpack.mounts[0].source, CRIU_DIR);
    const create = taskCreate(fake);
    assert.equal(create.checkpoint, undefined, "no descriptor: containerd would unpack it into a temp dir it never removes");
    assert.equal(decodeRuncOptions(create.options!.value).options.criuImagePath, CRIU_DIR);
    assert.equal(create.rootfs.length, 1, "on the mounts prepare-snapshot returned");
    assert.deepEqual(fake.calls.at(-1)?.request, { snapshotter: plan.snapshotter, key: criuPrepare.key });
    assert.deepEqual(result.cleanupErrors, []);
  });

  test("a live restore on a remote daemon gives Tasks.Create the descriptor, as before; preview and run agree", async () => {
    const fake = fakeDaemon({ ...goodDaemonHandlers() }, { address: "tcp://10.0.0.1:7000" });
    const result = await restore(fake.client, plan, { id: "c1" });
    assert.deepEqual(fake.log(), COLD_CALLS);
    assert.equal(taskCreate(fake).checkpoint?.digest, plan.criuImage?.digest);
    assert.deepEqual(result.steps.map((s) => s.step), describeRestore(plan, { id: "c1" }, "fake", { local: false }).map((s) => s.step));
  });

  for (const [what, mounts] of [
    ["an overlay mount", [{ type: "overlay", source: "overlay", options: ["upperdir=/u"] }]],
    ["two bind mounts", [{ type: "bind", source: "/a", options: [] }, { type: "bind", source: "/b", options: [] }]],
    ["a relative source", [{ type: "bind", source: "snapshots/9/fs", options: [] }]],
    ["a source with ..", [{ type: "bind", source: "/var/lib/containerd/../../etc", options: [] }]],
    ["an unnormalized source", [{ type: "bind", source: "/var//lib/x/", options: [] }]],
  ] as const) {
    test(`a CRIU snapshot whose mounts are ${what} is removed again; Tasks.Create gets the descriptor`, async () => {
      const fake = goodDaemon({ "snapshots.Prepare": (r) => (r.parent === "" ? { mounts: mounts.map((m) => ({ ...m, options: [...m.options] })) } : overlayPrepare(r)) });
      const result = await restore(fake.client, plan, { id: "c1" });
      assert.equal(result.pid, 4242);
      assert.deepEqual(criuSnapshotCalls(fake), ["snapshots.Prepare", "snapshots.Remove"]);
      assert.equal(fake.calls.filter((c) => c.method === "diff.Apply").length, 1, "only the rw layer");
      const create = taskCreate(fake);
      assert.equal(create.checkpoint?.digest, plan.criuImage?.digest);
      assert.equal(decodeRuncOptions(create.options!.value).options.criuImagePath, "", "unset");
      assert.ok(!result.steps.some((s) => s.step === "unpack-criu-image" || s.step === "remove-criu-snapshot"));
      assert.deepEqual(result.cleanupErrors, []);
    });
  }

  test("a runtime other than runc's keeps the descriptor: containerd 1.6 reads criu_image_path only for io.containerd.runc.*", async () => {
    const fake = goodDaemon();
    const other = { ...plan, runtime: { name: "io.containerd.runsc.v1" } };
    await restore(fake.client, other, { id: "c1", allow: { runtimes: ["io.containerd.runsc.v1"] } });
    assert.deepEqual(criuSnapshotCalls(fake), []);
    assert.equal(taskCreate(fake).checkpoint?.digest, plan.criuImage?.digest);
  });

  test("a failed CRIU unpack undoes both snapshots and the container, then deletes the lease", async () => {
    const fake = goodDaemon({
      "diff.Apply": (request) => {
        if (request.diff.mediaType === "application/vnd.oci.image.layer.v1.tar") throw daemonFailure("internal", "diff.Apply", "no space left on device");
        return { applied: request.diff };
      },
    });
    const err = await restoreErrorOf(restore(fake.client, plan, { id: "c1" }));
    assert.equal(err.step, "unpack-criu-image");
    assert.match(err.message, /^unpack-criu-image: diff\.Apply: no space left on device$/);
    assert.deepEqual(err.cleanupErrors, []);
    assert.deepEqual(criuSnapshotCalls(fake), ["snapshots.Prepare", "snapshots.Remove"]);
    assert.deepEqual(fake.log().slice(-4), ["snapshots.Remove", "containers.Delete", "snapshots.Remove", "leases.Delete"]);
    assert.ok(!fake.log().includes("tasks.Create"));
  });

  test("a cold restore without the rw layer: no diff, a fresh process; preview and run agree", async () => {
    const fake = goodDaemon();
    const result = await restore(fake.client, plan, { id: "c1", live: false, restoreRw: false });
    assert.deepEqual(fake.log(), COLD_CALLS.filter((c) => c !== "diff.Apply@lease"));
    const create = fake.calls.find((c) => c.method === "tasks.Create")?.request as { checkpoint?: unknown };
    assert.equal(create.checkpoint, undefined);
    assert.deepEqual(
      result.steps.map((s) => s.step),
      describeRestore(plan, { id: "c1", live: false, restoreRw: false }, "fake").map((s) => s.step),
    );
  });

  test("a failed start undoes task, CRIU snapshot, container and snapshot in reverse, then the lease", async () => {
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
    // The lease was held through start (for the CRIU snapshot): it goes last.
    assert.deepEqual(fake.log().slice(RESTORE_CALLS.length - 2), ["tasks.Get", "tasks.Delete", "snapshots.Remove", "containers.Delete", "snapshots.Remove", "leases.Delete"]);
    assert.deepEqual(criuSnapshotCalls(fake), ["snapshots.Prepare", "snapshots.Remove"]);
  });

  test("a failure under the lease undoes the snapshot before the lease is deleted", async () => {
    const fake = goodDaemon({
      "containers.Create": () => {
        throw daemonFailure("internal", "containers.Create");
      },
    });
    const err = await restoreErrorOf(restore(fake.client, plan, { id: "c1" }));
    assert.equal(err.step, "create-container");
    // The CRIU snapshot is prepared only once both are made: the container's snapshot, then the lease.
    assert.deepEqual(fake.log().slice(3), ["snapshots.Remove", "leases.Delete"]);
  });

  for (const [what, method, step] of [
    ["a lease that cannot be released", "leases.Delete", "release-lease"],
    ["a CRIU snapshot that cannot be removed after start", "snapshots.Remove", "remove-criu-snapshot"],
  ] as const) {
    test(`${what} leaves the restored container running and reports it`, async () => {
      const fake = goodDaemon({
        [method]: () => {
          throw daemonFailure("unavailable", method);
        },
      });
      const result = await restore(fake.client, plan, { id: "c1" });
      assert.equal(result.pid, 4242);
      assert.deepEqual(result.cleanupErrors.map((e) => e.step), [step]);
      assert.ok(!fake.log().includes("containers.Delete"), "the container is not undone");
    });
  }

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
