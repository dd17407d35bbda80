/**
 * The RestoredContainer dynamic provider: Pulumi's resource lifecycle mapped onto
 * the restore library. Loaded by path inside the provider process (see
 * sdk/provider.ts); plain objects in, plain objects out, no gRPC here.
 */
import { z } from "zod";
import {
  Label,
  RestoreError,
  connect,
  describeRestore,
  inspect,
  planRestore,
  restore,
  teardown,
  updateLabels,
  type ContainerState,
  type RestorePlan,
  type StepDescription,
} from "../index";
import type { SecuritySummary } from "../policy";
import { checkedInputsSchema, containerIdFor, daemonStateSchema, isUnknown, parseProperties, sameValue, validateInputs, type CheckFailure, type CheckedInputs, type Inputs, type PropertyBag } from "./inputs";
import { withClient } from "./daemon";
import { MANAGED_BY } from "../labels";

/** Outputs: the checked inputs (diff gets old outputs, not old inputs) plus what the daemon says. */
export type Outputs = CheckedInputs & {
  containerId: string;
  pid: number;
  status: string;
  exitStatus?: number;
  checkpointDigest: string;
  checkpointFormat: string;
  imageName: string;
  snapshotter: string;
  snapshotKey: string;
  runtime: string;
  criuImageBytes: number;
  restoredAt: string;
  restoreDurationMs: number;
  plan: StepDescription[];
  /** What the checkpoint was granted on the host (the restore policy's summary). */
  security: SecuritySummary;
  /** The daemon's version when it restored the container, e.g. `v2.4.2`. */
  daemonVersion: string;
};

/** Which input a restore error is about. */
function propertyOf(err: RestoreError): string {
  if (err.code === "daemon-unreachable" || err.code === "unsupported-daemon-version") return "address";
  if (err.code === "invalid-allowance") return err.subject === "privileged" ? "privileged" : "allow";
  switch (err.subject) {
    case "id":
      return "name";
    case "live":
    case "restoreRw":
    case "stopSignal":
    case "labels":
    case "logPath":
    case "namespace":
      return err.subject;
    default:
      return "checkpoint";
  }
}

/** Inputs the plan or the connection depends on: while one is unknown (preview), the daemon is not asked. */
const DECIDE_LATER = ["checkpoint", "address", "namespace", "tls", "insecure", "name", "live", "restoreRw", "logPath", "stopSignal", "allow", "privileged"] as const;

/**
 * Validates inputs, names the container, and (when every input it needs is known)
 * resolves the checkpoint against the daemon and plans the restore, so `pulumi
 * preview` shows the plan and fails before anything runs. Read-only.
 */
export async function check(olds: PropertyBag, news: PropertyBag): Promise<{ inputs?: PropertyBag; failures?: CheckFailure[] }> {
  const { inputs, failures } = validateInputs(news);
  if (!inputs) return { failures };
  // A user-given name is an input, known in preview; an auto-name is create's (unknown in preview).
  const checked: CheckedInputs = { ...inputs, ...(inputs.name !== undefined ? { containerId: inputs.name } : {}) };
  const waiting = DECIDE_LATER.filter((key) => isUnknown(inputs[key]));
  if (waiting.length > 0) {
    // Preview of a chained resource (e.g. the checkpoint comes from a copy made in this update):
    // nothing to ask the daemon yet; the plan says what it waits for.
    return { inputs: { ...checked, plan: [{ step: "restore", waitsFor: waiting.join(", "), note: "planned when these are known (during up)" }] } };
  }
  try {
    const { plan, steps } = await withClient(inputs, async (client) => {
      const plan = await planRestore(client, inputs.checkpoint, inputs);
      const id = containerIdFor(inputs, plan.checkpoint.digest);
      await assertNameFree(client, { ...checked, containerId: id }, olds);
      const labels = isUnknown(inputs.labels) ? {} : inputs.labels;
      return { plan, steps: describeRestore(plan, { id, ...inputs, labels }, inputs.namespace) };
    });
    return { inputs: { ...checked, checkpointDigest: plan.checkpoint.digest, plan: steps, security: plan.security } };
  } catch (err) {
    if (!(err instanceof RestoreError)) throw err;
    // The container exists already: a checkpoint removed after the restore is no reason to fail.
    const existing = olds.checkpointDigest && olds.checkpoint === inputs.checkpoint && olds.name === inputs.name;
    if (GONE_AFTER_RESTORE.has(err.code) && existing) {
      return { inputs: { ...checked, checkpointDigest: olds.checkpointDigest, plan: olds.plan, security: olds.security } };
    }
    // A narrower policy does not stop a running container: it applies to the next restore (a replacement).
    if (err.code === "policy-violation" && existing) {
      return { inputs: { ...checked, checkpointDigest: olds.checkpointDigest, plan: olds.plan, security: olds.security, refusedOnNextRestore: err.violations.map((v) => `${v.path}: ${v.grant}`) } };
    }
    return { failures: [{ property: propertyOf(err), reason: err.message }] };
  }
}

/** Plan failures that only mean the checkpoint (or its base image) was cleaned up since the restore. */
const GONE_AFTER_RESTORE = new Set(["checkpoint-not-found", "base-image-missing", "base-image-not-unpacked"]);

/** The owner label of this resource's containers: replacements may reuse a fixed name. */
function ownerOf(inputs: Pick<Inputs, "resourceName" | "owner">): string {
  return `pulumi:${inputs.owner ?? inputs.resourceName}`;
}

/** A new resource must not take a container id that something else already uses. */
async function assertNameFree(client: ReturnType<typeof connect>, checked: CheckedInputs & { containerId: string }, olds: PropertyBag): Promise<void> {
  if (olds.containerId === checked.containerId) return; // ours, from an earlier run
  const existing = await inspect(client, checked.containerId);
  // On a replacement the engine checks again without olds: the container it replaces is ours.
  if (existing && existing.labels[Label.owner] !== ownerOf(checked)) {
    throw new RestoreError("id-in-use", `a container named ${checked.containerId} already exists in namespace ${checked.namespace}: choose another name`, {
      subject: "id",
    });
  }
}

const REPLACE_KEYS = ["checkpointDigest", "name", "address", "namespace", "live", "restoreRw", "logPath"] as const;
// tls and insecure: new credentials must reach the state, or delete would use stale ones.
// allow and privileged: checked on the next restore, never a reason to restart a running container.
const UPDATE_KEYS = ["checkpoint", "labels", "stopSignal", "stopTimeoutSeconds", "tls", "insecure", "allow", "privileged"] as const;

/**
 * Replace when the container would differ (new checkpoint digest, id, daemon,
 * mode) or is no longer running; update in place for labels and teardown settings.
 */
export async function diff(_id: string, olds: PropertyBag, news: PropertyBag) {
  const replaces: string[] = REPLACE_KEYS.filter((key) => {
    if (key === "checkpointDigest" && news[key] === undefined) return isUnknown(news.checkpoint) || olds.checkpoint !== news.checkpoint;
    return isUnknown(news[key]) || !sameValue(olds[key], news[key]);
  });
  // A container that died (or never came up) is restored again.
  if (olds.status !== undefined && olds.status !== "running") replaces.push("status");
  const updates = UPDATE_KEYS.filter((key) => !sameValue(olds[key], news[key]));
  // The dynamic provider host forwards no detailed diff: say why in the output instead.
  if (replaces.length > 0) warn(`RestoredContainer ${String(news.resourceName ?? olds.resourceName)} is replaced: ${replaceReasons(olds, news, replaces).join("; ")}`);
  return {
    changes: replaces.length > 0 || updates.length > 0,
    replaces,
    // Ids collide when the user fixed the name, or when the replacement's auto-name is the old one's
    // (only the status changed: a dead container restored again): the old container must go first.
    deleteBeforeReplace: (news.name !== undefined && !isUnknown(news.name)) || (replaces.length > 0 && nextAutoName(news) === olds.containerId),
  };
}

const shown = (value: unknown): string => (value === undefined || value === null ? "(none)" : isUnknown(value) ? "(known during up)" : typeof value === "string" ? value : JSON.stringify(value));

/** Why each replacing key replaces, in words: `checkpoint digest changed sha256:… → sha256:…`, `container is not running: stopped, exit 137`. */
export function replaceReasons(olds: PropertyBag, news: PropertyBag, replaces: string[]): string[] {
  return replaces.map((key) => {
    if (key === "status") return `container is not running: ${String(olds.status)}${olds.exitStatus !== undefined ? `, exit ${String(olds.exitStatus)}` : ""}`;
    if (key === "checkpointDigest") {
      if (news.checkpointDigest === undefined) return `checkpoint changed ${shown(olds.checkpoint)} → ${shown(news.checkpoint)} (its digest is resolved during up)`;
      return `checkpoint digest changed ${shown(olds.checkpointDigest)} → ${shown(news.checkpointDigest)}`;
    }
    return `${key} changed ${shown(olds[key])} → ${shown(news[key])}`;
  });
}

/** The auto-name a replacement would get, when check resolved everything it depends on. */
function nextAutoName(news: PropertyBag): string | undefined {
  if (news.name !== undefined || typeof news.checkpointDigest !== "string") return undefined;
  const parsed = checkedInputsSchema.safeParse(news);
  return parsed.success ? containerIdFor(parsed.data, news.checkpointDigest) : undefined;
}

function outputsFrom(inputs: CheckedInputs & { containerId: string }, plan: RestorePlan, state: Pick<ContainerState, "pid" | "status">, extra: Partial<Outputs>): Outputs {
  return {
    ...inputs,
    pid: state.pid,
    status: state.status,
    checkpointDigest: plan.checkpoint.digest,
    checkpointFormat: plan.checkpoint.format,
    imageName: plan.image.name,
    snapshotter: plan.snapshotter,
    snapshotKey: inputs.containerId,
    runtime: plan.runtime.name,
    criuImageBytes: plan.criuImage?.size ?? 0,
    daemonVersion: plan.daemonVersion,
    restoredAt: "",
    restoreDurationMs: 0,
    plan: describeRestore(plan, { id: inputs.containerId, ...inputs }, inputs.namespace),
    security: plan.security,
    ...extra,
  };
}

/** Restores the container; a failed restore leaves nothing on the daemon and nothing in state. */
export async function create(news: PropertyBag): Promise<{ id: string; outs: Outputs }> {
  const given = parseProperties(checkedInputsSchema, news, "create");
  return withClient(given, async (client) => {
    const plan = await planRestore(client, given.checkpoint, given);
    const inputs = { ...given, containerId: given.containerId ?? containerIdFor(given, plan.checkpoint.digest) };
    const result = await restore(client, plan, {
      id: inputs.containerId,
      live: inputs.live,
      restoreRw: inputs.restoreRw,
      labels: inputs.labels,
      stopSignal: inputs.stopSignal,
      logPath: inputs.logPath,
      owner: ownerOf(inputs),
      allow: inputs.allow,
      privileged: inputs.privileged,
    }).catch((err: unknown) => {
      // Undo could not finish (e.g. the daemon went away): record the id with an init
      // error, so the next `up` replaces it and delete cleans up whatever is left.
      if (err instanceof RestoreError && err.cleanupErrors.length > 0) {
        throw { message: err.message, id: inputs.containerId, properties: { ...news, containerId: inputs.containerId, status: "failed", pid: 0 }, reasons: [err.message] };
      }
      throw err;
    });
    const state = (await inspect(client, result.id)) ?? { pid: result.pid, status: "running" as const };
    const outs = outputsFrom(inputs, plan, state, {
      restoredAt: result.restoredAt,
      restoreDurationMs: Math.round(result.durationMs),
      ...("exitStatus" in state && state.exitStatus !== undefined ? { exitStatus: state.exitStatus } : {}),
    });
    if (state.status !== "running") {
      // Up but not healthy: record it (initErrors) so the next `up` restores it again.
      throw { message: `container ${result.id} was restored but is ${state.status}`, id: result.id, properties: { ...news, ...outs }, reasons: [`task is ${state.status}`] };
    }
    return { id: result.id, outs };
  });
}

/** What read and delete need of a RestoredContainer's state: the daemon, teardown settings, and whose container it is. */
const stateSchema = daemonStateSchema.extend({
  status: z.string().optional(),
  stopSignal: z.string().optional(),
  stopTimeoutSeconds: z.number().default(10),
  resourceName: z.string(),
  owner: z.string().optional(),
  checkpointDigest: z.string().optional(),
  /** Set by `RestoredContainer.get`: adopt a container this package restored (any stack, any resource). */
  adopt: z.boolean().optional(),
});

/** What update keeps of the old state. */
const keptStateSchema = z.object({ containerId: z.string(), checkpointDigest: z.string().optional() }).loose();

/**
 * Why the container named `state.id` is not this resource's: not restored by this
 * project, owned by another stack or resource (the owner label), or restored from
 * another checkpoint than the one in state. Undefined when it is ours.
 */
function foreignReason(state: ContainerState, olds: Pick<Inputs, "owner" | "resourceName"> & { checkpointDigest?: string }): string | undefined {
  const { labels } = state;
  if (labels[Label.managedBy] !== MANAGED_BY) return `container ${state.id} was not restored by pulumi-containerd-restore (no ${Label.managedBy} label)`;
  if (labels[Label.owner] !== ownerOf(olds)) return `container ${state.id} belongs to ${JSON.stringify(labels[Label.owner] ?? "(no owner label)")}, not to ${JSON.stringify(ownerOf(olds))}`;
  if (olds.checkpointDigest && state.checkpointDigest !== olds.checkpointDigest) {
    return `container ${state.id} was restored from checkpoint ${state.checkpointDigest ?? "(unknown)"}, not ${olds.checkpointDigest} as this resource's was`;
  }
  return undefined;
}

/**
 * A warning in the engine's output. The dynamic provider process has no engine
 * connection for `log.warn`, which then writes `warning: …` to stderr; the engine
 * passes a dynamic provider's stderr through as diagnostics.
 */
function warn(message: string): void {
  // Loaded here, not at the top: the library's tests import this file without Pulumi running.
  void (require("@pulumi/pulumi") as typeof import("@pulumi/pulumi")).log.warn(message);
}

/** Refresh: a vanished container leaves the state; a stopped one shows its status and exit status. */
export async function read(id: string, props: PropertyBag): Promise<{ id?: string; props?: PropertyBag }> {
  const olds = parseProperties(stateSchema, props, "refresh");
  // A restore that could not clean up stays failed, whatever is left of it (maybe only a lease and a
  // snapshot, no container): the next up replaces it, and its teardown clears the debris.
  if (olds.status === "failed") return { id, props };
  const state = await withClient(olds, (client) => inspect(client, id));
  if (!state && olds.adopt) throw new RestoreError("invalid-option", `RestoredContainer.get: no container ${id} in namespace ${olds.namespace} at ${olds.address}`, { subject: "id" });
  if (!state) return {};
  if (olds.adopt) {
    // get: read-only, so any container this package restored may be read; never one made otherwise.
    if (state.labels[Label.managedBy] !== MANAGED_BY) {
      throw new RestoreError("invalid-option", `RestoredContainer.get: container ${id} was not restored by pulumi-containerd-restore (no ${Label.managedBy} label)`, { subject: "id" });
    }
    // The inputs `get` was not given come from the container's labels too.
    const inputs = { ...(state.checkpointRef ? { checkpoint: state.checkpointRef } : {}), ...(state.labels[Label.mode] ? { live: state.labels[Label.mode] === "live" } : {}) };
    return { id, props: { ...inputs, ...props, ...recorded(state) } };
  }
  // Same name, someone else's container (another stack's, or made by hand): ours is gone; never adopt theirs.
  const foreign = foreignReason(state, olds);
  if (foreign) {
    warn(`RestoredContainer ${olds.resourceName}: ${foreign}; this resource's container is gone, and ${id} is left as it is`);
    return {};
  }
  const { exitStatus: _previous, ...rest } = props;
  return { id, props: { ...rest, ...recorded(state) } };
}

/** The outputs the daemon records for a container (its labels, container record and task): what a refresh or a `get` fills. */
function recorded(state: ContainerState): PropertyBag {
  const { labels } = state;
  return {
    containerId: state.id,
    status: state.status,
    pid: state.pid,
    ...(state.exitStatus !== undefined ? { exitStatus: state.exitStatus } : {}),
    ...(state.checkpointDigest ? { checkpointDigest: state.checkpointDigest } : {}),
    ...(labels[Label.checkpointFormat] ? { checkpointFormat: labels[Label.checkpointFormat] } : {}),
    imageName: state.image,
    snapshotter: state.snapshotter,
    snapshotKey: state.snapshotKey,
    runtime: state.runtime,
  };
}

/** In place: labels and stop signal on the container; teardown settings in state. */
export async function update(id: string, olds: PropertyBag, news: PropertyBag): Promise<{ outs: PropertyBag }> {
  const previous = parseProperties(keptStateSchema, olds, "update (state)");
  const inputs = parseProperties(checkedInputsSchema, news, "update");
  await withClient(inputs, (client) => updateLabels(client, id, inputs.labels, inputs.stopSignal));
  // The parsed inputs hold no plan, security or refusedOnNextRestore (check's, not the user's):
  // the running container keeps what it was granted; a changed policy applies to the next restore.
  return { outs: { ...olds, ...inputs, containerId: previous.containerId, checkpointDigest: previous.checkpointDigest } };
}

/**
 * Destroy: the idempotent teardown, of this resource's container only. A container
 * of the same name that another stack or resource owns (or that this project did
 * not restore) is left running, with a warning naming its owner.
 */
export async function remove(id: string, props: PropertyBag): Promise<void> {
  const olds = parseProperties(stateSchema, props, "delete");
  try {
    await withClient(olds, (client) =>
      teardown(client, id, {
        graceMs: olds.stopTimeoutSeconds * 1000,
        stopSignal: olds.stopSignal,
        owner: ownerOf(olds),
        ...(olds.checkpointDigest ? { checkpointDigest: olds.checkpointDigest } : {}),
      }),
    );
  } catch (err) {
    if (!(err instanceof RestoreError && err.code === "not-owned")) throw err;
    warn(`RestoredContainer ${olds.resourceName}: ${err.message.replace(/: teardown left it as it is; pass force: true.*$/, "")}; it is left running, and this resource is removed from the stack`);
  }
}
