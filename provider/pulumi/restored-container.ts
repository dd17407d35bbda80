/**
 * The RestoredContainer dynamic provider: Pulumi's resource lifecycle mapped onto
 * the restore library. Loaded by path inside the provider process (see
 * sdk/provider.ts); plain objects in, plain objects out, no gRPC here.
 */
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
import {
  containerIdFor,
  isUnknown,
  sameValue,
  validateInputs,
  type CheckFailure,
  type CheckedInputs,
  type Inputs,
} from "./inputs";
import { withClient } from "./daemon";

/** Outputs: the checked inputs (diff gets old outputs, not old inputs) plus what the daemon says. */
export interface Outputs extends CheckedInputs {
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
  /** The daemon's version when it restored the container, e.g. `v2.4.2`. */
  daemonVersion: string;
}

type Raw = Record<string, unknown>;

/** Which input a restore error is about. */
function propertyOf(err: RestoreError): string {
  if (err.code === "daemon-unreachable" || err.code === "unsupported-daemon-version") return "address";
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
const DECIDE_LATER = ["checkpoint", "address", "namespace", "tls", "insecure", "name", "live", "restoreRw", "logPath", "stopSignal"] as const;

/**
 * Validates inputs, names the container, and (when every input it needs is known)
 * resolves the checkpoint against the daemon and plans the restore, so `pulumi
 * preview` shows the plan and fails before anything runs. Read-only.
 */
export async function check(olds: Raw, news: Raw): Promise<{ inputs?: Raw; failures?: CheckFailure[] }> {
  const { inputs, failures } = validateInputs(news);
  if (!inputs) return { failures };
  const checked: CheckedInputs = { ...inputs, containerId: containerIdFor(inputs, olds as Partial<CheckedInputs>) };
  if (DECIDE_LATER.some((key) => isUnknown(inputs[key]))) return { inputs: { ...checked } };
  try {
    const { plan, steps } = await withClient(inputs, async (client) => {
      const plan = await planRestore(client, inputs.checkpoint, inputs);
      await assertNameFree(client, checked, olds);
      const labels = isUnknown(inputs.labels) ? {} : inputs.labels;
      return { plan, steps: describeRestore(plan, { id: checked.containerId, ...inputs, labels }, inputs.namespace) };
    });
    return { inputs: { ...checked, checkpointDigest: plan.checkpoint.digest, plan: steps } };
  } catch (err) {
    if (!(err instanceof RestoreError)) throw err;
    // The container exists already: a checkpoint removed after the restore is no reason to fail.
    if (GONE_AFTER_RESTORE.has(err.code) && olds.checkpointDigest && olds.checkpoint === inputs.checkpoint && olds.containerId === checked.containerId) {
      return { inputs: { ...checked, checkpointDigest: olds.checkpointDigest, plan: olds.plan } };
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
async function assertNameFree(client: ReturnType<typeof connect>, checked: CheckedInputs, olds: Raw): Promise<void> {
  if (olds.containerId === checked.containerId) return; // ours, from an earlier run
  const existing = await inspect(client, checked.containerId);
  // On a replacement the engine checks again without olds: the container it replaces is ours.
  if (existing && existing.labels[Label.owner] !== ownerOf(checked)) {
    throw new RestoreError("id-in-use", `a container named ${checked.containerId} already exists in namespace ${checked.namespace}: choose another name`, {
      subject: "id",
    });
  }
}

const REPLACE_KEYS = ["checkpointDigest", "containerId", "address", "namespace", "live", "restoreRw", "logPath"] as const;
// tls and insecure: new credentials must reach the state, or delete would use stale ones.
const UPDATE_KEYS = ["checkpoint", "labels", "stopSignal", "stopTimeoutSeconds", "tls", "insecure"] as const;

/**
 * Replace when the container would differ (new checkpoint digest, id, daemon,
 * mode) or is no longer running; update in place for labels and teardown settings.
 */
export async function diff(_id: string, olds: Raw, news: Raw) {
  const replaces: string[] = REPLACE_KEYS.filter((key) => {
    if (key === "checkpointDigest" && news[key] === undefined) return isUnknown(news.checkpoint) || olds.checkpoint !== news.checkpoint;
    return isUnknown(news[key]) || !sameValue(olds[key], news[key]);
  });
  // A container that died (or never came up) is restored again.
  if (olds.status !== undefined && olds.status !== "running") replaces.push("status");
  const updates = UPDATE_KEYS.filter((key) => !sameValue(olds[key], news[key]));
  return {
    changes: replaces.length > 0 || updates.length > 0,
    replaces,
    // Ids collide when the user fixed the name: the old container must go first.
    deleteBeforeReplace: news.name !== undefined && !isUnknown(news.name),
  };
}

function outputsFrom(inputs: CheckedInputs, plan: RestorePlan, state: Pick<ContainerState, "pid" | "status">, extra: Partial<Outputs>): Outputs {
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
    ...extra,
  };
}

/** Restores the container; a failed restore leaves nothing on the daemon and nothing in state. */
export async function create(news: Raw): Promise<{ id: string; outs: Outputs }> {
  const inputs = news as unknown as CheckedInputs;
  return withClient(inputs, async (client) => {
    const plan = await planRestore(client, inputs.checkpoint, inputs);
    const result = await restore(client, plan, {
      id: inputs.containerId,
      live: inputs.live,
      restoreRw: inputs.restoreRw,
      labels: inputs.labels,
      stopSignal: inputs.stopSignal,
      logPath: inputs.logPath,
      owner: ownerOf(inputs),
    }).catch((err: unknown) => {
      // Undo could not finish (e.g. the daemon went away): record the id with an init
      // error, so the next `up` replaces it and delete cleans up whatever is left.
      if (err instanceof RestoreError && err.cleanupErrors.length > 0) {
        throw { message: err.message, id: inputs.containerId, properties: { ...news, status: "failed", pid: 0 }, reasons: [err.message] };
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

/** Refresh: a vanished container leaves the state; a stopped one shows its status and exit status. */
export async function read(id: string, props: Raw): Promise<{ id?: string; props?: Raw }> {
  const olds = props as unknown as Outputs;
  // A restore that could not clean up stays failed, whatever is left of it (maybe only a lease and a
  // snapshot, no container): the next up replaces it, and its teardown clears the debris.
  if (olds.status === "failed") return { id, props };
  const state = await withClient(olds, (client) => inspect(client, id));
  if (!state) return {};
  const { exitStatus: _previous, ...rest } = olds;
  return {
    id,
    props: {
      ...rest,
      status: state.status,
      pid: state.pid,
      ...(state.exitStatus !== undefined ? { exitStatus: state.exitStatus } : {}),
    },
  };
}

/** In place: labels and stop signal on the container; teardown settings in state. */
export async function update(id: string, olds: Raw, news: Raw): Promise<{ outs: Outputs }> {
  const previous = olds as unknown as Outputs;
  const inputs = news as unknown as CheckedInputs;
  await withClient(inputs, (client) => updateLabels(client, id, inputs.labels, inputs.stopSignal));
  const { plan: _plan, ...resolved } = inputs as CheckedInputs & { plan?: unknown };
  return { outs: { ...previous, ...resolved, containerId: previous.containerId, checkpointDigest: previous.checkpointDigest } };
}

/** Destroy: the idempotent teardown. */
export async function remove(id: string, props: Raw): Promise<void> {
  const olds = props as unknown as Outputs;
  await withClient(olds, (client) =>
    teardown(client, id, { graceMs: (olds.stopTimeoutSeconds ?? 10) * 1000, stopSignal: olds.stopSignal }),
  );
}
