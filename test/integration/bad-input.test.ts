/**
 * Every bad input gets its typed error, and the daemon holds exactly what it
 * held before (containers, tasks, snapshots, leases, images, ingests).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as path from "node:path";
import { describe, test } from "node:test";
import { RestoreError, connect, inspect, planRestore, restore, teardown, type ContainerdClient, type RestoreErrorCode } from "../../provider/index";
import {
  assertInventoryUnchanged,
  daemonSuite,
  makeCorruptedCriuCheckpoint,
  makeRecheckpointBugCheckpoint,
  MediaType,
  runcOnPath,
  short,
  takeInventory,
  uniqueId,
  writeCustomIndex,
  type ImageIndex,
} from "../harness";

/** The restored shell is pid 1 of its namespace and ignores SIGTERM: keep the grace short. */
const QUICK = { graceMs: 300 };

const suite = daemonSuite({
  connect: (d) => connect(d.address, { namespace: d.namespace }),
  checkpoints: { good: { ref: "checkpoint/good:v1" }, noTask: { ref: "checkpoint/notask:v1", task: false } },
});

/** A copy of the good checkpoint's index with `edit` applied. */
function editedIndex(edit: (index: ImageIndex) => void): ImageIndex {
  const index = structuredClone(suite.checkpoints.good.index);
  edit(index);
  return index;
}

/**
 * Asserts that planning and restoring `ref` fails with `code` (and a message
 * matching `message`), and that the daemon is left exactly as it was.
 */
async function assertRefused(
  ref: string,
  code: RestoreErrorCode,
  message: RegExp,
  options: { live?: boolean; restoreRw?: boolean; id?: string; via?: ContainerdClient } = {},
): Promise<RestoreError> {
  const c = options.via ?? suite.client;
  const before = await takeInventory(suite.d);
  const err = await (async () => {
    try {
      const plan = await planRestore(c, ref, options);
      await restore(c, plan, { id: options.id ?? uniqueId("bad"), live: options.live, restoreRw: options.restoreRw });
    } catch (e) {
      return e;
    }
    assert.fail(`restore of ${ref} succeeded; expected ${code}`);
  })();
  assert.ok(err instanceof RestoreError, `expected a RestoreError, got ${err}`);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, message);
  await assertInventoryUnchanged(suite.d, before, `after refused ${ref}`);
  return err;
}

describe("bad checkpoints are refused before anything changes", () => {
  test("a ref that does not exist", async () => {
    await assertRefused("checkpoint/missing:v1", "checkpoint-not-found", /checkpoint image checkpoint\/missing:v1 not found/);
  });

  test("a namespace that does not exist on the daemon is named as such, not as a missing checkpoint, and is not created", async () => {
    const typo = connect(suite.d.address, { namespace: `${suite.d.namespace}-typo` });
    try {
      const err = await assertRefused(suite.checkpoints.good.ref, "namespace-not-found", new RegExp(`namespace ${suite.d.namespace}-typo does not exist on the daemon at `), { via: typo });
      assert.equal(err.subject, "namespace");
      const namespaces = (await suite.d.ctr(["namespaces", "ls", "-q"])).split("\n").map((s) => s.trim());
      assert.ok(!namespaces.includes(`${suite.d.namespace}-typo`), `the refused namespace was created: ${namespaces.join(", ")}`);
    } finally {
      typo.close();
    }
  });

  test("an image that is not a checkpoint (the base image)", async () => {
    await assertRefused(suite.image.name, "not-a-checkpoint", /not a checkpoint/);
  });

  test("a checkpoint made without --task (no CRIU image, no spec)", async () => {
    await assertRefused(suite.checkpoints.noTask.ref, "incomplete-checkpoint", /without --task/);
  });

  test("containerd 1.6's re-checkpoint bug (second index lacks CRIU and config entries)", async () => {
    const bug = await makeRecheckpointBugCheckpoint(suite.d, "checkpoint/twice:v1", "checkpoint/twice:v2", suite.image);
    await assertRefused(bug.second.ref, "incomplete-checkpoint", /re-checkpoint bug/);
  });

  test("an index with a spec but no CRIU entry, restored live", async () => {
    const { ref } = await writeCustomIndex(suite.d, "checkpoint/nocriu:v1", editedIndex((i) => {
      i.manifests = i.manifests.filter((m) => m.mediaType !== MediaType.criuCheckpoint);
    }));
    await assertRefused(ref, "no-criu-image", /no CRIU image.*live restore impossible/);
  });

  test("an index whose CRIU entry points at a blob the daemon lacks", async () => {
    const { ref } = await writeCustomIndex(suite.d, "checkpoint/noblob:v1", editedIndex((i) => {
      const criu = i.manifests.find((m) => m.mediaType === MediaType.criuCheckpoint)!;
      criu.digest = `sha256:${"0".repeat(64)}`;
    }));
    await assertRefused(ref, "missing-blob", /CRIU image sha256:0{64}.*not in the daemon's content store/);
  });

  test("an index that is not JSON", async () => {
    const { ref } = await writeCustomIndex(suite.d, "checkpoint/notjson:v1", "{ this is not json");
    await assertRefused(ref, "index-not-json", /is not JSON/);
  });

  test("an index with a malformed entry names the entry", async () => {
    const { ref } = await writeCustomIndex(suite.d, "checkpoint/badentry:v1", editedIndex((i) => {
      (i.manifests[2] as { digest: unknown }).digest = 42;
    }));
    await assertRefused(ref, "index-invalid", /manifests\[2\]\.digest/);
  });

  test("a checkpoint whose base image is absent from the daemon", async () => {
    const { ref } = await writeCustomIndex(suite.d, "checkpoint/noimage:v1", editedIndex((i) => {
      i.annotations!["org.opencontainers.image.ref.name"] = "localhost/not/here:1";
    }));
    await assertRefused(ref, "base-image-missing", /base image localhost\/not\/here:1 .* not on the daemon/);
  });

  test("a plan made before still notices a base image that went away (decoded blobs are cached, daemon state is not)", async () => {
    const alias = "localhost/restore-test/alias:1";
    await suite.d.ctr(["images", "tag", suite.image.name, alias]);
    const { ref } = await writeCustomIndex(suite.d, "checkpoint/alias:v1", editedIndex((i) => {
      i.annotations!["org.opencontainers.image.ref.name"] = alias;
    }));
    const first = await planRestore(suite.client, ref);
    assert.deepEqual(await planRestore(suite.client, ref), first, "a second plan is the same");
    await suite.d.ctr(["images", "rm", alias]);
    await assertRefused(ref, "base-image-missing", /base image localhost\/restore-test\/alias:1/);
  });

  test("a snapshotter that is not loaded", async () => {
    const { ref } = await writeCustomIndex(suite.d, "checkpoint/zfs:v1", editedIndex((i) => {
      i.annotations!["io.containerd.checkpoint.snapshotter"] = "zfs";
    }));
    await assertRefused(ref, "snapshotter-unavailable", /snapshotter zfs/);
  });

  test("a snapshotter in which the base image is not unpacked", async () => {
    const { ref } = await writeCustomIndex(suite.d, "checkpoint/native:v1", editedIndex((i) => {
      i.annotations!["io.containerd.checkpoint.snapshotter"] = "native";
    }));
    await assertRefused(ref, "base-image-not-unpacked", /not unpacked in snapshotter native/);
  });

  test("a spec blob that is not a serialized spec", async () => {
    const junk = Buffer.from("definitely not a protobuf Any");
    const { ref } = await writeCustomIndex(
      suite.d,
      "checkpoint/badspec:v1",
      editedIndex((i) => {
        const config = i.manifests.find((m) => m.mediaType === MediaType.checkpointConfig)!;
        config.digest = `sha256:${createHash("sha256").update(junk).digest("hex")}`;
        config.size = junk.length;
      }),
      [junk],
    );
    await assertRefused(ref, "malformed-spec", /checkpoint config/);
  });
});

describe("bad restore requests are refused without debris", () => {
  test("an invalid id", async () => {
    await assertRefused(suite.checkpoints.good.ref, "invalid-id", /id "a\/b" must be letters/, { id: "a/b" });
  });

  test("an id over 76 characters", async () => {
    await assertRefused(suite.checkpoints.good.ref, "invalid-id", /at most 76/, { id: "x".repeat(77) });
  });

  test("an id already in use leaves the running container untouched", async () => {
    const id = uniqueId("taken");
    const first = await restore(suite.client, await planRestore(suite.client, suite.checkpoints.good.ref), { id });
    await assertRefused(suite.checkpoints.good.ref, "id-in-use", new RegExp(`id ${id} is in use`), { id });
    const again = await inspect(suite.client, id);
    assert.equal(again?.status, "running");
    assert.equal(again?.pid, first.pid);
    await teardown(suite.client, id, QUICK);
  });

  test("a daemon socket that does not exist (a bare path, without unix://): says so, without grpc-js noise", async () => {
    const absent = connect(path.join(suite.d.dir, "absent.sock"), { namespace: suite.d.namespace });
    const err = await assertRefused(
      suite.checkpoints.good.ref,
      "daemon-unreachable",
      /cannot reach containerd at \/.*absent\.sock: there is no containerd socket at \/.*absent\.sock: is containerd running/,
      { via: absent },
    );
    assert.equal(err.code, "daemon-unreachable");
    assert.doesNotMatch(err.message, /Resolution note|No connection established/);
    absent.close();
  });
});

describe("a restore that fails inside CRIU", () => {
  // With containerd 1.7 / 2.x and runc 1.5.3 the error no longer names CRIU's log file ("criu failed:
  // type RESTORE errno 0"; 1.6.20's shim with runc 1.5.3 still does): the tail comes from the
  // CRIU work directory the provider chooses in the task's runc options.
  test(`leaves nothing behind and reports restore.log lines (runc ${short(runcOnPath().version)})`, async () => {
    const { ref } = await makeCorruptedCriuCheckpoint(suite.d, suite.checkpoints.good, "checkpoint/corrupt:v1");
    const err = await assertRefused(ref, "criu-failed", /restore\.log/);
    assert.equal(err.step, "start-task");
    assert.ok(err.restoreLog && err.restoreLog.length > 0, "restore.log tail is attached");
    assert.ok(err.restoreLog.some((line) => /Error/.test(line)), `restore.log tail has CRIU's error:\n${err.restoreLog.join("\n")}`);
    assert.deepEqual(err.cleanupErrors, []);
  });
});
