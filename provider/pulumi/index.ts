/**
 * The dynamic providers, by resource kind. Loaded inside Pulumi's provider
 * process by sdk/provider.ts; each kind maps Pulumi's lifecycle onto the library.
 */
import * as checkpoint from "./checkpoint";
import * as copy from "./copy";
import type { CheckFailure, PropertyBag } from "./inputs";
import * as restored from "./restored-container";

export type { CheckFailure, PropertyBag };

/**
 * One resource kind's lifecycle as the SDK calls it: the engine's property bags
 * in and out. Each method parses the bag it gets with the kind's schemas.
 */
export interface ResourceLifecycle {
  check(olds: PropertyBag, news: PropertyBag): Promise<{ inputs?: PropertyBag; failures?: CheckFailure[] }>;
  diff(id: string, olds: PropertyBag, news: PropertyBag): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }>;
  create(news: PropertyBag): Promise<{ id: string; outs: PropertyBag }>;
  read(id: string, props: PropertyBag): Promise<{ id?: string; props?: PropertyBag }>;
  update(id: string, olds: PropertyBag, news: PropertyBag): Promise<{ outs: PropertyBag }>;
  delete(id: string, props: PropertyBag): Promise<void>;
}

const lifecycle = (m: typeof restored | typeof checkpoint | typeof copy): ResourceLifecycle => ({
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
} satisfies Record<string, ResourceLifecycle>;

export type ProviderKind = keyof typeof providers;
