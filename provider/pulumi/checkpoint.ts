/** The ContainerCheckpoint dynamic provider: a checkpoint image made from a running container. */
import { RestoreError, checkpointContainer, imageDigest, inspect, removeImage } from "../index";
import { withClient } from "./daemon";
import { autoName, checkpointRefRule } from "./naming";
import { z } from "zod";
import { checkedCheckpointInputsSchema, checkpointInputsSchema, daemonStateSchema, isUnknown, parseProperties, sameValue, validate, type CheckFailure, type CheckedCheckpointInputs, type CheckpointInputs, type PropertyBag } from "./inputs";

export type CheckpointOutputs = CheckedCheckpointInputs & {
  digest: string;
  criuImageBytes: number;
  checkpointedAt: string;
  durationMs: number;
};

/** What read and delete need of a ContainerCheckpoint's state. */
const stateSchema = daemonStateSchema.extend({ ref: z.string() });

/** `checkpoint/<resource name>:<random>` unless the user named it; kept for the same resource. */
function refFor(inputs: CheckpointInputs, olds: Partial<CheckpointInputs>): string {
  if (inputs.ref !== undefined) return inputs.ref;
  const kept = olds.resourceName === inputs.resourceName && (olds as { autoRef?: boolean }).autoRef ? olds.ref : undefined;
  return autoName(inputs.resourceName, kept, checkpointRefRule);
}

/** Validates, names the image, and (daemon reachable) checks that the container runs. */
export async function check(olds: PropertyBag, news: PropertyBag): Promise<{ inputs?: PropertyBag; failures?: CheckFailure[] }> {
  const { inputs, failures } = validate(checkpointInputsSchema, news);
  if (!inputs) return { failures };
  const checked = { ...inputs, ref: refFor(inputs, olds as Partial<CheckpointInputs>), autoRef: inputs.ref === undefined };
  if (["containerId", "address", "namespace", "tls", "insecure", "ref"].some((k) => isUnknown(inputs[k as keyof CheckpointInputs]))) return { inputs: checked };
  // An existing checkpoint stays valid when its container stopped or went away (e.g. after a migration).
  const existing = olds.ref === checked.ref && (["containerId", "address", "namespace"] as const).every((k) => olds[k] === inputs[k]);
  if (existing) return { inputs: checked };
  try {
    const failures = await withClient(inputs, async (client): Promise<CheckFailure[]> => {
      const state = await inspect(client, inputs.containerId);
      if (!state || state.status !== "running") {
        const why = state ? `is ${state.status}` : "does not exist";
        return [{ property: "containerId", reason: `container ${inputs.containerId} ${why} in namespace ${inputs.namespace}: only a running container can be checkpointed` }];
      }
      return [];
    });
    if (failures.length) return { failures };
  } catch (err) {
    if (err instanceof RestoreError) return { failures: [{ property: "address", reason: err.message }] };
    throw err;
  }
  return { inputs: checked };
}

const REPLACE_KEYS = ["containerId", "ref", "address", "namespace", "leaveRunning", "includeRw"] as const;

export async function diff(_id: string, olds: PropertyBag, news: PropertyBag) {
  const replaces = REPLACE_KEYS.filter((k) => isUnknown(news[k]) || !sameValue(olds[k], news[k]));
  const updates = ["tls", "insecure"].filter((k) => !sameValue(olds[k], news[k]));
  return { changes: replaces.length + updates.length > 0, replaces, deleteBeforeReplace: news.autoRef === false };
}

export async function create(news: PropertyBag): Promise<{ id: string; outs: CheckpointOutputs }> {
  const inputs = parseProperties(checkedCheckpointInputsSchema, news, "create");
  const result = await withClient(inputs, (client) =>
    checkpointContainer(client, inputs.containerId, { ref: inputs.ref, leaveRunning: inputs.leaveRunning, includeRw: inputs.includeRw }),
  );
  return {
    id: `${inputs.namespace}/${result.ref}`,
    outs: { ...inputs, ref: result.ref, digest: result.digest, criuImageBytes: result.criuImageBytes, checkpointedAt: result.checkpointedAt, durationMs: Math.round(result.durationMs) },
  };
}

/** Refresh: an image that is gone leaves the state; a re-tagged one shows its new digest. */
export async function read(id: string, props: PropertyBag): Promise<{ id?: string; props?: PropertyBag }> {
  const olds = parseProperties(stateSchema, props, "refresh");
  const digest = await withClient(olds, (client) => imageDigest(client, olds.ref));
  if (!digest) return {};
  return { id, props: { ...props, digest } };
}

export async function update(_id: string, olds: PropertyBag, news: PropertyBag): Promise<{ outs: PropertyBag }> {
  const { tls, insecure } = parseProperties(checkedCheckpointInputsSchema, news, "update");
  return { outs: { ...olds, tls, insecure } };
}

/** Delete removes the image record; its content goes to containerd's GC. Use `retainOnDelete` to keep it. */
export async function remove(_id: string, props: PropertyBag): Promise<void> {
  const olds = parseProperties(stateSchema, props, "delete");
  await withClient(olds, (client) => removeImage(client, olds.ref));
}
