/**
 * The main job on the embedded default, the way a user runs it: a private
 * containerd, a checkpoint of a counting container, then in
 * examples/restore-counter `pulumi stack init`, `pulumi config set …`,
 * `pulumi up`, the restored process continuing its count, and `pulumi destroy`
 * — the real CLI and Node language host, a local backend in a temp dir.
 * Run it with `bash scripts/demo.sh`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { importBaseImage, makeCheckpoint, readLog, sleep, startContainerd, type PrivateContainerd } from "../test/harness";
import { pulumiIn } from "../test/cli/project";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const EXAMPLE = path.join(REPO_ROOT, "examples", "restore-counter");
const STACK = "demo";

const numbers = (logPath: string) => readLog(logPath).filter((line) => /^\d+$/.test(line)).map(Number);

/** The example imports this package by name: link it into the example, as `npm link` would. */
function linkPackage(): void {
  const link = path.join(EXAMPLE, "node_modules", "pulumi-containerd-restore");
  fs.mkdirSync(path.dirname(link), { recursive: true });
  if (!fs.existsSync(link)) fs.symlinkSync(REPO_ROOT, link, "dir");
}

async function main(): Promise<void> {
  let d: PrivateContainerd | undefined;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "pcr-demo-"));
  const { pulumi, outputs } = pulumiIn(EXAMPLE, root);
  const shown = (args: string[]) => {
    console.log(`\n$ pulumi ${args.filter((a) => a !== "--").join(" ")}`);
    return pulumi(args, { stream: true });
  };
  let stackMade = false;
  try {
    d = await startContainerd({ namespace: "demo" });
    console.log(`• private containerd at ${d.address} (namespace ${d.namespace}); local backend in ${root}`);
    const image = await importBaseImage(d);
    const checkpoint = await makeCheckpoint(d, { ref: "checkpoint/counter:v1", image, minCount: 10 });
    console.log(`• checkpointed a counting container at count ${checkpoint.countBefore}–${checkpoint.countAfter} as ${checkpoint.ref} (${checkpoint.digest.slice(0, 19)}…); the original is gone`);
    linkPackage();
    const logPath = path.join(d.logDir, "restored-counter.log");

    console.log(`• in examples/restore-counter:`);
    await shown(["stack", "init", STACK]);
    stackMade = true;
    for (const [key, value] of Object.entries({ checkpoint: checkpoint.ref, address: d.address, namespace: d.namespace, logPath })) {
      await shown(["config", "set", key, "--", value]);
    }
    await shown(["up", "--yes"]);
    const out = await outputs();
    await sleep(1500);
    const counted = numbers(logPath);
    console.log(
      `\n• the restored process (pid ${out.pid}) went on counting from the checkpoint: ${counted.slice(0, 8).join(", ")}, … ` +
        `(a fresh start would print 1, 2, 3)`,
    );
    if (!(counted[0] > checkpoint.countBefore)) throw new Error(`restored counter started at ${counted[0]}, not after ${checkpoint.countBefore}`);

    await shown(["destroy", "--yes"]);
    console.log("\n• done: the daemon holds no restored container");
  } finally {
    if (stackMade) {
      await pulumi(["destroy", "--yes"], { allowFailure: true });
      await pulumi(["stack", "rm", "--yes", "--force", STACK], { allowFailure: true });
    }
    fs.rmSync(path.join(EXAMPLE, `Pulumi.${STACK}.yaml`), { force: true });
    fs.rmSync(root, { recursive: true, force: true });
    await d?.stop();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
