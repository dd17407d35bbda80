/** The CheckpointCopy dynamic provider: a checkpoint copied from one daemon to another. */
import { RestoreError, copyCheckpoint, imageDigest, removeImage } from "../index";
import { withClient } from "./daemon";
import { copyInputsSchema, isUnknown, sameValue, unknownKeys, validate, type CheckFailure, type CopyInputs } from "./inputs";

type Raw = Record<string, unknown>;

export interface CopyOutputs extends CopyInputs {
  targetRef: string;
  digest: string;
  bytesMoved: number;
  blobsCopied: number;
}

/** Validates both ends and (source reachable) resolves the source ref, so a moved tag is a change. */
export async function check(_olds: Raw, news: Raw): Promise<{ inputs?: Raw; failures?: CheckFailure[] }> {
  const { inputs, failures } = validate(copyInputsSchema, news, ["source", "target"]);
  if (!inputs) return { failures };
  if (unknownKeys(news as Raw).has("source")) return { inputs };
  try {
    const digest = await withClient(inputs.source, (client) => imageDigest(client, inputs.source.ref));
    if (!digest) return { failures: [{ property: "source.ref", reason: `checkpoint image ${inputs.source.ref} not found on the source daemon (namespace ${inputs.source.namespace})` }] };
    return { inputs: { ...inputs, sourceDigest: digest } };
  } catch (err) {
    if (err instanceof RestoreError) return { failures: [{ property: "source.address", reason: err.message }] };
    throw err;
  }
}

const endpoint = (d: Raw | undefined) => JSON.stringify(d ? { a: d.address, n: d.namespace, r: d.ref } : null);

export async function diff(_id: string, olds: Raw, news: Raw) {
  const replaces = [
    ...(isUnknown(news.source) || endpoint(olds.source as Raw) !== endpoint(news.source as Raw) ? ["source"] : []),
    ...(isUnknown(news.target) || endpoint(olds.target as Raw) !== endpoint(news.target as Raw) ? ["target"] : []),
    ...(news.sourceDigest !== undefined && olds.digest !== news.sourceDigest ? ["sourceDigest"] : []),
  ];
  const credentials = !sameValue([olds.source, olds.target], [news.source, news.target]);
  // overwrite only matters when a copy is made: in place.
  const overwrite = !sameValue(olds.overwrite ?? false, news.overwrite ?? false);
  return { changes: replaces.length > 0 || credentials || overwrite, replaces, deleteBeforeReplace: false };
}

export async function create(news: Raw): Promise<{ id: string; outs: CopyOutputs }> {
  const inputs = news as unknown as CopyInputs;
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
export async function read(id: string, props: Raw): Promise<{ id?: string; props?: Raw }> {
  const olds = props as unknown as CopyOutputs;
  const digest = await withClient(olds.target, (client) => imageDigest(client, olds.targetRef));
  return digest ? { id, props: { ...olds, digest } } : {};
}

export async function update(_id: string, olds: Raw, news: Raw) {
  return { outs: { ...olds, source: news.source, target: news.target, overwrite: news.overwrite } };
}

/**
 * Delete removes the checkpoint image on the target (the base image stays: others
 * may use it) — unless it now names another checkpoint: a replacement copy to the
 * same ref is created before this one is deleted.
 */
export async function remove(_id: string, props: Raw): Promise<void> {
  const olds = props as unknown as CopyOutputs;
  await withClient(olds.target, async (client) => {
    if ((await imageDigest(client, olds.targetRef)) === olds.digest) await removeImage(client, olds.targetRef);
  });
}
