import * as fs from "node:fs/promises";
import { isContainerdError } from "../../containerd";
import { RestoreError } from "../../errors";
import type { RestoreStep } from "./step";

const RESTORE_LOG_LINES = 20;

/** The tail of the CRIU log named in a daemon error, when this host can read it. */
export async function restoreLogTail(daemonMessage: string): Promise<string[] | undefined> {
  const path = /log file: (\/\S+?\.log)/.exec(daemonMessage)?.[1];
  if (!path) return undefined;
  try {
    const lines = (await fs.readFile(path, "utf8")).split("\n").filter((line) => line.trim() !== "");
    return lines.slice(-RESTORE_LOG_LINES);
  } catch {
    return undefined; // a remote daemon, or the log is gone
  }
}

/** Starts the task of container `id`: for a live restore, this is where CRIU restores the process. Returns its host pid. */
export const startTask: RestoreStep<{ id: string }, { pid: number }> = {
  name: "start-task",
  async run(client, { id }) {
    try {
      const { pid } = await client.call("tasks.Start", { containerId: id });
      return { pid };
    } catch (err) {
      if (!isContainerdError(err) || !/criu|restore/i.test(err.details)) throw err;
      // Read before undo: deleting the task removes its work dir and restore.log.
      const restoreLog = client.address.startsWith("tcp://") ? undefined : await restoreLogTail(err.details);
      const tail = restoreLog ? `\nrestore.log (last ${restoreLog.length} lines):\n  ${restoreLog.join("\n  ")}` : "";
      throw new RestoreError("criu-failed", `${err.message}${tail}`, { cause: err, restoreLog });
    }
  },
  // Undone by create-task's undo, which kills a process that started anyway.
};
