import { unlessNotFound, type ContainerdClient, type TaskStatus, type Timestamp } from "../containerd";
import { withDaemonErrors } from "../errors";
import { Label, isReservedLabel } from "../labels";
import { RestoreError } from "../errors";
import { invalidSignalReason, reservedLabelIn } from "./rules";

export type ContainerStatus = "running" | "created" | "stopped" | "paused" | "pausing" | "unknown" | "no-task";

/** What a restored container looks like on the daemon now. */
export interface ContainerState {
  id: string;
  status: ContainerStatus;
  /** Host pid of the init process; 0 when there is none. */
  pid: number;
  /** Exit status when stopped. */
  exitStatus?: number;
  exitedAt?: string;
  labels: Record<string, string>;
  image: string;
  snapshotter: string;
  snapshotKey: string;
  runtime: string;
  checkpointRef?: string;
  checkpointDigest?: string;
  createdAt?: string;
}

const STATUS: Record<TaskStatus, ContainerStatus> = {
  UNKNOWN: "unknown",
  CREATED: "created",
  RUNNING: "running",
  STOPPED: "stopped",
  PAUSED: "paused",
  PAUSING: "pausing",
};

function isoTime(t: Timestamp | null | undefined): string | undefined {
  if (!t || (!t.seconds && !t.nanos) || t.seconds < 0) return undefined;
  return new Date(t.seconds * 1000 + Math.floor(t.nanos / 1e6)).toISOString();
}

/** The container and task state of `id`, or undefined when the container does not exist. */
export const inspect = withDaemonErrors(async function inspect(client: ContainerdClient, id: string): Promise<ContainerState | undefined> {
  const [found, task] = await Promise.all([
    unlessNotFound(client.call("containers.Get", { id })),
    unlessNotFound(client.call("tasks.Get", { containerId: id })),
  ]);
  if (!found) return undefined;
  const { container } = found;
  const labels = container.labels ?? {};
  const process = task?.process;
  const status = process ? STATUS[process.status] : "no-task";
  return {
    id,
    status,
    pid: process?.pid ?? 0,
    ...(process && status === "stopped" ? { exitStatus: process.exitStatus, exitedAt: isoTime(process.exitedAt) } : {}),
    labels,
    image: container.image ?? "",
    snapshotter: container.snapshotter ?? "",
    snapshotKey: container.snapshotKey ?? "",
    runtime: container.runtime?.name ?? "",
    checkpointRef: labels[Label.checkpointRef],
    checkpointDigest: labels[Label.checkpointDigest],
    createdAt: isoTime(container.createdAt),
  };
});

/**
 * Replaces the user labels of `id` in place (Containers.Update with a field
 * mask); this project's own labels are kept, the stop-signal label follows `stopSignal`.
 */
export const updateLabels = withDaemonErrors(async function updateLabels(
  client: ContainerdClient,
  id: string,
  labels: Record<string, string>,
  stopSignal?: string,
): Promise<void> {
  // As restore does: the project's own labels (and containerd's stop signal, set from `stopSignal`) are not the caller's to set.
  const reserved = reservedLabelIn(labels);
  if (reserved) throw new RestoreError("invalid-option", `labels must not set ${reserved}: this project writes it`, { subject: "labels" });
  const badSignal = stopSignal === undefined ? undefined : invalidSignalReason(stopSignal);
  if (badSignal) throw new RestoreError("invalid-option", `stopSignal ${badSignal}`, { subject: "stopSignal" });
  const { container } = await client.call("containers.Get", { id });
  const own = Object.entries(container.labels ?? {}).filter(([key]) => isReservedLabel(key) && key !== Label.stopSignal);
  await client.call("containers.Update", {
    container: { id, labels: { ...labels, ...Object.fromEntries(own), ...(stopSignal ? { [Label.stopSignal]: stopSignal } : {}) } },
    updateMask: { paths: ["labels"] },
  });
});
