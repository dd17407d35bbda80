/** What the dynamic providers decide without a daemon: diffs, and parsing what check produced. No daemon. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as checkpoint from "../../provider/pulumi/checkpoint";
import * as copy from "../../provider/pulumi/copy";
import { UNKNOWN } from "../../provider/pulumi/inputs";
import * as restored from "../../provider/pulumi/restored-container";
import { restoreErrorOf } from "./fake-client";

/** A RestoredContainer's state after a good create. */
const state = {
  checkpoint: "checkpoint/app:v1",
  checkpointDigest: "sha256:aa",
  containerId: "app-1234567",
  address: "unix:///run/containerd/containerd.sock",
  namespace: "default",
  live: true,
  restoreRw: true,
  labels: { team: "a" },
  stopTimeoutSeconds: 10,
  insecure: false,
  resourceName: "app",
  status: "running",
};
const news = (changes: Record<string, unknown>) => ({ ...state, ...changes });

describe("RestoredContainer diff", () => {
  test("nothing changed: no changes", async () => {
    assert.deepEqual(await restored.diff("id", state, news({})), { changes: false, replaces: [], deleteBeforeReplace: false });
  });

  test("a new checkpoint digest, daemon or mode replaces; labels and teardown settings update in place", async () => {
    assert.deepEqual((await restored.diff("id", state, news({ checkpointDigest: "sha256:bb" }))).replaces, ["checkpointDigest"]);
    assert.deepEqual((await restored.diff("id", state, news({ live: false }))).replaces, ["live"]);
    assert.deepEqual((await restored.diff("id", state, news({ namespace: "other" }))).replaces, ["namespace"]);
    const inPlace = await restored.diff("id", state, news({ labels: { team: "b" }, stopTimeoutSeconds: 30 }));
    assert.deepEqual(inPlace, { changes: true, replaces: [], deleteBeforeReplace: false });
  });

  test("a dead container is restored again; a ref that moved while the digest is unknown replaces", async () => {
    assert.deepEqual((await restored.diff("id", { ...state, status: "stopped" }, news({}))).replaces, ["status"]);
    const { checkpointDigest: _unknownYet, ...previewed } = news({ checkpoint: "checkpoint/app:v2" });
    assert.deepEqual((await restored.diff("id", state, previewed)).replaces, ["checkpointDigest"]);
    assert.ok((await restored.diff("id", state, news({ address: UNKNOWN }))).replaces.includes("address"), "unknown in preview replaces");
  });

  test("a fixed name deletes before replacing (ids collide); an auto-name does not", async () => {
    assert.equal((await restored.diff("id", state, news({ name: "fixed", containerId: "fixed" }))).deleteBeforeReplace, true);
    assert.equal((await restored.diff("id", state, news({ checkpointDigest: "sha256:bb" }))).deleteBeforeReplace, false);
  });

  test("new TLS material is an in-place update, so delete never uses stale credentials", async () => {
    const result = await restored.diff("id", state, news({ tls: { ca: "new" } }));
    assert.deepEqual(result, { changes: true, replaces: [], deleteBeforeReplace: false });
  });
});

describe("RestoredContainer replace reasons", () => {
  test("each replacing key says why, with old and new values", () => {
    assert.deepEqual(restored.replaceReasons(state, news({ checkpointDigest: "sha256:bb" }), ["checkpointDigest"]), ["checkpoint digest changed sha256:aa → sha256:bb"]);
    assert.deepEqual(restored.replaceReasons({ ...state, status: "stopped", exitStatus: 137 }, news({}), ["status"]), ["container is not running: stopped, exit 137"]);
    assert.deepEqual(restored.replaceReasons(state, news({ namespace: "other" }), ["namespace"]), ["namespace changed default → other"]);
    assert.deepEqual(restored.replaceReasons(state, news({ address: UNKNOWN }), ["address"]), ["address changed unix:///run/containerd/containerd.sock → (known during up)"]);
  });
});

describe("ContainerCheckpoint and CheckpointCopy diff", () => {
  const cp = { containerId: "app", ref: "checkpoint/app:1", address: "unix:///c.sock", namespace: "default", leaveRunning: true, includeRw: true, autoRef: true };

  test("a checkpoint is replaced for a new container or ref, updated for TLS; a fixed ref deletes first", async () => {
    assert.deepEqual(await checkpoint.diff("id", cp, { ...cp }), { changes: false, replaces: [], deleteBeforeReplace: false });
    assert.deepEqual((await checkpoint.diff("id", cp, { ...cp, containerId: "other" })).replaces, ["containerId"]);
    assert.deepEqual(await checkpoint.diff("id", cp, { ...cp, insecure: true }), { changes: true, replaces: [], deleteBeforeReplace: false });
    assert.equal((await checkpoint.diff("id", cp, { ...cp, ref: "checkpoint/fixed:1", autoRef: false })).deleteBeforeReplace, true);
  });

  test("a copy is replaced when either end or the source digest moves, updated for credentials only", async () => {
    const end = { address: "unix:///a.sock", namespace: "default", ref: "checkpoint/app:1" };
    const olds = { source: end, target: { ...end, address: "tcp://b:7443" }, digest: "sha256:aa" };
    assert.deepEqual(await copy.diff("id", olds, { ...olds, sourceDigest: "sha256:aa" }), { changes: false, replaces: [], deleteBeforeReplace: false });
    assert.deepEqual((await copy.diff("id", olds, { ...olds, sourceDigest: "sha256:bb" })).replaces, ["sourceDigest"]);
    assert.deepEqual((await copy.diff("id", olds, { ...olds, target: { ...olds.target, namespace: "x" } })).replaces, ["target"]);
    const credentials = await copy.diff("id", olds, { ...olds, target: { ...olds.target, tls: { ca: "pem" } } });
    assert.deepEqual(credentials, { changes: true, replaces: [], deleteBeforeReplace: false });
  });
});

describe("create and update parse what check produced", () => {
  test("create refuses inputs check would not have produced, naming the property, before any daemon call", async () => {
    const err = await restoreErrorOf(restored.create({ ...state, containerId: "a/b" }));
    assert.equal(err.subject, "containerId");
    assert.match(err.message, /^create: property containerId: containerId "a\/b" must be letters/);
    assert.match((await restoreErrorOf(checkpoint.create({ ref: "", resourceName: "app" }))).message, /^create: property containerId:/);
    assert.match((await restoreErrorOf(copy.create({ source: { ref: "c:1" }, resourceName: "c" }))).message, /^create: property target:/);
  });

  test("update refuses a bad label the same way check does", async () => {
    const err = await restoreErrorOf(restored.update("app-1234567", state, news({ labels: { "containerd-restore/mode": "x" } })));
    assert.match(err.message, /written by the provider/);
  });

  test("refresh of a failed restore keeps its state without asking the daemon", async () => {
    const failed = { ...state, status: "failed", address: "tcp://192.0.2.1:1", insecure: true };
    assert.deepEqual(await restored.read("app-1234567", failed), { id: "app-1234567", props: failed });
  });
});
