/** Checkpoint creation and copy as transactions, against fake daemons: order, undo, leases. No daemon. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkpointContainer, copyCheckpoint } from "../../provider";
import { digestOf, type Descriptor } from "../../provider/containerd";
import { MediaType } from "../../provider/checkpoint";
import { daemonFailure, fakeDaemon, restoreErrorOf, type Handlers } from "./fake-client";

const BASE = "docker.io/library/busybox:1";
const CRIU: Descriptor = { mediaType: MediaType.criuImage, digest: `sha256:${"c".repeat(64)}`, size: 600 };
const SPEC: Descriptor = { mediaType: MediaType.checkpointConfig, digest: `sha256:${"d".repeat(64)}`, size: 60 };

/** A daemon with one running container `app` on image BASE, whose task is in `status()`. */
function checkpointDaemon(overrides: Handlers = {}, status: () => "RUNNING" | "PAUSED" | "STOPPED" = () => "PAUSED") {
  return fakeDaemon({
    "containers.Get": () => ({
      container: {
        id: "app",
        image: BASE,
        runtime: { name: "io.containerd.runc.v2" },
        snapshotter: "overlayfs",
        snapshotKey: "app",
        spec: { typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Spec", value: Buffer.from("{}") },
      },
    }),
    "images.Get": ({ name }) => {
      if (name !== BASE) throw daemonFailure("not-found", "images.Get", `image "${name}": not found`);
      return { image: { name, target: { mediaType: MediaType.ociManifest, digest: `sha256:${"b".repeat(64)}`, size: 400 } } };
    },
    "snapshots.Stat": () => ({ info: { name: "app", parent: "chain", kind: "ACTIVE" } }),
    "snapshots.View": () => ({ mounts: [] }),
    "snapshots.Mounts": () => ({ mounts: [] }),
    "diff.Diff": () => ({ diff: { mediaType: MediaType.ociLayerGzip, digest: `sha256:${"e".repeat(64)}`, size: 50 } }),
    "tasks.Checkpoint": () => ({ descriptors: [CRIU, SPEC] }),
    "images.Create": ({ image }) => ({ image }),
    "tasks.Get": () => ({ process: { containerId: "app", id: "app", pid: 10, status: status(), exitStatus: 0 } }),
    ...overrides,
  });
}

describe("checkpointContainer", () => {
  test("pause, blobs, checkpoint, index and image under a lease, then resume; the index lists every entry", async () => {
    const fake = checkpointDaemon();
    const result = await checkpointContainer(fake.client, "app", { ref: "checkpoint/app:1" });
    assert.deepEqual(
      result.steps.map((s) => s.step),
      ["create-lease", "pause-task", "write-blobs", "checkpoint-task", "write-index", "create-image", "release-lease", "resume-task"],
    );
    const log = fake.log();
    assert.deepEqual(log.slice(0, 5), ["containers.Get", "images.Get", "images.Get", "leases.Create", "tasks.Pause@lease"]);
    assert.deepEqual(log.slice(-3), ["images.Create@lease", "leases.Delete", "tasks.Resume"]);
    const index = JSON.parse(fake.content.get(result.digest)?.toString() ?? "{}") as { manifests: Descriptor[]; annotations: Record<string, string> };
    assert.deepEqual(
      index.manifests.map((m) => m.mediaType),
      [MediaType.ociManifest, MediaType.ociLayerGzip, MediaType.criuImage, MediaType.checkpointConfig, MediaType.checkpointOptions],
    );
    assert.equal(index.annotations["org.opencontainers.image.ref.name"], BASE);
    assert.equal(result.criuImageBytes, CRIU.size);
    assert.deepEqual(result.cleanupErrors, []);
  });

  test("a checkpoint without CRIU image fails checkpoint-task; the paused task is resumed and the lease released", async () => {
    const fake = checkpointDaemon({ "tasks.Checkpoint": () => ({ descriptors: [SPEC] }) });
    const err = await restoreErrorOf(checkpointContainer(fake.client, "app", { ref: "checkpoint/app:1" }));
    assert.equal(err.step, "checkpoint-task");
    assert.equal(err.code, "incomplete-checkpoint");
    assert.deepEqual(fake.log().slice(-3), ["tasks.Get", "tasks.Resume", "leases.Delete"]);
    assert.ok(!fake.log().includes("images.Create@lease"));
  });

  test("a failed image record after a checkpoint that stopped the task: nothing to resume", async () => {
    const fake = checkpointDaemon(
      {
        "images.Create": () => {
          throw daemonFailure("internal", "images.Create");
        },
      },
      () => "STOPPED",
    );
    const err = await restoreErrorOf(checkpointContainer(fake.client, "app", { ref: "checkpoint/app:1", leaveRunning: false }));
    assert.equal(err.step, "create-image");
    assert.ok(!fake.log().includes("tasks.Resume"), fake.log().join(", "));
  });

  test("containerd's re-checkpoint bug (AlreadyExists) is met by a unique spec and one retry", async () => {
    let attempts = 0;
    const fake = checkpointDaemon({
      "tasks.Checkpoint": () => {
        if (attempts++ === 0) throw daemonFailure("already-exists", "tasks.Checkpoint");
        return { descriptors: [CRIU, SPEC] };
      },
      "containers.Update": ({ container }) => ({ container }),
    });
    await checkpointContainer(fake.client, "app", { ref: "checkpoint/app:1" });
    assert.equal(attempts, 2);
    assert.ok(fake.log().includes("containers.Update@lease"));
  });

  test("a ref that is taken is refused before the task is touched", async () => {
    const fake = checkpointDaemon();
    const err = await restoreErrorOf(checkpointContainer(fake.client, "app", { ref: BASE }));
    assert.equal(err.subject, "ref");
    assert.ok(!fake.log().some((m) => m.startsWith("tasks.")));
  });
});

/** A source daemon holding a modern checkpoint of one container on a one-layer base image. */
function sourceWithCheckpoint() {
  const source = fakeDaemon({
    "images.Get": ({ name }) => {
      const target = images.get(name);
      if (!target) throw daemonFailure("not-found", "images.Get");
      return { image: { name, target } };
    },
  });
  const put = (mediaType: string, data: Buffer | string): Descriptor => {
    const bytes = Buffer.from(data);
    source.content.set(digestOf(bytes), bytes);
    return { mediaType, digest: digestOf(bytes), size: bytes.length };
  };
  const layer = put(MediaType.ociLayerGzip, "layer bytes");
  const diffId = `sha256:${"1".repeat(64)}`;
  const config = put("application/vnd.oci.image.config.v1+json", JSON.stringify({ rootfs: { type: "layers", diff_ids: [diffId] } }));
  const manifest = put(MediaType.ociManifest, JSON.stringify({ config, layers: [layer] }));
  const criu = put(MediaType.criuImage, "criu bytes");
  const spec = put(MediaType.checkpointConfig, "spec bytes");
  const index = put(
    MediaType.ociIndex,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [manifest, criu, spec],
      annotations: { "org.opencontainers.image.ref.name": BASE, "io.containerd.checkpoint.runtime": "io.containerd.runc.v2", "io.containerd.checkpoint.snapshotter": "overlayfs" },
    }),
  );
  const images = new Map([
    [BASE, manifest],
    ["checkpoint/app:1", index],
  ]);
  return { source, layer, diffId, config, manifest, index };
}

/** A target daemon that has nothing, and unpacks layers to `appliedAs`. */
function emptyTarget(appliedAs: string, overrides: Handlers = {}) {
  return fakeDaemon({
    "images.Get": () => {
      throw daemonFailure("not-found", "images.Get");
    },
    "images.Create": ({ image }) => ({ image }),
    "snapshots.Stat": () => {
      throw daemonFailure("not-found", "snapshots.Stat");
    },
    "snapshots.Prepare": () => ({ mounts: [] }),
    "diff.Apply": (request) => ({ applied: { ...request.diff, digest: appliedAs } }),
    "snapshots.Commit": () => ({}),
    "content.Update": ({ info }) => ({ info: { digest: info.digest, size: 0 } }),
    ...overrides,
  });
}

describe("copyCheckpoint", () => {
  test("blobs children first, the base image record, the layer unpacked, the checkpoint named last; the lease released", async () => {
    const { source, layer, diffId, config, manifest, index } = sourceWithCheckpoint();
    const target = emptyTarget(diffId);
    const result = await copyCheckpoint(source.client, target.client, "checkpoint/app:1");
    assert.equal(result.digest, index.digest);
    assert.deepEqual(result.baseImage, { name: BASE, created: true, unpacked: true });
    assert.equal(result.blobsCopied, 6);
    const order = [layer, config, manifest].map((d) => d.digest);
    assert.deepEqual([...target.content.keys()].slice(0, 3), order, "layers, config, manifest first");
    assert.equal([...target.content.keys()].at(-1), index.digest, "the index last");
    const steps = result.steps.map((s) => s.step);
    assert.deepEqual(steps.slice(-7), ["create-base-image", "prepare-layer", "apply-layer", "commit-layer", "label-base-image", "create-image", "release-lease"]);
    assert.equal(target.log().at(-1), "leases.Delete");
  });

  test("a layer that unpacks to the wrong diff id: its snapshot is removed, the lease is kept for the next try", async () => {
    const { source } = sourceWithCheckpoint();
    const target = emptyTarget(`sha256:${"9".repeat(64)}`);
    const err = await restoreErrorOf(copyCheckpoint(source.client, target.client, "checkpoint/app:1"));
    assert.equal(err.step, "apply-layer");
    assert.equal(err.code, "base-image-invalid");
    assert.deepEqual(target.log().slice(-2), ["diff.Apply@lease", "snapshots.Remove"]);
    assert.ok(!target.log().includes("leases.Delete"), "the lease (and its ingests) stays");
  });

  test("a layer a parallel copy committed first is used: its own snapshot goes, the copy goes on", async () => {
    const { source, diffId } = sourceWithCheckpoint();
    const target = emptyTarget(diffId, {
      "snapshots.Commit": () => {
        throw daemonFailure("already-exists", "snapshots.Commit");
      },
    });
    const result = await copyCheckpoint(source.client, target.client, "checkpoint/app:1");
    assert.equal(result.baseImage.unpacked, false);
    assert.ok(target.log().includes("snapshots.Remove@lease"));
  });

  test("a checkpoint that is not on the source is checkpoint-not-found, before the target is touched", async () => {
    const { source } = sourceWithCheckpoint();
    const target = emptyTarget("");
    const err = await restoreErrorOf(copyCheckpoint(source.client, target.client, "checkpoint/none:1"));
    assert.equal(err.code, "checkpoint-not-found");
    assert.deepEqual(target.log(), []);
  });
});
