import type * as pulumi from "@pulumi/pulumi";

/**
 * The serialized dynamic provider. Pulumi stores this object's code in state and
 * runs it in the provider process, so it stays tiny: each method loads the real
 * implementation there. By package name first (works wherever the stack's
 * project has this package installed, and survives the project moving); by the
 * absolute path captured here otherwise (this repo's own tests).
 */
const IMPLEMENTATION_PATH = require.resolve("../provider/pulumi/dynamic");
const PACKAGE_ENTRY = "pulumi-containerd-restore/dynamic-provider";

function implementation(): typeof import("../provider/pulumi/dynamic") {
  try {
    return require(PACKAGE_ENTRY);
  } catch (err) {
    if ((err as { code?: string }).code !== "MODULE_NOT_FOUND" || !String((err as Error).message).includes(PACKAGE_ENTRY)) throw err;
    return require(IMPLEMENTATION_PATH);
  }
}

class RestoredContainerProvider implements pulumi.dynamic.ResourceProvider {
  check(olds: any, news: any) {
    return implementation().check(olds, news);
  }
  diff(id: string, olds: any, news: any) {
    return implementation().diff(id, olds, news);
  }
  create(inputs: any) {
    return implementation().create(inputs);
  }
  read(id: string, props: any) {
    return implementation().read(id, props);
  }
  update(id: string, olds: any, news: any) {
    return implementation().update(id, olds, news);
  }
  delete(id: string, props: any) {
    return implementation().remove(id, props);
  }
}

/** One instance: serialized once per process. */
export const restoredContainerProvider = new RestoredContainerProvider();
