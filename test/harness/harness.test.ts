/**
 * Self-test of the harness: a private daemon, the base image, every fixture
 * kind, the inventory, and a teardown that leaves nothing behind.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import {
  Annotation,
  MediaType,
  assertInventoryUnchanged,
  diffInventory,
  findEntry,
  imageTarget,
  importBaseImage,
  listProcesses,
  makeCheckpoint,
  makeLegacyCheckpoint,
  makeRecheckpointBugCheckpoint,
  mountsUnder,
  parseTable,
  pidAlive,
  readContent,
  readCount,
  readLog,
  removeContainer,
  restoreWithCtr,
  runCounter,
  startContainerd,
  takeInventory,
  taskPid,
  uniqueId,
  waitForCount,
  writeCustomIndex,
  describeVersions,
  runcOnPath,
  selectedContainerd,
  short,
  type BaseImage,
  type Checkpoint,
  type PrivateContainerd,
} from "./index";

let d: PrivateContainerd;
let image: BaseImage;
let modern: Checkpoint;

before(async () => {
  d = await startContainerd();
  image = await importBaseImage(d);
});

after(async () => {
  await d?.stop();
});

/** Processes (not zombies) that belong to the daemon: shims by socket, anything working in its dir. */
function daemonProcesses(dir: string, socket: string): number[] {
  return listProcesses()
    .filter((p) => p.pid !== process.pid && pidAlive(p.pid))
    .filter((p) => p.argv.includes(socket) || p.cwd === dir || p.cwd.startsWith(dir + "/"))
    .map((p) => p.pid);
}

test("base image is imported and unpacked into overlayfs", async () => {
  assert.equal(image.chainId, image.diffId);
  const target = await imageTarget(d, image.name);
  assert.deepEqual(target, { mediaType: MediaType.ociManifest, digest: image.manifestDigest });
  const snapshots = await d.ctr(["snapshots", "--snapshotter", "overlayfs", "ls"]);
  assert.match(snapshots, new RegExp(image.chainId.replace(":", "\\:")));
});

test("counter container counts and logs", async () => {
  const id = uniqueId("cnt");
  const { pid, logPath } = await runCounter(d, id, image);
  try {
    await waitForCount(pid, 3);
    const log = readLog(logPath);
    assert.equal(log[0], "boot none");
    assert.deepEqual(log.slice(1, 4), ["1", "2", "3"]);
  } finally {
    await removeContainer(d, id);
  }
});

test("modern checkpoint with task and rw layer", async () => {
  modern = await makeCheckpoint(d, { ref: "checkpoint/modern:v1", image });
  assert.ok(modern.countBefore >= 5, `countBefore ${modern.countBefore}`);
  assert.ok(modern.countAfter >= modern.countBefore, `countAfter ${modern.countAfter} < ${modern.countBefore}`);
  const types = modern.index.manifests.map((m) => m.mediaType);
  assert.deepEqual(types, [
    MediaType.checkpointRuntimeOptions,
    MediaType.ociManifest,
    MediaType.ociLayerGzip,
    MediaType.criuCheckpoint,
    MediaType.checkpointConfig,
    MediaType.checkpointOptions,
  ]);
  assert.deepEqual(modern.index.annotations, {
    [Annotation.ociRefName]: image.name,
    [Annotation.checkpointRuntime]: "io.containerd.runc.v2",
    [Annotation.checkpointSnapshotter]: "overlayfs",
  });
  assert.equal(findEntry(modern.index, MediaType.ociManifest)?.digest, image.manifestDigest);
  // The original was removed.
  assert.doesNotMatch(await d.ctr(["containers", "ls", "-q"]), new RegExp(modern.originalId));
});

test("oracle: ctr restore continues counting from the checkpoint", async () => {
  const id = uniqueId("rst");
  const pid = await restoreWithCtr(d, id, modern.ref);
  try {
    assert.ok(pid > 0);
    const first = await waitForCount(pid, modern.countBefore, 5_000);
    const later = await waitForCount(pid, first + 3, 5_000);
    assert.ok(first >= modern.countBefore && first <= modern.countAfter + 2, `resumed at ${first}`);
    assert.ok(later > first);
    // Known gotcha: the restored copy is in the original's cgroup.
    const cgroup = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8");
    assert.match(cgroup, new RegExp(`/${d.namespace}/${modern.originalId}\\b`));
  } finally {
    await removeContainer(d, id);
  }
});

test("checkpoint without task has no CRIU entries", async () => {
  const ck = await makeCheckpoint(d, { ref: "checkpoint/notask:v1", image, task: false });
  assert.equal(findEntry(ck.index, MediaType.criuCheckpoint), undefined);
  assert.equal(findEntry(ck.index, MediaType.checkpointConfig), undefined);
  assert.ok(findEntry(ck.index, MediaType.ociLayerGzip));
});

test("re-checkpoint bug: second index lacks criu and config", async (t) => {
  const bug = await makeRecheckpointBugCheckpoint(d, "checkpoint/twice:v1", "checkpoint/twice:v2", image);
  assert.equal(bug.reproduced, d.behaviour.recheckpointBug, `containerd ${d.version.text}`);
  if (!bug.reproduced) {
    t.diagnostic(`containerd ${d.version.text} has no re-checkpoint bug (fixed in 2.4): its second checkpoint is complete; the bug's index is written by hand`);
    assert.ok(findEntry(bug.fixedSecond!.index, MediaType.criuCheckpoint), "the fixed daemon's second checkpoint has a CRIU image");
    assert.ok(findEntry(bug.fixedSecond!.index, MediaType.checkpointConfig), "and a spec");
  }
  assert.ok(findEntry(bug.first.index, MediaType.criuCheckpoint));
  assert.equal(findEntry(bug.second.index, MediaType.criuCheckpoint), undefined);
  assert.equal(findEntry(bug.second.index, MediaType.checkpointConfig), undefined);
  assert.notEqual(bug.first.digest, bug.second.digest);
});

test("the daemon runs the selected version, with the config that version wants", async (t) => {
  const out = await d.ctr(["version"]);
  t.diagnostic(`daemon: containerd ${d.version.text} from ${d.binDir}; ${describeVersions()}`);
  assert.match(out, new RegExp(`Server:[\\s\\S]*Version:\\s*v?${short(d.version).replace(/\./g, "\\.")}`));
  assert.equal(short(d.version), short(selectedContainerd()), "the daemon is the containerd on PATH");
  if (process.env.PCR_CONTAINERD_VERSION) assert.equal(short(d.version), process.env.PCR_CONTAINERD_VERSION, "the version .cache/env.sh selected");
  if (process.env.PCR_RUNC_VERSION) assert.equal(short(runcOnPath().version), process.env.PCR_RUNC_VERSION, "the runc .cache/env.sh selected");
  const config = fs.readFileSync(`${d.dir}/config.toml`, "utf8");
  const plugins = parseTable(await d.ctr(["plugins", "ls"]));
  const cri = plugins.filter((row) => /cri|nri/.test(row[1] ?? "") && row[row.length - 1] === "ok");
  assert.deepEqual(cri, [], "no CRI or NRI plugin is loaded");
  if (d.version.major >= 2) {
    assert.match(config, /^version = 3$/m);
    assert.match(config, /io\.containerd\.cri\.v1\.runtime/);
  } else {
    assert.match(config, /^version = 2$/m);
  }
});

test("legacy checkpoint has the 1.0/1.1 shape", async () => {
  const legacy = await makeLegacyCheckpoint(d, modern, "checkpoint/modern:legacy");
  const raw = await readContent(d, legacy.digest);
  assert.ok(raw.equals(legacy.raw));
  assert.ok(raw.toString("utf8").endsWith("}\n"));
  const index = JSON.parse(raw.toString("utf8")) as typeof legacy.index;
  assert.equal(index.schemaVersion, 0);
  assert.deepEqual(index.annotations, { [Annotation.legacyImageName]: image.name });
  assert.deepEqual(
    index.manifests.map((m) => m.mediaType),
    [MediaType.criuCheckpoint, MediaType.checkpointConfig, MediaType.dockerManifest, MediaType.ociLayerGzip],
  );
  const docker = JSON.parse((await readContent(d, legacy.dockerManifestDigest!)).toString("utf8"));
  assert.equal(docker.config.digest, image.configDigest);
  assert.equal(docker.layers[0].mediaType, MediaType.dockerLayerGzip);
  const row = parseTable(await d.ctr(["images", "ls"])).find((r) => r[0] === legacy.ref);
  assert.ok(row?.includes("containerd.io/checkpoint=true"), `labels of ${legacy.ref}: ${row?.join(" ")}`);
  // ctr 1.6 cannot restore the legacy format.
  await assert.rejects(restoreWithCtr(d, uniqueId("leg"), legacy.ref), /image name not found in index/);

  const v2 = await makeLegacyCheckpoint(d, modern, "checkpoint/modern:legacy2", {
    schemaVersion: 2,
    dockerManifest: false,
    rwMediaType: MediaType.ociLayer,
  });
  assert.equal(v2.index.schemaVersion, 2);
  assert.deepEqual(
    v2.index.manifests.map((m) => m.mediaType),
    [MediaType.criuCheckpoint, MediaType.checkpointConfig, MediaType.ociManifest, MediaType.ociLayer],
  );
});

test("custom (hostile) indexes are imported byte for byte, extra blobs survive GC", async () => {
  const notJson = await writeCustomIndex(d, "hostile/notjson:1", "this is {not json");
  assert.equal((await readContent(d, notJson.digest)).toString("utf8"), "this is {not json");
  assert.deepEqual(await imageTarget(d, "hostile/notjson:1"), { mediaType: MediaType.ociIndex, digest: notJson.digest });

  const extra = Buffer.from("not really a criu tar");
  const broken = await writeCustomIndex(
    d,
    "hostile/nodigest:1",
    { schemaVersion: 2, manifests: [{ mediaType: MediaType.criuCheckpoint, size: extra.length }] },
    [extra],
  );
  assert.ok(broken.digest.startsWith("sha256:"));
  await d.ctr(["images", "rm", "--sync", "hostile/notjson:1"]); // forces a GC pass
  const extraDigest = `sha256:${(await import("node:crypto")).createHash("sha256").update(extra).digest("hex")}`;
  assert.ok((await readContent(d, extraDigest)).equals(extra));
  await assert.rejects(readContent(d, notJson.digest), /not found/);
});

test("inventory is unchanged after ctr run and cleanup, and diff sees changes", async () => {
  const before = await takeInventory(d);
  const id = uniqueId("inv");
  const { pid } = await runCounter(d, id, image);
  await waitForCount(pid, 1);
  const during = await takeInventory(d);
  const diff = diffInventory(before, during);
  assert.ok(diff.includes(`+ container ${id}`), diff.join("\n"));
  assert.ok(diff.includes(`+ task ${id} RUNNING`), diff.join("\n"));
  assert.ok(diff.includes(`+ snapshot(overlayfs) ${id} Active`), diff.join("\n"));
  await removeContainer(d, id);
  await assertInventoryUnchanged(d, before, "ctr run + cleanup left something");
});

test("daemon kill/start and restart keep running tasks", async () => {
  const id = uniqueId("kil");
  const { pid } = await runCounter(d, id, image);
  await d.kill();
  assert.equal(d.pid, undefined);
  assert.ok(pidAlive(pid), "container must survive a daemon SIGKILL");
  await d.start();
  assert.equal(await taskPid(d, id), pid);
  await d.restart();
  assert.equal(await taskPid(d, id), pid);
  const c = readCount(pid);
  await waitForCount(pid, (Number.isNaN(c) ? 0 : c) + 1, 5_000);
  // Leave it running, plus a paused one: stop() must clean both up.
  const paused = uniqueId("pau");
  await runCounter(d, paused, image);
  await d.ctr(["tasks", "pause", paused]);
});

test("stop leaves nothing behind and is idempotent", async () => {
  const { dir, socket } = d;
  const containerPids = parseTable(await d.ctr(["tasks", "ls"])).map((r) => Number(r[1]));
  assert.ok(containerPids.length > 0);
  await d.stop();
  await d.stop();
  assert.equal(fs.existsSync(dir), false, `${dir} still exists`);
  assert.deepEqual(daemonProcesses(dir, socket), []);
  assert.deepEqual(containerPids.filter((p) => pidAlive(p)), []);
  assert.deepEqual(mountsUnder(dir), []);
  for (const h of ["pids", "freezer", "memory"]) {
    assert.equal(fs.existsSync(`/sys/fs/cgroup/${h}/${d.namespace}`), false, `cgroup ${h}/${d.namespace} left`);
  }
  assert.equal(fs.existsSync(`/run/containerd/runc/${d.namespace}`), false);
});
