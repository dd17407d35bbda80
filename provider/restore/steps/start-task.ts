import { isContainerdError } from "../../containerd";
import { RestoreError } from "../../errors";
import { readRestoreLogTail } from "../criu-log";
import type { RestoreStep } from "./step";

export interface TaskToStart {
  id: string;
  /** CRIU's work directory, when this restore chose it (a live restore on a local daemon). */
  criuWorkDir?: string;
}

/** Starts the task of container `id`: for a live restore, this is where CRIU restores the process. Returns its host pid. */
export const startTask: RestoreStep<TaskToStart, { pid: number }> = {
  name: "start-task",
  async run(client, { id, criuWorkDir }) {
    try {
      const { pid } = await client.call("tasks.Start", { containerId: id });
      return { pid };
    } catch (err) {
      if (!isContainerdError(err) || !/criu|restore/i.test(err.details)) throw err;
      // Only the log in the work directory this restore chose; never a path a message names.
      const restoreLog = criuWorkDir ? await readRestoreLogTail(criuWorkDir) : undefined;
      const tail = restoreLog ? `\nrestore.log (last ${restoreLog.length} lines):\n  ${restoreLog.join("\n  ")}` : "";
      throw new RestoreError("criu-failed", `${err.message}${tail}`, { cause: err, restoreLog });
    }
  },
  // Undone by create-task's undo, which kills a process that started anyway.
};
