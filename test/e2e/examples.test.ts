/**
 * The examples users copy, run as they are (their index.ts through the real
 * Pulumi engine) against private daemons: restore-counter, migrate, fleet.
 */
import assert from "node:assert/strict";
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
import { exampleProgram, newStack } from "./stack";

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

async function runExample(name: string, config: Record<string, string>) {
  const example = exampleProgram(name);
  const s = await newStack(name, example.program, { main: example.dir });
  await s.stack.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [k, { value: v }])));
  const up = await s.stack.up();
  const outputs = Object.fromEntries(Object.entries(up.outputs).map(([k, v]) => [k, v.value]));
  return { s, outputs };
}

const counts = (logPath: string) => readLog(logPath).filter((l) => /^\d+$/.test(l)).map(Number);

test("restore-counter restores the checkpoint and exports its outputs", async () => {
  const checkpoint = await makeCheckpoint(a, { ref: "checkpoint/counter:v1", image: await importBaseImage(a) });
  const logPath = path.join(a.logDir, "example-counter.log");
  const { s, outputs } = await runExample("restore-counter", { checkpoint: checkpoint.ref, address: a.address, namespace: a.namespace, logPath });
  assert.equal(outputs.status, "running");
  assert.equal(outputs.checkpointDigest, checkpoint.digest);
  assert.equal(outputs.checkpointFormat, "modern");
  const [first] = await waitFor(() => (counts(logPath).length ? counts(logPath) : undefined), 10_000, () => "counts");
  assert.ok(first > checkpoint.countBefore);
  await s.stack.destroy();
  await s.remove();
});

test("migrate moves a running container from A to B, where it keeps counting", async () => {
  const id = uniqueId("mover");
  const { pid } = await runCounter(a, id, (await importBaseImage(a)).name);
  await waitForCount(pid, 5);
  const before = await readCountSettled(pid);
  const logPath = path.join(b.logDir, "migrated.log");
  const { s, outputs } = await runExample("migrate", {
    sourceAddress: a.address,
    sourceNamespace: a.namespace,
    containerId: id,
    targetAddress: b.address,
    targetNamespace: b.namespace,
    logPath,
  });
  assert.equal(outputs.targetStatus, "running");
  assert.ok(Number(outputs.bytesMoved) > 0);
  const [first] = await waitFor(() => (counts(logPath).length ? counts(logPath) : undefined), 10_000, () => "counts on B");
  assert.ok(first > before, `B resumed at ${first}, A was at ${before}`);
  await s.stack.destroy();
  await s.remove();
  assert.deepEqual((await takeInventory(b)).containers, []);
  await removeContainer(a, id);
  await a.ctr(["images", "rm", String(outputs.checkpointRef)]);
});

test("fleet restores one checkpoint on every daemon in parallel", async () => {
  const checkpoint = await makeCheckpoint(a, { ref: "checkpoint/fleet:v1", image: await importBaseImage(a) });
  const { s, outputs } = await runExample("fleet", {
    sourceAddress: a.address,
    sourceNamespace: a.namespace,
    checkpoint: checkpoint.ref,
    daemons: JSON.stringify([b.address, c.address]),
    namespace: b.namespace,
  });
  assert.deepEqual(outputs.statuses, ["running", "running"]);
  for (const [i, d] of [b, c].entries()) {
    const id = (outputs.containerIds as string[])[i];
    assert.deepEqual((await takeInventory(d)).containers, [id]);
  }
  await s.stack.destroy();
  await s.remove();
  for (const d of [b, c]) assert.deepEqual((await takeInventory(d)).containers, []);
});
