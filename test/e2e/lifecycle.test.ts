/**
 * The RestoredContainer resource driven by the real Pulumi engine (Automation
 * API, inline program) against a private containerd: preview, up, update in
 * place, replace on a moved tag, refresh drift, destroy.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { RestoredContainer, type RestoredContainerArgs } from "../../sdk";
import { restoredContainerProvider } from "../../sdk/provider";
import { daemonSuite, importBaseImage, makeCheckpoint, readCountSettled, readLog, taskStatus, waitFor } from "../harness";
import { RESOURCE_TYPE, eventCollector, newStack, resourceSteps, type TestStack } from "./stack";

let s: TestStack;
/** What the inline program declares; tests change it between operations. */
let args: RestoredContainerArgs;

const suite = daemonSuite({
  checkpoints: { v1: { ref: "checkpoint/counter:v1" } },
  setUp: async ({ d, checkpoints }) => {
    await d.ctr(["images", "tag", checkpoints.v1.ref, "checkpoint/counter:latest"]);
    args = {
      checkpoint: "checkpoint/counter:latest",
      address: d.address,
      namespace: d.namespace,
      logPath: path.join(d.logDir, "stack-counter.log"),
      stopTimeoutSeconds: 1,
      labels: { owner: "team-a" },
    };
    s = await newStack("restore-e2e", async () => {
      const counter = new RestoredContainer("counter", args);
      return { containerId: counter.containerId, pid: counter.pid, status: counter.status, digest: counter.checkpointDigest, plan: counter.plan };
    });
  },
  tearDown: async () => s?.remove(),
});

/** The RestoredContainer's entry in the exported state. */
async function containerState(): Promise<{ outputs: Record<string, unknown> } | undefined> {
  const state = await s.stack.exportStack();
  return state.deployment.resources.find((r: { type: string }) => r.type === RESOURCE_TYPE);
}

const outputsOf = async () => Object.fromEntries(Object.entries(await s.stack.outputs()).map(([k, v]) => [k, v.value]));

test("the serialized provider stays small", async () => {
  const serialized = await pulumi.runtime.serializeFunction(() => restoredContainerProvider);
  // Six one-line methods and the loader; Pulumi's wrapping makes up most of it.
  assert.ok(serialized.text.length < 6000, `serialized provider is ${serialized.text.length} bytes`);
  console.log(`serialized provider: ${serialized.text.length} bytes`);
});

test("preview lists the resource with its restore plan and changes nothing on the daemon", async () => {
  const { events, onEvent } = eventCollector();
  const result = await s.stack.preview({ onEvent });
  assert.equal(result.changeSummary.create, 2, "stack + RestoredContainer");
  const [step] = resourceSteps(events);
  assert.equal(step.op, "create");
  const inputs = step.new!.inputs as Record<string, unknown>;
  assert.equal(inputs.checkpointDigest, suite.checkpoints.v1.digest);
  const plan = inputs.plan as { step: string; [k: string]: unknown }[];
  assert.deepEqual(plan.map((p) => p.step), ["create-lease", "prepare-snapshot", "apply-rw-layer", "create-container", "release-lease", "create-task", "start-task"]);
  assert.match(String(plan.find((p) => p.step === "create-task")?.criuImage), /^sha256:/);
  await suite.assertUnchanged("after preview", { settleMs: 0 });
});

test("up restores the container: the counter continues from the checkpoint and outputs are filled", async () => {
  const result = await s.stack.up();
  assert.equal(result.summary.result, "succeeded");
  const out = await outputsOf();
  assert.match(String(out.containerId), /^counter-[0-9a-f]{7}$/);
  assert.equal(out.status, "running");
  assert.equal(out.digest, suite.checkpoints.v1.digest);
  assert.ok(Number(out.pid) > 0);
  const counts = await waitFor(() => {
    const n = readLog(String(args.logPath)).filter((l) => /^\d+$/.test(l)).map(Number);
    return n.length >= 2 ? n : undefined;
  }, 10_000, () => "restored counter output");
  assert.ok(counts[0] > suite.checkpoints.v1.countBefore && counts[0] <= suite.checkpoints.v1.countAfter + 1, `resumed at ${counts[0]} (checkpoint between ${suite.checkpoints.v1.countBefore} and ${suite.checkpoints.v1.countAfter})`);
  assert.equal(await taskStatus(suite.d, String(out.containerId)), "RUNNING");

  const again = await s.stack.preview();
  assert.equal(again.changeSummary.same, 2, "a second preview has no changes");
});

test("a label change is an in-place update: same container, same pid", async () => {
  const before = await outputsOf();
  args = { ...args, labels: { owner: "team-b" } };
  const { events, onEvent } = eventCollector();
  await s.stack.up({ onEvent });
  assert.deepEqual(resourceSteps(events).map((m) => m.op), ["update"]);
  const out = await outputsOf();
  assert.equal(out.containerId, before.containerId);
  assert.equal(out.pid, before.pid);
  const info = JSON.parse(await suite.d.ctr(["containers", "info", String(out.containerId)])) as { Labels: Record<string, string> };
  assert.equal(info.Labels.owner, "team-b");
  assert.equal(info.Labels["containerd-restore/checkpoint-digest"], suite.checkpoints.v1.digest);
});

test("removing the checkpoint image after the restore does not break later previews", async () => {
  await suite.d.ctr(["images", "rm", "checkpoint/counter:latest"]);
  const preview = await s.stack.preview();
  assert.equal(preview.changeSummary.same, 2);
  await suite.d.ctr(["images", "tag", suite.checkpoints.v1.ref, "checkpoint/counter:latest"]);
});

test("moving the tag to a newer checkpoint replaces the container; the old one is gone", async () => {
  const old = await outputsOf();
  const v2 = await makeCheckpoint(suite.d, { ref: "checkpoint/counter:v2", image: await importBaseImage(suite.d), minCount: 20 });
  await suite.d.ctr(["images", "tag", "--force", v2.ref, "checkpoint/counter:latest"]);

  const { events, onEvent } = eventCollector();
  const preview = await s.stack.preview({ onEvent });
  assert.equal(preview.changeSummary.replace, 1);
  const step = resourceSteps(events).find((m) => m.op === "replace");
  assert.ok(step, `a replace step among ${resourceSteps(events).map((m) => m.op)}`);
  assert.ok(step.keys?.includes("checkpointDigest"), `replace keys: ${step.keys}`);
  assert.ok(preview.stdout.includes(`checkpoint digest changed ${old.digest} → ${v2.digest}`), `preview says why it replaces:\n${preview.stdout}`);

  await s.stack.up();
  const out = await outputsOf();
  assert.equal(out.digest, v2.digest);
  assert.notEqual(out.containerId, old.containerId, "auto-named replacement gets a new id (create before delete)");
  assert.equal(await taskStatus(suite.d, String(old.containerId)), undefined);
  await assert.rejects(suite.d.ctr(["containers", "info", String(old.containerId)]), /not found/);
  const count = await readCountSettled(Number(out.pid));
  assert.ok(count >= v2.countBefore, `v2 restore counts from ${v2.countBefore}, saw ${count}`);
});

test("refresh notices a container killed behind Pulumi's back, and one deleted", async () => {
  const out = await outputsOf();
  const id = String(out.containerId);
  await suite.d.ctr(["tasks", "kill", "-s", "SIGKILL", id]);
  await waitFor(async () => ((await taskStatus(suite.d, id)) === "STOPPED" ? true : undefined), 5000, () => `${id} stopped`);
  const refresh = await s.stack.refresh();
  assert.equal(refresh.summary.resourceChanges?.update, 1, "refresh reports the drift");
  const resource = (await containerState())!;
  assert.equal(resource.outputs.status, "stopped");
  assert.equal(resource.outputs.exitStatus, 137);

  // The next up restores it again (a dead restored container is drift).
  const { events, onEvent } = eventCollector();
  const up = await s.stack.up({ onEvent });
  assert.ok(resourceSteps(events).some((m) => m.op === "replace" && m.keys?.includes("status")));
  assert.match(up.stdout, /is replaced: container is not running: stopped, exit 137/);
  const restored = await outputsOf();
  assert.equal(restored.status, "running");

  // Deleted entirely: refresh drops it from the state.
  await suite.d.ctr(["tasks", "kill", "-s", "SIGKILL", String(restored.containerId)]);
  await waitFor(async () => ((await taskStatus(suite.d, String(restored.containerId))) === "STOPPED" ? true : undefined), 5000, () => "stopped");
  await suite.d.ctr(["tasks", "rm", String(restored.containerId)]);
  await suite.d.ctr(["containers", "rm", String(restored.containerId)]);
  const refreshed = await s.stack.refresh();
  assert.equal(refreshed.summary.resourceChanges?.delete, 1);
  assert.equal(await containerState(), undefined);
  await s.stack.up();
});

test("destroy leaves the daemon holding exactly what it held before the stack", async () => {
  const result = await s.stack.destroy();
  assert.equal(result.summary.result, "succeeded");
  // The test's own second checkpoint and tag move are not the stack's doing.
  await suite.d.ctr(["images", "tag", "--force", suite.checkpoints.v1.ref, "checkpoint/counter:latest"]);
  await suite.d.ctr(["images", "rm", "checkpoint/counter:v2"]);
  await suite.assertUnchanged("after destroy");
  assert.ok(fs.existsSync(suite.d.dir));
});
