/**
 * Migration across containerd versions, through the real Pulumi engine:
 * checkpoint a running counter on a containerd 2.4.2 daemon, copy it with
 * CheckpointCopy to a containerd 1.6.20 daemon, restore it there, and the other
 * way round. The count continues on the target; destroy removes the copy and
 * the restored container. Both daemons use the runc the leg selected.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import {
  containerdAvailable,
  describeVersions,
  importBaseImage,
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
import { migrationProgram, newStack, type TestStack } from "./stack";

const NEW = "2.4.2";
const OLD = "1.6.20";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

for (const [from, to] of [
  [NEW, OLD],
  [OLD, NEW],
] as const) {
  describe(`checkpoint on containerd ${from}, restore on containerd ${to}`, () => {
    test("through CheckpointCopy; the process continues counting on the target", async (t) => {
      const missing = [from, to].filter((v) => !containerdAvailable(v));
      if (missing.length > 0) {
        return t.skip(`containerd ${missing.join(" and ")} not built: run \`CONTAINERD_VERSION=${missing[0]} bash scripts/setup.sh\` (scripts/test.sh without arguments builds it)`);
      }
      t.diagnostic(`leg: ${describeVersions()}`);
      const [a, b]: PrivateContainerd[] = await Promise.all([startContainerd({ containerd: from }), startContainerd({ containerd: to })]);
      cleanups.push(() => a.stop(), () => b.stop());
      const image = await importBaseImage(a);
      const originalId = uniqueId("xv");
      const { pid } = await runCounter(a, originalId, image.name);
      await waitForCount(pid, 5);
      const beforeB = await takeInventory(b);
      const logPath = path.join(b.logDir, "xv-on-target.log");
      const s: TestStack = await newStack(
        `restore-e2e-xv-${from.replace(/\./g, "")}-${to.replace(/\./g, "")}`,
        migrationProgram(a, b, { containerId: originalId, ref: "checkpoint/xv:v1", copyName: "to-target", restoredName: "app-on-target", logPath }),
      );
      cleanups.push(() => s.remove());

      const countBefore = await readCountSettled(pid);
      const result = await s.stack.up();
      assert.equal(result.summary.result, "succeeded");
      const out = Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value]));
      assert.equal(out.copiedDigest, out.digest, "the same checkpoint digest on both daemons");
      assert.equal(out.status, "running");
      assert.equal(out.daemonVersion, b.version.text, `restored by containerd ${to}`);
      const counts = await waitFor(() => {
        const n = readLog(logPath).filter((l) => /^\d+$/.test(l)).map(Number);
        return n.length >= 3 ? n : undefined;
      }, 15_000, () => `counts on containerd ${to}`);
      assert.ok(counts[0] > countBefore, `containerd ${to} resumed at ${counts[0]}; ${from} was at ${countBefore} before the checkpoint`);
      assert.deepEqual(counts.slice(0, 3), [counts[0], counts[0] + 1, counts[0] + 2], "and keeps counting");

      await s.stack.destroy();
      const afterB = await takeInventory(b);
      assert.deepEqual(afterB.containers, beforeB.containers, "destroy removed the restored container");
      assert.deepEqual(afterB.tasks, beforeB.tasks);
      await removeContainer(a, originalId);
    });
  });
}
