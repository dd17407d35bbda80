/** The ContainerCheckpoint dynamic provider: a checkpoint image made from a running container. */
import { RestoreError, checkpointContainer, imageDigest, inspect, removeImage } from "../index";
import { withClient } from "./daemon";
import { autoName, checkpointRefRule, seedOf } from "./naming";
import { z } from "zod";
import { checkedCheckpointInputsSchema, checkpointInputsSchema, daemonStateSchema, isUnknown, parseProperties, sameValue, validate, type CheckFailure, type CheckedCheckpointInputs, type CheckpointInputs, type PropertyBag } from "./inputs";

export type CheckpointOutputs = CheckedCheckpointInputs & {
  ref: string;
  digest: string;
  criuImageBytes: number;
  checkpointedAt: string;
  durationMs: number;
};

/** What read and delete need of a ContainerCheckpoint's state. */
const stateSchema = daemonStateSchema.extend({ ref: z.string() });

/**
 * `checkpoint/<resource name>:<8 hex>` unless the user named it, the hex hashed from
 * the owner and every input whose change replaces the checkpoint: the same in
 * preview and up, new for a replacement.
 */
function refFor(inputs: CheckedCheckpointInputs): string {
  if (inputs.ref !== undefined) return inputs.ref;
  const seed = seedOf(inputs.owner ?? inputs.resourceName, inputs.containerId, inputs.address, inputs.namespace, inputs.leaveRunning, inputs.includeRw);
  return autoName(inputs.resourceName, undefined, checkpointRefRule, seed);
}

/**
 * Validates, and (daemon reachable) checks that the container runs. A generated ref is
 * not an input: create names the image, so during preview `ref` is unknown, and a
 * resource that uses it waits instead of looking up an image that does not exist yet.
 */
export async function check(olds: PropertyBag, news: PropertyBag): Promise<{ inputs?: PropertyBag; failures?: CheckFailure[] }> {
  const { inputs, failures } = validate(checkpointInputsSchema, news);
  if (!inputs) return { failures };
  const checked = { ...inputs, autoRef: inputs.ref === undefined };
  if (["containerId", "address", "namespace", "tls", "insecure", "ref"].some((k) => isUnknown(inputs[k as keyof CheckpointInputs]))) return { inputs: checked };
  // An existing checkpoint stays valid when its container stopped or went away (e.g. after a migration).
  const sameRef = inputs.ref === undefined ? olds.autoRef === true : olds.ref === inputs.ref;
  const existing = olds.ref !== undefined && sameRef && (["containerId", "address", "namespace"] as const).every((k) => olds[k] === inputs[k]);
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
  const replaces = REPLACE_KEYS.filter((k) => {
    // Generated before and now: the name follows the other keys (it is hashed from them).
    if (k === "ref" && olds.autoRef === true && news.autoRef === true) return false;
    return isUnknown(news[k]) || !sameValue(olds[k], news[k]);
  });
  const updates = ["tls", "insecure"].filter((k) => !sameValue(olds[k], news[k]));
  return { changes: replaces.length + updates.length > 0, replaces, deleteBeforeReplace: news.autoRef === false };
}

export async function create(news: PropertyBag): Promise<{ id: string; outs: CheckpointOutputs }> {
  const given = parseProperties(checkedCheckpointInputsSchema, news, "create");
  const inputs = { ...given, ref: refFor(given) };
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
