import { isContainerdError } from "../../containerd/errors";
import { RestoreError } from "../../errors";
import { readRestoreLogTail, removeCriuWorkDir } from "../criu-log";
import type { RestoreStep } from "./step";

/** Starts the task: for a live restore, this is where CRIU restores the process. */
export const startTask: RestoreStep = {
  name: "start-task",
  async run(ctx) {
    try {
      ctx.pid = (await ctx.client.call("tasks.Start", { containerId: ctx.options.id })).pid;
    } catch (err) {
      if (!isContainerdError(err) || !/criu|restore/i.test(err.details)) throw err;
      // Only the log in the work directory this restore chose (create-task); never a path from the message.
      const restoreLog = ctx.criuWorkDir ? await readRestoreLogTail(ctx.criuWorkDir) : undefined;
      const tail = restoreLog ? `\nrestore.log (last ${restoreLog.length} lines):\n  ${restoreLog.join("\n  ")}` : "";
      throw new RestoreError("criu-failed", `${err.message}${tail}`, { cause: err, restoreLog });
    } finally {
      if (ctx.criuWorkDir) await removeCriuWorkDir(ctx.criuWorkDir);
    }
  },
  // Undone by create-task's undo, which kills a process that started anyway.
};
