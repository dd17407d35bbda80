/**
 * The restore policy through the real Pulumi engine: preview of a hostile
 * checkpoint fails naming the property and the field, and nothing runs; `up`
 * fails the same way and leaves nothing; the allowance admits it and preview
 * shows what it grants; changing the allowance of a running container updates
 * it in place (same pid), and a narrower policy only marks the next restore.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { RestoredContainer, type RestoredContainerArgs } from "../../sdk";
import {
  assertInventoryUnchanged,
  importBaseImage,
  makeCheckpoint,
  makeHostileCheckpoint,
  startContainerd,
  takeInventory,
  type Inventory,
  type PrivateContainerd,
} from "../harness";
import { failureOf, newStack, type TestStack } from "./stack";

let d: PrivateContainerd;
let hookedRef: string;
let markers: string;
let baseline: Inventory;
let s: TestStack;
let args: RestoredContainerArgs;

const hookRan = () => fs.existsSync(path.join(markers, "hook-ran"));

before(async () => {
  d = await startContainerd();
  const image = await importBaseImage(d);
  const good = await makeCheckpoint(d, { ref: "checkpoint/app:v1", image });
  markers = fs.mkdtempSync(path.join(os.tmpdir(), "policy-e2e-"));
  const hook = { path: "/bin/sh", args: ["sh", "-c", `touch ${path.join(markers, "hook-ran")}`] };
  hookedRef = (await makeHostileCheckpoint(d, good, "checkpoint/app:hooked", { spec: (spec) => (spec.hooks = { prestart: [hook] }) })).ref;
  baseline = await takeInventory(d);
  s = await newStack("restore-e2e-policy", async () => {
    const app = new RestoredContainer("app", args);
    return { pid: app.pid, security: app.security };
  });
});

after(async () => {
  await s?.remove();
  await d?.stop();
  if (markers) fs.rmSync(markers, { recursive: true, force: true });
});

const base = (): RestoredContainerArgs => ({ address: d.address, namespace: d.namespace, checkpoint: hookedRef, stopTimeoutSeconds: 1 });

test("preview of a checkpoint with a hook fails naming the property and the field; nothing runs", async () => {
  args = base();
  const message = await failureOf(s.stack.preview());
  assert.match(message, /property checkpoint .*spec\.hooks\.prestart\[0\]: runs \/bin\/sh on the host as root \(prestart hook\) \(admit with allow\.hooks: true\)/s);
  assert.equal(hookRan(), false);
  await assertInventoryUnchanged(d, baseline, "after the refused preview", { settleMs: 0 });
});

test("up fails the same way and leaves nothing on the daemon or in the stack", async () => {
  args = base();
  assert.match(await failureOf(s.stack.up()), /spec\.hooks\.prestart\[0\]/);
  assert.equal(hookRan(), false);
  assert.equal((await s.stack.exportStack()).deployment.resources?.some((r: { type: string }) => r.type.endsWith(":RestoredContainer")) ?? false, false);
  await assertInventoryUnchanged(d, baseline, "after the refused up");
});

test("allow.hooks admits it; the outputs say what it was granted; changing the policy updates in place", async () => {
  args = { ...base(), allow: { hooks: true } };
  const up = await s.stack.up();
  assert.equal(hookRan(), true, "the allowed hook ran");
  assert.deepEqual(up.outputs.security.value.hooks, ["prestart: /bin/sh"]);
  const pid = up.outputs.pid.value as number;
  assert.ok(pid > 0);

  // A wider policy: an in-place update, same process.
  args = { ...base(), allow: { hooks: true, capabilities: ["CAP_NET_ADMIN"] } };
  const wider = await s.stack.up();
  assert.equal(wider.summary.resourceChanges?.update, 1);
  assert.equal(wider.outputs.pid.value, pid);

  // A narrower policy: preview passes (the container keeps running); the refusal applies to the next restore.
  args = base();
  const preview = await s.stack.preview();
  assert.equal(preview.changeSummary.replace ?? 0, 0);
  const narrower = await s.stack.up();
  assert.equal(narrower.outputs.pid.value, pid);

  await s.stack.destroy();
  await assertInventoryUnchanged(d, baseline, "after destroy");
});
