/**
 * The user's path: each example in its own project directory, this package
 * installed from `npm pack`, the real Pulumi CLI and Node language host run
 * there — `pulumi preview` on a fresh stack, `up`, `preview
 * --expect-no-changes`, `refresh`, `destroy` — against private daemons, with
 * the newest @pulumi/pulumi 3.x npm serves and (restore-counter) the oldest
 * this package supports.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import {
  importBaseImage,
  makeCheckpoint,
  readCountSettled,
  readLog,
  removeContainer,
  runCounter,
  startContainerd,
  takeInventory,
  uniqueId,
  waitFor,
  waitForCount,
  type PrivateContainerd,
} from "../harness";
import { DEV_PULUMI, NEWEST_PULUMI, OLDEST_PULUMI, newCliProject, type CliProject } from "./project";

let a: PrivateContainerd;
let b: PrivateContainerd;
let c: PrivateContainerd;

before(async () => {
  const fleetNamespace = `fleet${uniqueId("").slice(1)}`;
  [a, b, c] = await Promise.all([startContainerd(), startContainerd({ namespace: fleetNamespace }), startContainerd({ namespace: fleetNamespace })]);
  await importBaseImage(a);
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
});

/** a ≥ b for plain x.y.z versions. */
function versionAtLeast(a: string, b: string): boolean {
  const [x, y] = [a, b].map((v) => v.split(/[.-]/).slice(0, 3).map(Number));
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] > y[i];
  return true;
}

const counts = (logPath: string) => readLog(logPath).filter((l) => /^\d+$/.test(l)).map(Number);

/** `pulumi stack init`, then `pulumi config set` of each entry, as a user types them. */
async function initStack(p: CliProject, config: Record<string, string>, stack = "dev"): Promise<void> {
  await p.pulumi(["stack", "init", stack]);
  for (const [key, value] of Object.entries(config)) await p.pulumi(["config", "set", key, "--", value]);
}

/** The project is installed as a user's is: a real copy of the package, one @pulumi/pulumi. */
function assertInstalledFromTarball(p: CliProject): void {
  const pkg = path.join(p.dir, "node_modules", "pulumi-containerd-restore");
  assert.ok(!fs.lstatSync(pkg).isSymbolicLink(), "the package is a copy from the tarball, not a link into the repo");
  assert.ok(!fs.existsSync(path.join(pkg, "node_modules", "@pulumi", "pulumi")), "no nested second @pulumi/pulumi under the package");
}

/** preview (fresh stack), up, preview --expect-no-changes, refresh; returns the outputs after up. */
async function lifecycle(p: CliProject, onAfterPreview: () => Promise<void>): Promise<Record<string, unknown>> {
  const preview = await p.pulumi(["preview", "--diff"]);
  assert.match(preview.stdout, /\+ .*pulumi-nodejs:dynamic\/containerd:RestoredContainer/);
  await onAfterPreview();
  await p.pulumi(["up", "--yes"]);
  const outputs = await p.outputs();
  // The name preview showed (in the restore plan) is the one up made. (A chained restore, whose
  // checkpoint is made in this update, has no name in preview: its plan waits for the checkpoint.)
  if (typeof outputs.containerId === "string") {
    assert.ok(preview.stdout.includes(outputs.containerId), `preview showed the container id ${outputs.containerId} that up created`);
  }
  if (typeof outputs.targetContainerId === "string") assert.match(preview.stdout, /waitsFor\s*:\s*"checkpoint"/);
  await p.pulumi(["preview", "--expect-no-changes"]);
  await p.pulumi(["refresh", "--yes"]);
  await p.pulumi(["preview", "--expect-no-changes"]);
  return outputs;
}

for (const pulumiVersion of [NEWEST_PULUMI, OLDEST_PULUMI]) {
  test(`restore-counter through the CLI with @pulumi/pulumi ${pulumiVersion}`, async (t) => {
    const checkpoint = await makeCheckpoint(a, { ref: `checkpoint/counter-${pulumiVersion === NEWEST_PULUMI ? "newest" : "oldest"}:v1`, image: await importBaseImage(a) });
    const p = await newCliProject("restore-counter", { pulumiVersion });
    try {
      assertInstalledFromTarball(p);
      t.diagnostic(`@pulumi/pulumi ${p.pulumiVersion} installed for ${pulumiVersion}`);
      if (pulumiVersion === OLDEST_PULUMI) assert.equal(p.pulumiVersion, OLDEST_PULUMI);
      // npm picks the newest 3.x whose engines fit this Node; never older than what the repo develops against.
      else assert.ok(versionAtLeast(p.pulumiVersion, DEV_PULUMI), `newest 3.x resolved to ${p.pulumiVersion}, older than ${DEV_PULUMI}`);
      const logPath = path.join(a.logDir, `cli-counter-${p.pulumiVersion}.log`);
      await initStack(p, { checkpoint: checkpoint.ref, address: a.address, namespace: a.namespace, logPath });
      const containersBefore = (await takeInventory(a)).containers;
      const outputs = await lifecycle(p, async () => assert.deepEqual((await takeInventory(a)).containers, containersBefore, "preview restores nothing"));
      assert.equal(outputs.status, "running");
      assert.equal(outputs.checkpointDigest, checkpoint.digest);
      const inventory = await takeInventory(a);
      assert.deepEqual(inventory.containers, [...containersBefore, outputs.containerId].sort());
      assert.ok(inventory.tasks.includes(`${outputs.containerId}:RUNNING`), inventory.tasks.join(", "));
      const [first] = await waitFor(() => (counts(logPath).length ? counts(logPath) : undefined), 10_000, () => "counts");
      assert.ok(first > checkpoint.countBefore, `restored at ${first}, checkpointed at ${checkpoint.countBefore}`);
      await p.pulumi(["destroy", "--yes"]);
      assert.deepEqual((await takeInventory(a)).containers, containersBefore);
    } finally {
      await p.pulumi(["destroy", "--yes"], { allowFailure: true });
      await p.remove();
      await a.ctr(["images", "rm", checkpoint.ref]).catch(() => undefined);
    }
  });
}

test("migrate through the CLI: previews green on a fresh stack, then moves the container", async () => {
  const id = uniqueId("mover");
  const { pid } = await runCounter(a, id, (await importBaseImage(a)).name);
  const p = await newCliProject("migrate");
  try {
    assertInstalledFromTarball(p);
    await waitForCount(pid, 5);
    const logPath = path.join(b.logDir, "cli-migrated.log");
    await initStack(p, { sourceAddress: a.address, sourceNamespace: a.namespace, containerId: id, targetAddress: b.address, targetNamespace: b.namespace, logPath });
    const imagesBefore = (await takeInventory(a)).images;
    let before = 0;
    const outputs = await lifecycle(p, async () => {
      assert.deepEqual((await takeInventory(a)).images, imagesBefore, "preview checkpoints nothing");
      assert.deepEqual((await takeInventory(b)).containers, [], "preview restores nothing");
      before = await readCountSettled(pid);
    });
    assert.equal(outputs.targetStatus, "running");
    assert.ok(Number(outputs.bytesMoved) > 0);
    assert.deepEqual((await takeInventory(b)).containers, [outputs.targetContainerId]);
    const [first] = await waitFor(() => (counts(logPath).length ? counts(logPath) : undefined), 10_000, () => "counts on B");
    assert.ok(first > before, `B resumed at ${first}, A was at ${before} before up`);
    await p.pulumi(["destroy", "--yes"]);
    assert.deepEqual((await takeInventory(b)).containers, []);
    await a.ctr(["images", "rm", String(outputs.checkpointRef)]);
  } finally {
    await p.pulumi(["destroy", "--yes"], { allowFailure: true });
    await p.remove();
    await removeContainer(a, id);
  }
});

test("fleet through the CLI: previews green on a fresh stack, then restores on every daemon", async () => {
  const checkpoint = await makeCheckpoint(a, { ref: "checkpoint/cli-fleet:v1", image: await importBaseImage(a) });
  const p = await newCliProject("fleet");
  try {
    await initStack(p, { sourceAddress: a.address, sourceNamespace: a.namespace, checkpoint: checkpoint.ref, daemons: JSON.stringify([b.address, c.address]), namespace: b.namespace });
    const outputs = await lifecycle(p, async () => {
      for (const d of [b, c]) assert.deepEqual((await takeInventory(d)).containers, [], "preview restores nothing");
    });
    assert.deepEqual(outputs.statuses, ["running", "running"]);
    for (const [i, d] of [b, c].entries()) assert.deepEqual((await takeInventory(d)).containers, [(outputs.containerIds as string[])[i]]);
    await p.pulumi(["destroy", "--yes"]);
    for (const d of [b, c]) assert.deepEqual((await takeInventory(d)).containers, []);
  } finally {
    await p.pulumi(["destroy", "--yes"], { allowFailure: true });
    await p.remove();
    await a.ctr(["images", "rm", checkpoint.ref]).catch(() => undefined);
  }
});

test("provider defaults from stack config (containerd-restore:address, :namespace), an explicit input winning; RestoredContainer.get from another stack fills every output and never deletes", async () => {
  const [checkpointA, checkpointB] = await Promise.all([
    makeCheckpoint(a, { ref: "checkpoint/cli-defaults:v1", image: await importBaseImage(a) }),
    importBaseImage(b).then((image) => makeCheckpoint(b, { ref: "checkpoint/cli-defaults-b:v1", image })),
  ]);
  const program = `import * as pulumi from "@pulumi/pulumi";
import { RestoredContainer } from "pulumi-containerd-restore";

const config = new pulumi.Config();
const adoptId = config.get("adoptId");
let outputs: Record<string, unknown>;
if (adoptId) {
  // The reader stack: a container another stack restored, read (never managed) by its id.
  const got = RestoredContainer.get("adopted", adoptId);
  outputs = {
    containerId: got.containerId, checkpoint: got.checkpoint, checkpointDigest: got.checkpointDigest, checkpointFormat: got.checkpointFormat,
    imageName: got.imageName, snapshotter: got.snapshotter, snapshotKey: got.snapshotKey, runtime: got.runtime, pid: got.pid, status: got.status,
  };
} else {
  // No address or namespace: both come from containerd-restore:* in stack config.
  const fromConfig = new RestoredContainer("from-config", { checkpoint: config.require("checkpoint"), stopTimeoutSeconds: 1 });
  // Its own address and namespace win over stack config.
  const explicit = new RestoredContainer("explicit", {
    checkpoint: config.require("checkpointB"),
    address: config.require("addressB"),
    namespace: config.require("namespaceB"),
    stopTimeoutSeconds: 1,
  });
  outputs = { fromConfigId: fromConfig.containerId, explicitId: explicit.containerId, fromConfigPid: fromConfig.pid, imageName: fromConfig.imageName };
}
export const out = outputs;
`;
  const p = await newCliProject("restore-counter", { program });
  try {
    const containersA = (await takeInventory(a)).containers;
    await initStack(p, {
      "containerd-restore:address": a.address,
      "containerd-restore:namespace": a.namespace,
      checkpoint: checkpointA.ref,
      checkpointB: checkpointB.ref,
      addressB: b.address,
      namespaceB: b.namespace,
    });
    await p.pulumi(["preview"]);
    await p.pulumi(["up", "--yes"]);
    const outputs = (await p.outputs()).out as Record<string, string | number>;
    assert.deepEqual((await takeInventory(a)).containers, [...containersA, outputs.fromConfigId].sort(), "from-config restored on the config's daemon");
    assert.deepEqual((await takeInventory(b)).containers, [outputs.explicitId], "explicit restored on its own daemon");
    const state = JSON.parse((await p.pulumi(["stack", "export"])).stdout) as { deployment: { resources: { urn: string; inputs?: Record<string, unknown> }[] } };
    const inputsOf = (name: string) => state.deployment.resources.find((r) => r.urn.endsWith(`::${name}`))?.inputs ?? {};
    assert.equal(inputsOf("from-config").address, a.address);
    assert.equal(inputsOf("from-config").namespace, a.namespace);
    assert.equal(inputsOf("explicit").address, b.address);
    await p.pulumi(["preview", "--expect-no-changes"]);

    // Another stack of the project reads the container with get.
    await initStack(p, { "containerd-restore:address": a.address, "containerd-restore:namespace": a.namespace, adoptId: String(outputs.fromConfigId) }, "reader");
    await p.pulumi(["up", "--yes"]);
    const got = (await p.outputs()).out as Record<string, unknown>;
    assert.deepEqual(got, {
      containerId: outputs.fromConfigId,
      checkpoint: checkpointA.ref,
      checkpointDigest: checkpointA.digest,
      checkpointFormat: "modern",
      imageName: outputs.imageName,
      snapshotter: "overlayfs",
      snapshotKey: outputs.fromConfigId,
      runtime: "io.containerd.runc.v2",
      pid: outputs.fromConfigPid,
      status: "running",
    });
    await p.pulumi(["refresh", "--yes"]);
    await p.pulumi(["destroy", "--yes"]);
    assert.ok((await takeInventory(a)).tasks.includes(`${outputs.fromConfigId}:RUNNING`), "destroying the reader stack leaves the container running");
    await p.pulumi(["stack", "select", "dev"]);

    await p.pulumi(["destroy", "--yes"]);
    assert.deepEqual((await takeInventory(a)).containers, containersA);
    assert.deepEqual((await takeInventory(b)).containers, []);
  } finally {
    await p.pulumi(["destroy", "--yes"], { allowFailure: true });
    await p.remove();
    await a.ctr(["images", "rm", checkpointA.ref]).catch(() => undefined);
    await b.ctr(["images", "rm", checkpointB.ref]).catch(() => undefined);
  }
});
