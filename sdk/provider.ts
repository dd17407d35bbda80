import type * as pulumi from "@pulumi/pulumi";
import type { PropertyBag, ProviderKind } from "../provider/pulumi/index";

/**
 * The serialized dynamic providers. Pulumi stores this code in state and runs it
 * in the provider process, so it stays tiny: each method loads the real
 * implementation there. By package name first (works wherever the stack's
 * project has this package installed, and survives the project moving); by the
 * absolute path captured here otherwise (this repo's own tests).
 */
const IMPLEMENTATION_PATH = require.resolve("../provider/pulumi/index");
const PACKAGE_ENTRY = "pulumi-containerd-restore/dynamic-provider";

type Implementation = typeof import("../provider/pulumi/index");

/**
 * The implementation, resolved once per provider process: a `require` from the
 * deserialized provider resolves its path anew on every call (stat calls through
 * node_modules), and the engine sends Check and Diff one by one, so it adds up.
 */
function implementation(): Implementation {
  const loaded = Symbol.for("pulumi-containerd-restore.implementation");
  const slot = globalThis as typeof globalThis & { [key: symbol]: Implementation | undefined };
  return (slot[loaded] ??= (() => {
    try {
      return require(PACKAGE_ENTRY) as Implementation;
    } catch (err) {
      if ((err as { code?: string }).code !== "MODULE_NOT_FOUND" || !String((err as Error).message).includes(PACKAGE_ENTRY)) throw err;
      return require(IMPLEMENTATION_PATH) as Implementation;
    }
  })());
}

/** The engine's property bags go to the implementation as they are; it parses them. */
class DynamicProvider implements pulumi.dynamic.ResourceProvider<PropertyBag, PropertyBag> {
  constructor(private readonly kind: ProviderKind) {}
  check(olds: PropertyBag, news: PropertyBag): Promise<pulumi.dynamic.CheckResult<PropertyBag>> {
    return implementation().providers[this.kind].check(olds, news);
  }
  diff(id: string, olds: PropertyBag, news: PropertyBag): Promise<pulumi.dynamic.DiffResult> {
    return implementation().providers[this.kind].diff(id, olds, news);
  }
  create(inputs: PropertyBag): Promise<pulumi.dynamic.CreateResult<PropertyBag>> {
    return implementation().providers[this.kind].create(inputs);
  }
  read(id: string, props: PropertyBag = {}): Promise<pulumi.dynamic.ReadResult<PropertyBag>> {
    return implementation().providers[this.kind].read(id, props);
  }
  update(id: string, olds: PropertyBag, news: PropertyBag): Promise<pulumi.dynamic.UpdateResult<PropertyBag>> {
    return implementation().providers[this.kind].update(id, olds, news);
  }
  delete(id: string, props: PropertyBag): Promise<void> {
    return implementation().providers[this.kind].delete(id, props);
  }
}

/** One instance per kind: each is serialized once per process. */
export const restoredContainerProvider = new DynamicProvider("RestoredContainer");
export const containerCheckpointProvider = new DynamicProvider("ContainerCheckpoint");
export const checkpointCopyProvider = new DynamicProvider("CheckpointCopy");
