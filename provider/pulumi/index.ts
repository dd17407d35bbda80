/**
 * The dynamic providers, by resource kind. Loaded inside Pulumi's provider
 * process by sdk/provider.ts; each kind maps Pulumi's lifecycle onto the library.
 */
import * as checkpoint from "./checkpoint";
import * as copy from "./copy";
import * as restored from "./restored-container";

const lifecycle = (m: typeof restored | typeof checkpoint | typeof copy) => ({
  check: m.check,
  diff: m.diff,
  create: m.create,
  read: m.read,
  update: m.update,
  delete: m.remove,
});

export const providers = {
  RestoredContainer: lifecycle(restored),
  ContainerCheckpoint: lifecycle(checkpoint),
  CheckpointCopy: lifecycle(copy),
};

export type ProviderKind = keyof typeof providers;
