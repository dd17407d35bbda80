import { pathToFileURL } from "node:url";
import { deleteTask, stopTask } from "../teardown";
import { createCriuWorkDir, removeCriuWorkDir } from "../criu-log";
import { taskRuntimeOptions } from "../policy";
import type { RestoreStep } from "./step";

/**
 * Creates the task on the snapshot's mounts, from the CRIU image when live (pid 0
 * until start). Stdout and stderr go to the same file or both nowhere: a file for
 * stdout alone crashes containerd 1.6's shim.
 */
const SIGKILL = 9;

export const createTask: RestoreStep = {
  name: "create-task",
  describe: (plan, options) => ({
    ...(options.live ? { criuImage: plan.criuImage!.digest, criuImageBytes: plan.criuImage!.size } : { process: "fresh (cold restore)" }),
    stdio: options.logPath ?? "none",
  }),
  async run(ctx) {
    const { options, plan } = ctx;
    const log = options.logPath ? pathToFileURL(options.logPath).href : "";
    // A local daemon's CRIU writes its log where we chose, so we never read a path a message names.
    const local = !ctx.client.address.startsWith("tcp://");
    if (options.live && local) ctx.criuWorkDir = await createCriuWorkDir();
    const taskOptions = ctx.criuWorkDir ? taskRuntimeOptions(plan, ctx.criuWorkDir) : undefined;
    await ctx.client.call("tasks.Create", {
      containerId: options.id,
      rootfs: ctx.mounts!,
      stdout: log,
      stderr: log,
      ...(options.live ? { checkpoint: plan.criuImage! } : {}),
      ...(taskOptions ? { options: taskOptions } : {}),
    });
  },
  // A start that failed may still have started the process (its answer lost): kill it first.
  async undo(ctx) {
    await stopTask(ctx.client, ctx.options.id, SIGKILL, 0);
    await deleteTask(ctx.client, ctx.options.id);
    if (ctx.criuWorkDir) await removeCriuWorkDir(ctx.criuWorkDir);
  },
};
