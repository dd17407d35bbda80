/**
 * The main job on the embedded default: a private containerd, a checkpoint of a
 * counting container, `pulumi up` of examples/restore-counter on a local
 * backend, the restored process continuing its count, then `pulumi destroy`.
 * Run it with `bash scripts/demo.sh`.
 */
import * as path from "node:path";
import { importBaseImage, makeCheckpoint, readLog, sleep, startContainerd, type PrivateContainerd } from "../test/harness";
import { exampleProgram, newStack, type TestStack } from "../test/e2e/stack";

const numbers = (logPath: string) => readLog(logPath).filter((line) => /^\d+$/.test(line)).map(Number);

async function main(): Promise<void> {
  let d: PrivateContainerd | undefined;
  let stack: TestStack | undefined;
  try {
    d = await startContainerd({ namespace: "demo" });
    console.log(`• private containerd at ${d.address} (namespace ${d.namespace})`);
    const image = await importBaseImage(d);
    const checkpoint = await makeCheckpoint(d, { ref: "checkpoint/counter:v1", image, minCount: 10 });
    console.log(`• checkpointed a counting container at count ${checkpoint.countBefore}–${checkpoint.countAfter} as ${checkpoint.ref} (${checkpoint.digest.slice(0, 19)}…); the original is gone`);

    const example = exampleProgram("restore-counter");
    const logPath = path.join(d.logDir, "restored-counter.log");
    stack = await newStack("restore-counter", example.program, { main: example.dir });
    await stack.stack.setAllConfig({
      checkpoint: { value: checkpoint.ref },
      address: { value: d.address },
      namespace: { value: d.namespace },
      logPath: { value: logPath },
    });

    console.log("• pulumi up examples/restore-counter …");
    const up = await stack.stack.up({ onOutput: (out) => process.stdout.write(out) });
    const outputs = up.outputs;
    await sleep(1500);
    const counted = numbers(logPath);
    console.log(
      `• the restored process (pid ${outputs.pid.value}) went on counting from the checkpoint: ${counted.slice(0, 8).join(", ")}, … ` +
        `(a fresh start would print 1, 2, 3)`,
    );
    if (!(counted[0] > checkpoint.countBefore)) throw new Error(`restored counter started at ${counted[0]}, not after ${checkpoint.countBefore}`);

    console.log("• pulumi destroy …");
    await stack.stack.destroy({ onOutput: (out) => process.stdout.write(out) });
    console.log("• done: the daemon holds no restored container");
  } finally {
    await stack?.remove();
    await d?.stop();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
