import { pathToFileURL } from "node:url";
import type { Any, Descriptor, Mount } from "../../containerd";
import { SIGKILL, deleteTask, stopTask } from "../teardown";
import type { RestoreStep } from "./step";

export interface TaskToCreate {
  /** The container id. */
  id: string;
  /** The prepared snapshot's mounts. */
  rootfs: Mount[];
  /** Absolute path on the daemon host for stdout and stderr; none: discarded. */
  logPath?: string;
  /** The CRIU image, for a live restore. */
  checkpoint?: Descriptor;
  /** runc options for this task (they override the container's): ours, with CRIU's work dir. */
  options?: Any;
}

/**
 * Creates the task on the snapshot's mounts, from the CRIU image when live (pid 0
 * until start). Stdout and stderr go to the same file or both nowhere: a file for
 * stdout alone crashes containerd 1.6's shim.
 */
export const createTask: RestoreStep<TaskToCreate, { pid: number }> = {
  name: "create-task",
  describe: (plan, options) => ({
    ...(options.live && plan.criuImage ? { criuImage: plan.criuImage.digest, criuImageBytes: plan.criuImage.size } : { process: "fresh (cold restore)" }),
    stdio: options.logPath ?? "none",
  }),
  async run(client, { id, rootfs, logPath, checkpoint, options }) {
    const log = logPath ? pathToFileURL(logPath).href : "";
    const { pid } = await client.call("tasks.Create", {
      containerId: id,
      rootfs,
      stdout: log,
      stderr: log,
      ...(checkpoint ? { checkpoint } : {}),
      ...(options ? { options } : {}),
    });
    return { pid };
  },
  // A start that failed may still have started the process (its answer lost): kill it first.
  async undo(client, _output, { id }) {
    await stopTask(client, id, SIGKILL, 0);
    await deleteTask(client, id);
  },
};
