import { isContainerdError, unlessNotFound } from "../../containerd/errors";
import { SPEC_TYPE_URL } from "../../checkpoint/media-types";
import { RestoreError } from "../../errors";
import { Label, MANAGED_BY } from "../labels";
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

/** Creates the container record with the checkpointed spec and runtime. */
export const createContainer: RestoreStep = {
  name: "create-container",
  describe: (plan, options, namespace) => ({
    image: plan.image.name,
    runtime: plan.runtime.name,
    cgroupsPath: (specForContainer(plan.spec, namespace, options.id).linux as { cgroupsPath: string }).cgroupsPath,
  }),
  async run(ctx) {
    const { plan, options } = ctx;
    const spec = specForContainer(plan.spec, ctx.client.namespace, options.id);
    const runtimeOptions = plan.runtime.options;
    try {
      await ctx.client.withLease(ctx.lease).call("containers.Create", {
        container: {
          id: options.id,
          labels: containerLabels(plan, options),
          image: plan.image.name,
          runtime: {
            name: plan.runtime.name,
            ...(runtimeOptions ? { options: { typeUrl: runtimeOptions.typeUrl, value: Buffer.from(runtimeOptions.valueBase64, "base64") } } : {}),
          },
          spec: { typeUrl: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(spec)) },
          snapshotter: plan.snapshotter,
          snapshotKey: options.id,
        },
      });
    } catch (err) {
      if (!isContainerdError(err, "already-exists")) throw err;
      throw new RestoreError("id-in-use", `id ${options.id} is in use: container ${options.id} already exists`, { subject: "id", cause: err });
    }
  },
  async undo(ctx) {
    await unlessNotFound(ctx.client.call("containers.Delete", { id: ctx.options.id }));
  },
};
