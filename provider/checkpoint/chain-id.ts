import { digestOf } from "../containerd";

/**
 * The OCI image-spec ChainID of a layer stack: containerd commits each unpacked
 * layer snapshot under this name, so the top one is a restore's snapshot parent.
 * chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " + diff[i]). Empty for no layers.
 */
export function chainId(diffIds: readonly string[]): string {
  let chain = "";
  for (const diffId of diffIds) chain = chain ? digestOf(`${chain} ${diffId}`) : diffId;
  return chain;
}
