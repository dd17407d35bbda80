/**
 * The peer of RestoredContainer that a Pulumi user would write without this
 * project: a dynamic provider that shells out to `ctr`. create runs
 * `ctr -a SOCK -n NS containers restore --rw --live ID REF`; delete runs
 * `ctr tasks kill -s SIGKILL ID`, waits for the task to stop (retrying `ctr
 * tasks rm ID` until it succeeds), then `ctr containers rm ID`. No check, no
 * diff (the engine compares the inputs), no read: a plain execFile
 * implementation, nothing more.
 *
 * The file is self-contained (only @pulumi/pulumi, and Node built-ins required
 * inside the functions) because bench/pulumi.ts copies it as-is into a Pulumi
 * project directory next to the program, and Pulumi serializes the provider
 * (and the functions it calls) into the stack's state. bench/pulumi.ts also
 * uses {@link ctrRestore} and {@link ctrRemove} for its raw-ctr baseline, so
 * both run the very same ctr commands.
 */
import * as pulumi from "@pulumi/pulumi";

/** What the resource takes, and (unchanged) what it stores. */
export interface ShellContainerInputs {
  /** containerd's socket path (`ctr -a`). */
  socket: string;
  namespace: string;
  /** The checkpoint image ref. */
  checkpoint: string;
  /** The container id to restore as. */
  containerId: string;
  /** The ctr binary. */
  ctr: string;
}

type Inputs = { [K in keyof ShellContainerInputs]: pulumi.Input<ShellContainerInputs[K]> };

/** Runs `ctr -a SOCK -n NS args…`; rejects with ctr's stderr on a non-zero exit. */
export async function ctrRun(c: ShellContainerInputs, args: string[]): Promise<void> {
  const { execFile } = require("node:child_process") as typeof import("node:child_process");
  await new Promise<void>((resolve, reject) => {
    execFile(c.ctr, ["-a", c.socket, "-n", c.namespace, ...args], (err, _stdout, stderr) =>
      err ? reject(new Error(`ctr ${args.join(" ")}: ${err.message} ${stderr}`.trim())) : resolve(),
    );
  });
}

/** `ctr containers restore --rw --live ID REF`. */
export async function ctrRestore(c: ShellContainerInputs): Promise<void> {
  await ctrRun(c, ["containers", "restore", "--rw", "--live", c.containerId, c.checkpoint]);
}

/** SIGKILL the task, wait until `ctr tasks rm` succeeds (the task has stopped), then remove the container. */
export async function ctrRemove(c: ShellContainerInputs): Promise<void> {
  // Ignore a failed kill: the task may have exited already.
  await ctrRun(c, ["tasks", "kill", "-s", "SIGKILL", c.containerId]).catch(() => undefined);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await ctrRun(c, ["tasks", "rm", c.containerId]);
      break;
    } catch (err) {
      if (/not found/.test(String(err))) break;
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await ctrRun(c, ["containers", "rm", c.containerId]);
}

const shellProvider: pulumi.dynamic.ResourceProvider<ShellContainerInputs, ShellContainerInputs> = {
  async create(inputs) {
    await ctrRestore(inputs);
    return { id: inputs.containerId, outs: inputs };
  },
  async delete(_id, props) {
    await ctrRemove(props);
  },
};

/** A container restored from a checkpoint by shelling out to ctr. */
export class ShellContainer extends pulumi.dynamic.Resource {
  declare readonly containerId: pulumi.Output<string>;

  constructor(name: string, args: Inputs, opts?: pulumi.CustomResourceOptions) {
    super(shellProvider, name, args, opts, "bench", "ShellContainer");
  }
}
