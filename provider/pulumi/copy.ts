/** The CheckpointCopy dynamic provider: a checkpoint copied from one daemon to another. */
import { RestoreError, copyCheckpoint, imageDigest, removeImage } from "../index";
import { withClient } from "./daemon";
import { z } from "zod";
import { checkedCopyInputsSchema, copyInputsSchema, daemonStateSchema, isUnknown, parseProperties, sameValue, unknownKeys, validate, type CheckFailure, type CheckedCopyInputs, type PropertyBag } from "./inputs";

export type CopyOutputs = CheckedCopyInputs & {
  targetRef: string;
  digest: string;
  bytesMoved: number;
  blobsCopied: number;
};

/** What read and delete need of a CheckpointCopy's state. */
const stateSchema = z.object({ target: daemonStateSchema, targetRef: z.string(), digest: z.string() }).loose();

/** Validates both ends and (source reachable) resolves the source ref, so a moved tag is a change. */
export async function check(_olds: PropertyBag, news: PropertyBag): Promise<{ inputs?: PropertyBag; failures?: CheckFailure[] }> {
  const { inputs, failures } = validate(copyInputsSchema, news, ["source", "target"]);
  if (!inputs) return { failures };
  if (unknownKeys(news as PropertyBag).has("source")) return { inputs };
  try {
    const digest = await withClient(inputs.source, (client) => imageDigest(client, inputs.source.ref));
    if (!digest) return { failures: [{ property: "source.ref", reason: `checkpoint image ${inputs.source.ref} not found on the source daemon (namespace ${inputs.source.namespace})` }] };
    return { inputs: { ...inputs, sourceDigest: digest } };
  } catch (err) {
    if (err instanceof RestoreError) return { failures: [{ property: "source.address", reason: err.message }] };
    throw err;
  }
}

const endpoint = (d: PropertyBag | undefined) => JSON.stringify(d ? { a: d.address, n: d.namespace, r: d.ref } : null);

export async function diff(_id: string, olds: PropertyBag, news: PropertyBag) {
  const replaces = [
    ...(isUnknown(news.source) || endpoint(olds.source as PropertyBag) !== endpoint(news.source as PropertyBag) ? ["source"] : []),
    ...(isUnknown(news.target) || endpoint(olds.target as PropertyBag) !== endpoint(news.target as PropertyBag) ? ["target"] : []),
    ...(news.sourceDigest !== undefined && olds.digest !== news.sourceDigest ? ["sourceDigest"] : []),
  ];
  const credentials = !sameValue([olds.source, olds.target], [news.source, news.target]);
  // overwrite only matters when a copy is made: in place.
  const overwrite = !sameValue(olds.overwrite ?? false, news.overwrite ?? false);
  return { changes: replaces.length > 0 || credentials || overwrite, replaces, deleteBeforeReplace: false };
}

export async function create(news: PropertyBag): Promise<{ id: string; outs: CopyOutputs }> {
  const inputs = parseProperties(checkedCopyInputsSchema, news, "create");
  const targetRef = inputs.target.ref ?? inputs.source.ref;
  const result = await withClient(inputs.source, (source) =>
    withClient(inputs.target, (target) => copyCheckpoint(source, target, inputs.source.ref, {
      targetRef,
      overwrite: inputs.overwrite,
      // The replacement of this copy (create-before-delete, same ref) may move the ref its predecessor wrote.
      owner: `pulumi:${inputs.owner ?? inputs.resourceName}`,
    })),
  );
  return {
    id: `${inputs.target.address}/${inputs.target.namespace}/${targetRef}`,
    outs: { ...inputs, targetRef, digest: result.digest, bytesMoved: result.bytesMoved, blobsCopied: result.blobsCopied },
  };
}

/** Refresh: a copy whose image is gone from the target leaves the state. */
export async function read(id: string, props: PropertyBag): Promise<{ id?: string; props?: PropertyBag }> {
  const olds = parseProperties(stateSchema, props, "refresh");
  const digest = await withClient(olds.target, (client) => imageDigest(client, olds.targetRef));
  return digest ? { id, props: { ...props, digest } } : {};
}

export async function update(_id: string, olds: PropertyBag, news: PropertyBag): Promise<{ outs: PropertyBag }> {
  const { source, target, overwrite } = parseProperties(checkedCopyInputsSchema, news, "update");
  return { outs: { ...olds, source, target, overwrite } };
}

/**
 * Delete removes the checkpoint image on the target (the base image stays: others
 * may use it) — unless it now names another checkpoint: a replacement copy to the
 * same ref is created before this one is deleted.
 */
export async function remove(_id: string, props: PropertyBag): Promise<void> {
  const olds = parseProperties(stateSchema, props, "delete");
  await withClient(olds.target, async (client) => {
    if ((await imageDigest(client, olds.targetRef)) === olds.digest) await removeImage(client, olds.targetRef);
  });
}
