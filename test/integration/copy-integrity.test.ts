/**
 * Copies never retarget an image (issue 8, item 7) and what is read is what the
 * descriptor names (item 8), against two real daemons:
 * - a target ref that exists with another digest is refused (the target left as
 *   it was), and moved only with overwrite: true;
 * - a base image name present on the target at another digest is never
 *   re-pointed (the copy is refused); present at the same digest it is left;
 * - a checkpoint blob whose bytes changed on disk is refused by digest; sha512
 *   blobs are verified too (served by a fake daemon: containerd 1.6's content
 *   store computes sha256 only, so it cannot hold one);
 * - a descriptor whose size is larger than its blob (containerd cuts the read at
 *   the blob's end without an error) is a size-mismatch in planRestore and in a
 *   copy's streaming reader.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { RestoreError, connect, copyCheckpoint, planRestore, type ContainerdClient } from "../../provider/index";
import * as grpc from "@grpc/grpc-js";
import { unlessNotFound } from "../../provider/containerd/errors";
import {
  MediaType,
  assertInventoryUnchanged,
  imageTarget,
  importBaseImage,
  makeCheckpoint,
  readContent,
  startContainerd,
  takeInventory,
  writeCustomIndex,
  type BaseImage,
  type Checkpoint,
  type ImageIndex,
  type PrivateContainerd,
} from "../harness";
import { FakeStatus, startFakeDaemon } from "../harness/fake-daemon";

let a: PrivateContainerd;
let b: PrivateContainerd;
let ca: ContainerdClient;
let cb: ContainerdClient;
let image: BaseImage;
let checkpoint: Checkpoint;

before(async () => {
  [a, b] = await Promise.all([startContainerd(), startContainerd()]);
  ca = connect(a.address, { namespace: a.namespace });
  cb = connect(b.address, { namespace: b.namespace });
  image = await importBaseImage(a);
  await importBaseImage(b);
  checkpoint = await makeCheckpoint(a, { ref: "checkpoint/copy-refs:v1", image });
});

after(async () => {
  ca?.close();
  cb?.close();
  await Promise.all([a?.stop(), b?.stop()]);
});

const entryOf = (index: ImageIndex, mediaType: string) => index.manifests.find((m) => m.mediaType === mediaType)!;

async function refused(call: Promise<unknown>, code: string, subject: string): Promise<RestoreError> {
  const err = await call.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RestoreError, `a RestoreError: ${(err as Error)?.stack ?? err}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.subject, subject, err.message);
  return err;
}

describe("copies never retarget an image", () => {
  test("an existing target ref with another digest is refused; overwrite: true moves it", async () => {
    await b.ctr(["images", "tag", image.name, "victim/app:prod"]);
    const before = await takeInventory(b);
    const err = await refused(copyCheckpoint(ca, cb, checkpoint.ref, { targetRef: "victim/app:prod" }), "target-ref-exists", "targetRef");
    assert.match(err.message, new RegExp(`target ref victim/app:prod already exists on the target daemon .* as ${image.manifestDigest}, not the checkpoint ${checkpoint.digest}: .*overwrite: true`));
    assert.equal((await imageTarget(b, "victim/app:prod")).digest, image.manifestDigest, "victim/app:prod still names its image");
    await assertInventoryUnchanged(b, before, "after the refused copy (nothing written: no blob, lease or ingest)", { settleMs: 0 });

    const result = await copyCheckpoint(ca, cb, checkpoint.ref, { targetRef: "victim/app:prod", overwrite: true });
    assert.equal(result.digest, checkpoint.digest);
    assert.equal((await imageTarget(b, "victim/app:prod")).digest, checkpoint.digest, "moved with overwrite");
    assert.equal(result.baseImage.created, false, "the base image was already there");
    assert.equal((await imageTarget(b, image.name)).digest, image.manifestDigest, "the base image record is untouched");
    assert.equal((await planRestore(cb, "victim/app:prod")).checkpoint.digest, checkpoint.digest);

    // A repeated copy to a ref that already names the checkpoint is fine without overwrite.
    const again = await copyCheckpoint(ca, cb, checkpoint.ref, { targetRef: "victim/app:prod" });
    assert.equal(again.bytesMoved, 0);
    await b.ctr(["images", "rm", "--sync", "victim/app:prod"]);
  });

  test("a copy for the same owner may move the ref its predecessor wrote (a replacement); another owner's is refused", async () => {
    const index = structuredClone(checkpoint.index) as ImageIndex;
    index.annotations!["copy.test"] = "second"; // another checkpoint digest, same blobs
    const second = await writeCustomIndex(a, "checkpoint/copy-refs:second", index);
    const before = await takeInventory(b);
    const first = await copyCheckpoint(ca, cb, checkpoint.ref, { targetRef: "team/app:current", owner: "pulumi:proj/prod/copy" });
    assert.equal((await imageTarget(b, "team/app:current")).digest, first.digest);
    await refused(copyCheckpoint(ca, cb, second.ref, { targetRef: "team/app:current", owner: "pulumi:proj/dev/copy" }), "target-ref-exists", "targetRef");
    await refused(copyCheckpoint(ca, cb, second.ref, { targetRef: "team/app:current" }), "target-ref-exists", "targetRef");
    const moved = await copyCheckpoint(ca, cb, second.ref, { targetRef: "team/app:current", owner: "pulumi:proj/prod/copy" });
    assert.equal(moved.digest, second.digest);
    assert.equal((await imageTarget(b, "team/app:current")).digest, second.digest, "the same owner's replacement moved it");
    await b.ctr(["images", "rm", "--sync", "team/app:current"]);
    await a.ctr(["images", "rm", second.ref]);
    await assertInventoryUnchanged(b, before, "after removing the copies");
  });

  test("a base image name present on the target at another digest is never re-pointed: the copy is refused", async () => {
    // On the source, the checkpoint names its base image victim/base:prod (the busybox image).
    await a.ctr(["images", "tag", image.name, "victim/base:prod"]);
    const index = structuredClone(checkpoint.index) as ImageIndex;
    index.annotations!["org.opencontainers.image.ref.name"] = "victim/base:prod";
    const { ref } = await writeCustomIndex(a, "checkpoint/names-victim:v1", index);
    // On the target, victim/base:prod is another image.
    const otherConfig = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
    const otherManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: `sha256:${createHash("sha256").update(otherConfig).digest("hex")}`, size: otherConfig.length },
      layers: [],
    };
    const victim = await writeCustomIndex(b, "victim/base:prod", otherManifest, [otherConfig], { targetMediaType: MediaType.ociManifest });
    const before = await takeInventory(b);
    const err = await refused(copyCheckpoint(ca, cb, ref), "target-ref-exists", "baseImage");
    assert.match(err.message, new RegExp(`base image victim/base:prod .* is already on the target daemon .* as ${victim.digest}, not ${image.manifestDigest} as on the source`));
    assert.equal((await imageTarget(b, "victim/base:prod")).digest, victim.digest, "the target's victim/base:prod is untouched");
    await assertInventoryUnchanged(b, before, "after the refused copy", { settleMs: 0 });
    await b.ctr(["images", "rm", "--sync", "victim/base:prod"]);
    await a.ctr(["images", "rm", "victim/base:prod", ref]);
  });

  test("a base image name present at the same digest is left as it is (created: false)", async () => {
    const before = await takeInventory(b);
    const result = await copyCheckpoint(ca, cb, checkpoint.ref, { targetRef: "checkpoint/copy-refs:same-base" });
    assert.equal(result.baseImage.created, false);
    assert.equal((await imageTarget(b, image.name)).digest, image.manifestDigest);
    await b.ctr(["images", "rm", "--sync", "checkpoint/copy-refs:same-base"]);
    await assertInventoryUnchanged(b, before, "after removing the copy");
  });
});

describe("integrity", () => {
  test("a blob whose bytes changed on disk is refused by digest (digest-mismatch), and the daemon is left as it was", async () => {
    const config = entryOf(checkpoint.index, MediaType.checkpointConfig);
    const bytes = await readContent(a, config.digest);
    const index = structuredClone(checkpoint.index) as ImageIndex;
    index.annotations!["integrity.test"] = "tampered"; // its own index digest: plans cache what they decoded per index
    const { ref } = await writeCustomIndex(a, "integrity/tampered:v1", index);
    const file = path.join(a.dir, "root", "io.containerd.content.v1.content", "blobs", "sha256", config.digest.slice(7));
    const tampered = Buffer.from(bytes);
    tampered[tampered.length >> 1] ^= 0x01;
    fs.writeFileSync(file, tampered);
    try {
      const before = await takeInventory(a);
      const err = await refused(planRestore(ca, ref), "digest-mismatch", "checkpoint config");
      assert.match(err.message, new RegExp(`blob ${config.digest} read back as sha256:[0-9a-f]{64}: .*corrupted or tampered`));
      await assertInventoryUnchanged(a, before, "after the refused plan", { settleMs: 0 });
    } finally {
      fs.writeFileSync(file, bytes);
      await a.ctr(["images", "rm", ref]);
    }
  });

  test("sha512 blobs are verified too (a daemon serving them: containerd 1.6 itself only stores sha256)", async () => {
    const spec = Buffer.from(await readContent(a, entryOf(checkpoint.index, MediaType.checkpointConfig).digest));
    const digest512 = `sha512:${createHash("sha512").update(spec).digest("hex")}`;
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ mediaType: MediaType.checkpointConfig, digest: digest512, size: spec.length }],
        annotations: checkpoint.index.annotations,
      }),
    );
    const indexDigest = `sha256:${createHash("sha256").update(index).digest("hex")}`;
    const serve = (served: Buffer) =>
      startFakeDaemon({
        "images.Get": (req: Record<string, unknown>) => {
          if (req.name === "fake/checkpoint:v1") return { image: { name: req.name, target: { mediaType: MediaType.ociIndex, digest: indexDigest, size: index.length } } };
          throw new FakeStatus(grpc.status.NOT_FOUND, `image "${String(req.name)}": not found`);
        },
        "content.Read": async (req: Record<string, unknown>, send: (message: object) => void) => {
          send({ offset: 0, data: req.digest === indexDigest ? index : served });
        },
        "introspection.Plugins": () => ({ plugins: [{ type: "io.containerd.snapshotter.v1", id: "overlayfs", initErr: null }] }),
      });
    // The right bytes: verified, and the plan goes on to the base image (which the fake lacks).
    const honest = await serve(spec);
    const tampered = Buffer.from(spec);
    tampered[0] ^= 0x01;
    const lying = await serve(tampered);
    try {
      const c1 = connect(honest.address, { namespace: a.namespace });
      const c2 = connect(lying.address, { namespace: a.namespace });
      try {
        await refused(planRestore(c1, "fake/checkpoint:v1"), "base-image-missing", "image");
        const err = await refused(planRestore(c2, "fake/checkpoint:v1"), "digest-mismatch", "checkpoint config");
        assert.match(err.message, new RegExp(`blob ${digest512} read back as sha512:[0-9a-f]{128}`));
      } finally {
        c1.close();
        c2.close();
      }
    } finally {
      await honest.stop();
      await lying.stop();
    }
  });

  test("a descriptor larger than its blob is a size-mismatch in planRestore (containerd cuts the read short silently)", async () => {
    const index = structuredClone(checkpoint.index) as ImageIndex;
    const config = entryOf(index, MediaType.checkpointConfig);
    const size = config.size;
    config.size = size + 100;
    const { ref } = await writeCustomIndex(a, "integrity/short-spec:v1", index);
    const before = await takeInventory(a);
    const err = await refused(planRestore(ca, ref), "size-mismatch", "checkpoint config");
    assert.match(err.message, new RegExp(`read ${size} bytes, but its descriptor says ${size + 100}`));
    await assertInventoryUnchanged(a, before, "after the refused plan", { settleMs: 0 });
    await a.ctr(["images", "rm", ref]);
  });

  test("a CRIU image entry larger than its blob is a size-mismatch in a copy's streaming reader", async () => {
    const index = structuredClone(checkpoint.index) as ImageIndex;
    const criu = entryOf(index, MediaType.criuCheckpoint);
    const size = criu.size;
    criu.size = size + 1000;
    const { ref } = await writeCustomIndex(a, "integrity/short-criu:v1", index);
    const before = await takeInventory(b);
    const err = await refused(copyCheckpoint(ca, cb, ref), "size-mismatch", `blob ${criu.digest}`);
    assert.match(err.message, new RegExp(`read ${size} bytes, but its descriptor says ${size + 1000}`));
    // By design a failed copy keeps its lease and ingests (the next try resumes); no image was written.
    const after = await takeInventory(b);
    assert.deepEqual(after.images, before.images, "no image record on the target");
    for (const lease of after.leases.filter((l) => l.startsWith("containerd-restore.copy."))) await cb.call("leases.Delete", { id: lease, sync: true });
    // Deleting the lease (sync GC) takes its ingests with it; abort whatever is left.
    for (const ingest of after.ingests) await unlessNotFound(cb.call("content.Abort", { ref: ingest }));
    await assertInventoryUnchanged(b, before, "after dropping the failed copy's lease and ingest");
    await a.ctr(["images", "rm", ref]);
  });
});
