/**
 * What users see when a restore cannot work: preview fails early with a clear
 * message; a create that fails inside CRIU fails `up` with restore.log lines and
 * leaves nothing; the fixed program then converges. A fixed name replaces
 * delete-first.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { RestoredContainer, type RestoredContainerArgs } from "../../sdk";
import { daemonSuite, makeCorruptedCriuCheckpoint } from "../harness";
import { eventCollector, failureOf, newStack, resourceSteps, type TestStack } from "./stack";

let corruptRef: string;
let s: TestStack;
let args: RestoredContainerArgs;

const suite = daemonSuite({
  checkpoints: { good: { ref: "checkpoint/app:v1" }, noTask: { ref: "checkpoint/app:fs-only", task: false } },
  setUp: async ({ d, checkpoints }) => {
    corruptRef = (await makeCorruptedCriuCheckpoint(d, checkpoints.good, "checkpoint/app:corrupt")).ref;
    s = await newStack("restore-e2e-failures", async () => {
      const app = new RestoredContainer("app", args);
      return { containerId: app.containerId, status: app.status };
    });
  },
  tearDown: async () => s?.remove(),
});

const base = (): RestoredContainerArgs => ({ address: suite.d.address, namespace: suite.d.namespace, checkpoint: suite.checkpoints.good.ref, stopTimeoutSeconds: 1 });

test("preview of a checkpoint ref that does not exist fails with the reason, naming the property", async () => {
  args = { ...base(), checkpoint: "checkpoint/app:nope" };
  const message = await failureOf(s.stack.preview());
  assert.match(message, /property checkpoint .*checkpoint image checkpoint\/app:nope not found in namespace/);
  assert.doesNotMatch(message, /\n\s+at .*\.js:\d+/, "no stack trace");
  await suite.assertUnchanged("after failed preview", { settleMs: 0 });
});

test("preview of a live restore from a checkpoint without a CRIU image fails early", async () => {
  args = { ...base(), checkpoint: suite.checkpoints.noTask.ref };
  assert.match(await failureOf(s.stack.preview()), /made without --task/);
});

test("preview reports invalid inputs per property", async () => {
  args = { ...base(), name: "bad/name", address: "http://localhost:1" };
  const message = await failureOf(s.stack.preview());
  assert.match(message, /property name .*must be letters/);
  assert.match(message, /property address .*unsupported scheme "http"/);
});

test("preview against a daemon that is not there says it cannot reach it", async () => {
  args = { ...base(), address: `unix://${suite.d.dir}/nobody-here.sock` };
  assert.match(await failureOf(s.stack.preview()), /cannot reach containerd at unix:\/\/.*nobody-here\.sock/);
});

test("a create that fails inside CRIU fails up with restore.log lines and leaves nothing; the fixed program converges", async () => {
  args = { ...base(), checkpoint: corruptRef };
  const message = await failureOf(s.stack.up());
  assert.match(message, /start-task: .*criu/i);
  assert.match(message, /restore\.log \(last \d+ lines\)/);
  await suite.assertUnchanged("after failed up");
  const state = await s.stack.exportStack();
  assert.equal(state.deployment.resources.filter((r: { type: string }) => r.type.includes("RestoredContainer")).length, 0, "no state written");

  args = base();
  const fixed = await s.stack.up();
  assert.equal(fixed.summary.result, "succeeded");
  assert.equal((await s.stack.outputs()).status.value, "running");
});

test("with a fixed name, a replacement deletes the old container first", async () => {
  args = { ...base(), name: "app-fixed" };
  await s.stack.up();
  args = { ...base(), name: "app-fixed", restoreRw: false, live: false };
  const { events, onEvent } = eventCollector();
  await s.stack.up({ onEvent });
  const ops = resourceSteps(events).map((m) => m.op);
  assert.ok(ops.indexOf("delete-replaced") < ops.indexOf("create-replacement"), `delete before create: ${ops}`);
  assert.equal((await s.stack.outputs()).containerId.value, "app-fixed");
  await s.stack.destroy();
  await suite.assertUnchanged("after destroy");
});
