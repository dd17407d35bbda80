import { isContainerdError, unlessNotFound, type Container } from "../../containerd";
import { SPEC_TYPE_URL } from "../../checkpoint";
import { RestoreError } from "../../errors";
import { Label, MANAGED_BY } from "../../labels";
import { grantsBeyondDefault } from "../../policy";
import type { RestorePlan } from "../plan";
import type { ResolvedRestoreOptions, RestoreStep } from "./step";

/**
 * The checkpointed spec with `linux.cgroupsPath` moved to the new container:
 * copies of one checkpoint must never share a cgroup (Kill{all} and the freezer
 * act on the whole cgroup). Keeps the systemd `slice:prefix:name` form.
 */
export function specForContainer(spec: Record<string, unknown>, namespace: string, id: string): Record<string, unknown> {
  const copy = structuredClone(spec);
  const linux = (copy.linux ?? (copy.linux = {})) as { cgroupsPath?: string };
  const systemd = linux.cgroupsPath?.match(/^([^:/]*):([^:]*):[^:]*$/);
  linux.cgroupsPath = systemd ? `${systemd[1]}:${systemd[2]}:${id}` : `/${namespace}/${id}`;
  return copy;
}

/** The labels of a restored container: the user's, plus what teardown and refresh need. */
export function containerLabels(plan: RestorePlan, options: ResolvedRestoreOptions): Record<string, string> {
  return {
    ...options.labels,
    [Label.managedBy]: MANAGED_BY,
    [Label.checkpointRef]: plan.checkpoint.ref,
    [Label.checkpointDigest]: plan.checkpoint.digest,
    [Label.checkpointFormat]: plan.checkpoint.format,
    [Label.mode]: options.live ? "live" : "cold",
    ...(options.stopSignal ? { [Label.stopSignal]: options.stopSignal } : {}),
    ...(options.owner ? { [Label.owner]: options.owner } : {}),
  };
}

/** The container record of a restore: the checkpointed spec and runtime, on the snapshot keyed by the id. */
export function containerRecord(plan: RestorePlan, options: ResolvedRestoreOptions, namespace: string): Container {
  const runtimeOptions = plan.runtime.options;
  return {
    id: options.id,
    labels: containerLabels(plan, options),
    image: plan.image.name,
    runtime: {
      name: plan.runtime.name,
      ...(runtimeOptions ? { options: { typeUrl: runtimeOptions.typeUrl, value: Buffer.from(runtimeOptions.valueBase64, "base64") } } : {}),
    },
    spec: { typeUrl: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(specForContainer(plan.spec, namespace, options.id))) },
    snapshotter: plan.snapshotter,
    snapshotKey: options.id,
  };
}

/** Creates the container record (see `containerRecord`). */
export const createContainer: RestoreStep<{ container: Container }, void> = {
  name: "create-container",
  describe: (plan, options, namespace) => ({
    image: plan.image.name,
    runtime: plan.runtime.name,
    cgroupsPath: (specForContainer(plan.spec, namespace, options.id).linux as { cgroupsPath: string }).cgroupsPath,
    // What the checkpointed spec gets on the host, beyond an ordinary container (the restore policy's summary).
    grants: grantsBeyondDefault(plan.security),
  }),
  async run(client, { container }) {
    try {
      await client.call("containers.Create", { container });
    } catch (err) {
      if (!isContainerdError(err, "already-exists")) throw err;
      throw new RestoreError("id-in-use", `id ${container.id} is in use: container ${container.id} already exists`, { subject: "id", cause: err });
    }
  },
  async undo(client, _output, { container }) {
    await unlessNotFound(client.call("containers.Delete", { id: container.id }));
  },
};
