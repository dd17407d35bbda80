/**
 * Ownership through the real Pulumi engine (issue 8, item 6): stacks of
 * different projects declare a RestoredContainer with the same fixed name on
 * one daemon. B's refresh does not adopt A's container (B's resource is gone,
 * with a warning naming A's owner), B's next up refuses the taken name at
 * preview, and C's destroy leaves A's container running, with the warning.
 * Also (item 8): malformed TLS material fails preview on the `tls` property,
 * without the material in the output.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { RestoredContainer } from "../../sdk";
import { connect, inspect, teardown, type ContainerdClient } from "../../provider/index";
import {
  assertInventoryUnchanged,
  generateTlsMaterial,
  importBaseImage,
  makeCheckpoint,
  startContainerd,
  takeInventory,
  type Checkpoint,
  type Inventory,
  type PrivateContainerd,
  type TlsMaterial,
} from "../harness";
import { RESOURCE_TYPE, failureOf, newStack, type TestStack } from "./stack";

const NAME = "shared-app";
let d: PrivateContainerd;
let client: ContainerdClient;
let checkpoint: Checkpoint;
let baseline: Inventory;
const stacks: Record<"a" | "b" | "c", TestStack | undefined> = { a: undefined, b: undefined, c: undefined };

before(async () => {
  d = await startContainerd();
  client = connect(d.address, { namespace: d.namespace });
  const image = await importBaseImage(d);
  checkpoint = await makeCheckpoint(d, { ref: "checkpoint/shared:v1", image });
  baseline = await takeInventory(d);
  for (const key of ["a", "b", "c"] as const) {
    stacks[key] = await newStack(`own-${key}`, async () => {
      const app = new RestoredContainer("app", { checkpoint: checkpoint.ref, name: NAME, address: d.address, namespace: d.namespace, stopTimeoutSeconds: 1 });
      return { containerId: app.containerId, pid: app.pid };
    });
  }
});

after(async () => {
  for (const s of Object.values(stacks)) await s?.remove();
  client?.close();
  await d?.stop();
});

/** Everything an operation printed (stdout and stderr, where the engine shows diagnostics). */
function printed() {
  const lines: string[] = [];
  return { lines, opts: { onOutput: (t: string) => void lines.push(t), onError: (t: string) => void lines.push(t) } };
}

const hasResource = async (s: TestStack) => (await s.stack.exportStack()).deployment.resources?.some((r: { type: string }) => r.type === RESOURCE_TYPE) ?? false;
const ownerOf = (project: string) => `pulumi:${project}/test/app`;

async function upAndOwn(s: TestStack, project: string): Promise<number> {
  const result = await s.stack.up();
  assert.equal(result.summary.result, "succeeded");
  const state = await inspect(client, NAME);
  assert.equal(state?.status, "running");
  assert.equal(state.labels["containerd-restore/owner"], ownerOf(project));
  return state.pid;
}

test("B's refresh does not adopt A's container of the same name; B's next up refuses the name", async () => {
  const a = stacks.a!;
  const b = stacks.b!;
  await upAndOwn(b, "own-b");
  // B's container goes behind B's back; A then takes the free name.
  await teardown(client, NAME, { graceMs: 300 });
  const pidA = await upAndOwn(a, "own-a");

  const out = printed();
  const refresh = await b.stack.refresh(out.opts);
  assert.equal(refresh.summary.resourceChanges?.delete, 1, "B's resource is gone from B's state");
  assert.equal(await hasResource(b), false);
  const text = out.lines.join("");
  console.log(`refresh warning: ${text.split("\n").find((l) => l.includes("belongs to"))?.trim()}`);
  assert.match(text, /warning/i);
  assert.match(text, new RegExp(`container ${NAME} belongs to \\\\?"${ownerOf("own-a")}\\\\?", not to \\\\?"${ownerOf("own-b")}\\\\?"`));
  const state = await inspect(client, NAME);
  assert.equal(state?.pid, pidA, "A's container untouched");
  assert.equal(state?.status, "running");

  const message = await failureOf(b.stack.up());
  assert.match(message, new RegExp(`a container named ${NAME} already exists in namespace ${d.namespace}: choose another name`));
  assert.equal((await inspect(client, NAME))?.pid, pidA, "still A's, still running");
});

test("C's destroy leaves A's container of the same name running, with a warning naming A", async () => {
  const a = stacks.a!;
  const c = stacks.c!;
  await a.stack.destroy();
  await upAndOwn(c, "own-c");
  await teardown(client, NAME, { graceMs: 300 });
  const pidA = await upAndOwn(a, "own-a");

  const out = printed();
  const destroyed = await c.stack.destroy(out.opts);
  assert.equal(destroyed.summary.result, "succeeded");
  assert.equal(await hasResource(c), false);
  const text = out.lines.join("");
  console.log(`destroy warning: ${text.split("\n").find((l) => l.includes("belongs to"))?.trim()}`);
  assert.match(text, /warning/i);
  assert.match(text, new RegExp(`container ${NAME} belongs to \\\\?"${ownerOf("own-a")}\\\\?", not \\\\?"${ownerOf("own-c")}\\\\?".*left running`));
  const state = await inspect(client, NAME);
  assert.equal(state?.pid, pidA, "A's container untouched");
  assert.equal(state?.status, "running");

  await a.stack.destroy();
  await assertInventoryUnchanged(d, baseline, "after A's destroy");
});

test("malformed TLS material fails preview on tls, without the material in the output", async () => {
  const material: TlsMaterial = await generateTlsMaterial();
  let tls = material.clientTls();
  const s = await newStack("own-tls", async () => {
    new RestoredContainer("remote", { checkpoint: checkpoint.ref, address: "tcp://127.0.0.1:1", tls: pulumi.secret(tls) });
  });
  try {
    const good = material.clientTls();
    const lines = good.cert.split("\n");
    lines[2] = lines[2].split("").reverse().join("");
    const cases: [string, typeof good, RegExp][] = [
      ["key and certificate swapped", { ...good, cert: good.key, key: good.cert }, /tls\.cert holds a private key, not a certificate: are tls\.cert and tls\.key swapped/],
      ["a key that is not the certificate's", { ...good, key: material.otherClient.keyPem }, /tls\.key is not the private key of tls\.cert/],
      ["a corrupted certificate", { ...good, cert: lines.join("\n") }, /tls\.cert is not a valid certificate \(corrupted\?\)/],
    ];
    for (const [what, bad, reason] of cases) {
      tls = bad;
      const message = await failureOf(s.stack.preview());
      assert.match(message, /property tls .*has a problem/, `${what}: names tls: ${message}`);
      assert.match(message, reason, what);
      for (const pem of [good.key, good.cert, material.otherClient.keyPem]) {
        for (const line of pem.split("\n").filter((l) => l.length >= 16 && !l.startsWith("-----"))) {
          assert.ok(!message.includes(line), `${what}: no PEM line in the output`);
        }
      }
    }
  } finally {
    await s.remove();
    material.remove();
  }
});
