/**
 * Daemon faults, through the real Pulumi engine against a private containerd:
 *
 * - the daemon is SIGKILLed inside the provider's restore, at each step in turn
 *   (a transparent gRPC proxy between the provider and the daemon pulls the
 *   trigger on the step's RPC), then started again: the next `up` converges to
 *   one running container and `destroy` leaves the daemon as it was;
 * - the daemon is down during preview, up, refresh and destroy: each fails fast
 *   with "cannot reach containerd at <address>" and leaves the state alone, and
 *   succeeds once the daemon is back;
 * - the daemon restarts right as a restore step arrives: undo finishes on the
 *   restarted daemon, nothing is recorded, the next up simply creates;
 * - the daemon restarts between up and destroy.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { RestoredContainer, type RestoredContainerArgs } from "../../sdk";
import {
  diffInventory,
  assertInventoryUnchanged,
  importBaseImage,
  makeCheckpoint,
  startContainerd,
  takeInventory,
  taskStatus,
  type Checkpoint,
  type Inventory,
  type PrivateContainerd,
} from "../harness";
import { RESTORE_STEP_RPC, startFaultProxy, type FaultMoment, type FaultProxy } from "../harness/fault-proxy";
import { RESOURCE_TYPE, eventCollector, failureOf, newStack, resourceSteps, type TestStack } from "./stack";

/** A failing command against a dead daemon must answer well within this. */
const FAIL_FAST_MS = 20_000;
const TEST_TIMEOUT = { timeout: 120_000 };

let d: PrivateContainerd;
let proxy: FaultProxy;
let checkpoint: Checkpoint;
let baseline: Inventory;
let s: TestStack;
let args: RestoredContainerArgs;

before(async () => {
  d = await startContainerd();
  checkpoint = await makeCheckpoint(d, { ref: "checkpoint/faults:v1", image: await importBaseImage(d) });
  baseline = await takeInventory(d);
  proxy = await startFaultProxy(d);
  s = await newStack("restore-e2e-faults", async () => {
    const app = new RestoredContainer("app", args);
    return { containerId: app.containerId, status: app.status, pid: app.pid };
  });
});

after(async () => {
  await s?.remove();
  await proxy?.close();
  await d?.stop();
});

/**
 * Through the proxy: the provider's calls can be watched and the daemon killed mid-restore.
 * SIGKILL to stop: the restored shell ignores SIGTERM, no grace to wait out.
 */
const viaProxy = (): RestoredContainerArgs => ({ checkpoint: checkpoint.ref, address: proxy.address, namespace: d.namespace, stopSignal: "SIGKILL" });
/** Straight to the daemon's socket. */
const direct = (): RestoredContainerArgs => ({ ...viaProxy(), address: d.address });

type StateResource = { urn: string; id?: string; type: string; outputs: Record<string, unknown>; initErrors?: string[] };

/** The RestoredContainer in the stack's state, if any. */
async function resourceState(): Promise<StateResource | undefined> {
  const state = await s.stack.exportStack();
  const ours = (state.deployment.resources ?? []).filter((r: StateResource) => r.type === RESOURCE_TYPE);
  assert.ok(ours.length <= 1, `one RestoredContainer in state, found ${ours.length}`);
  return ours[0];
}

const outputsOf = async () => Object.fromEntries(Object.entries(await s.stack.outputs()).map(([k, v]) => [k, v.value]));

/** Exactly one running restored container, `id`, beyond the baseline: nothing else (no lease, no stray snapshot or task). */
async function assertOnlyRunning(id: string): Promise<void> {
  const expected = [`+ container ${id}`, `+ snapshot(overlayfs) ${id} Active`, `+ task ${id} RUNNING`].sort();
  const deadline = Date.now() + 3_000; // containerd's GC runs asynchronously
  let diff: string[];
  for (;;) {
    diff = diffInventory(baseline, await takeInventory(d)).sort();
    if (JSON.stringify(diff) === JSON.stringify(expected) || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(diff, expected, "the daemon holds one restored container and nothing else");
}

/** Rejects if `fired` has not settled within `ms`. */
async function firedWithin(fired: Promise<void>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the fault on ${what} never fired`)), ms);
  });
  try {
    await Promise.race([fired, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `operation`, expecting it to fail fast; returns its message and how long it took. */
async function failsFast(operation: () => Promise<unknown>): Promise<{ message: string; ms: number }> {
  const t0 = Date.now();
  const message = await failureOf(operation());
  return { message, ms: Date.now() - t0 };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** Each restore step, the moment the daemon dies, and what the daemon holds for the dead restore afterwards. */
interface KillPoint {
  step: keyof typeof RESTORE_STEP_RPC;
  when: FaultMoment;
  what: string;
  /** What the killed restore leaves on the daemon. */
  debris: string[];
  /** A fixed container name. */
  name?: string;
  /** Run `pulumi refresh` between the restart and the next up. */
  refreshFirst?: boolean;
}

const KILL_POINTS: KillPoint[] = [
  { step: "create-lease", when: "after-response", what: "after the lease is created", debris: ["lease"] },
  { step: "prepare-snapshot", when: "after-response", what: "after the snapshot is prepared", debris: ["lease", "snapshot"] },
  // A fixed name: the replacement deletes first and restores under the same id, so the
  // debris (a snapshot with that key) must really be gone before it prepares its own.
  // And a refresh first: no container to read, but the failed record must stay.
  {
    step: "prepare-snapshot",
    when: "after-response",
    what: "after the snapshot is prepared, fixed name, refresh before up",
    debris: ["lease", "snapshot"],
    name: "app-fixed",
    refreshFirst: true,
  },
  { step: "apply-rw-layer", when: "after-response", what: "after the rw layer is applied", debris: ["lease", "snapshot"] },
  { step: "create-container", when: "after-response", what: "after the container record is created", debris: ["lease", "snapshot", "container"] },
  // The lease is released and the task created (pid 0, shim running): the same state as a kill after Tasks/Create.
  {
    step: "start-task",
    when: "on-request",
    what: "when the task start request arrives (the daemon never sees it)",
    debris: ["snapshot", "container", "task CREATED"],
  },
  {
    step: "start-task",
    when: "withhold-response",
    what: "during task start: CRIU restored the process, the answer is lost",
    debris: ["snapshot", "container", "task RUNNING"],
  },
];

/** What the daemon holds beyond the baseline, lease ids' random part as `*`. */
async function debrisOnDaemon(): Promise<string[]> {
  return diffInventory(baseline, await takeInventory(d))
    .map((line) => line.replace(/^(\+ lease containerd-restore\..+)\.[0-9a-f]{8}$/, "$1.*"))
    .sort();
}

/** The inventory lines of a dead restore's debris of container `id`. */
function expectedDebris(id: string, kinds: string[]): string[] {
  const line = (kind: string) => {
    if (kind === "lease") return `+ lease containerd-restore.restore.${id}.*`;
    if (kind === "snapshot") return `+ snapshot(overlayfs) ${id} Active`;
    if (kind === "container") return `+ container ${id}`;
    return `+ task ${id} ${kind.split(" ")[1]}`;
  };
  return kinds.map(line).sort();
}

for (const point of KILL_POINTS) {
  test(`daemon SIGKILLed ${point.what} (${RESTORE_STEP_RPC[point.step]}, ${point.when}): the next up converges to one running container`, TEST_TIMEOUT, async (t) => {
    args = { ...viaProxy(), ...(point.name ? { name: point.name } : {}) };
    proxy.reset();
    const fired = proxy.arm({ method: RESTORE_STEP_RPC[point.step], when: point.when });
    const { message } = await failsFast(() => s.stack.up());
    await firedWithin(fired, 5_000, point.step);
    assert.equal(d.pid, undefined, "the daemon is dead");
    assert.match(message, new RegExp(`cannot reach containerd at ${escape(proxy.address)}`));
    assert.match(message, /cleanup also failed/);

    // Undo could not reach the daemon: the id is in the state with an init error, status failed.
    const failed = await resourceState();
    assert.ok(failed, "the half-restored container is recorded");
    assert.ok((failed.initErrors ?? []).length > 0, "recorded with init errors");
    assert.equal(failed.outputs.status, "failed");
    const debrisId = String(failed.id);
    assert.equal(failed.outputs.containerId, debrisId);

    await d.start();
    // What the killed restore left. During task start the shim outlived the daemon: the
    // process was restored and runs, although the client never heard.
    let debris = point.debris;
    if (debris.includes("task CREATED") && !d.behaviour.createdTaskSurvivesRestart) {
      t.diagnostic(`containerd ${d.version.text} drops a created, never started task when it restarts: no task in the debris`);
      debris = debris.filter((kind) => kind !== "task CREATED");
    }
    assert.deepEqual(await debrisOnDaemon(), expectedDebris(debrisId, debris), "debris of the killed restore");
    if (point.refreshFirst) {
      await s.stack.refresh();
      const refreshed = await resourceState();
      assert.equal(refreshed?.id, debrisId, "refresh keeps the failed record: its teardown must still run");
      assert.equal(refreshed?.outputs.status, "failed");
    }

    const { events, onEvent } = eventCollector();
    const result = await s.stack.up({ onEvent });
    assert.equal(result.summary.result, "succeeded");
    const ops = resourceSteps(events).map((m) => m.op);
    assert.ok(ops.includes("create-replacement") && ops.includes("delete-replaced"), `replaced: ${ops}`);
    // Only the status forces this replacement, so its name is the failed one's (a fixed name, or the
    // same inputs hashed into the same auto-name): the debris is torn down first.
    assert.ok(ops.indexOf("delete-replaced") < ops.indexOf("create-replacement"), `delete first: ${ops}`);
    const out = await outputsOf();
    assert.equal(out.status, "running");
    assert.equal(out.containerId, point.name ?? debrisId);
    const recorded = await resourceState();
    assert.equal((recorded?.initErrors ?? []).length, 0, "no init errors left");
    await assertOnlyRunning(String(out.containerId));

    const destroyed = await s.stack.destroy();
    assert.equal(destroyed.summary.result, "succeeded");
    await assertInventoryUnchanged(d, baseline, `after destroy (killed at ${point.step}, ${point.when})`);
  });
}

test("daemon restarted as Diff/Apply arrives: the restore fails, undo finishes on the restarted daemon, nothing is recorded; the next up creates", TEST_TIMEOUT, async () => {
  args = viaProxy();
  proxy.reset();
  const fired = proxy.arm({
    method: RESTORE_STEP_RPC["apply-rw-layer"],
    when: "on-request",
    action: async () => {
      await d.kill();
      await d.start();
    },
  });
  const { message } = await failsFast(() => s.stack.up());
  await firedWithin(fired, 5_000, "apply-rw-layer");
  assert.match(message, new RegExp(`apply-rw-layer: cannot reach containerd at ${escape(proxy.address)}`));
  assert.doesNotMatch(message, /cleanup also failed/);
  assert.equal(await resourceState(), undefined, "nothing recorded");
  await assertInventoryUnchanged(d, baseline, "after the failed up: undo removed the snapshot and the lease");

  const { events, onEvent } = eventCollector();
  await s.stack.up({ onEvent });
  assert.deepEqual(resourceSteps(events).map((m) => m.op), ["create"]);
  const out = await outputsOf();
  assert.equal(out.status, "running");
  await assertOnlyRunning(String(out.containerId));
  await s.stack.destroy();
  await assertInventoryUnchanged(d, baseline, "after destroy");
});

test("daemon down during preview, up, refresh and destroy: each fails fast naming the address, the state keeps the resource; each succeeds once it is back", TEST_TIMEOUT, async () => {
  args = direct();
  await s.stack.up();
  const before = await resourceState();
  assert.ok(before);
  const id = String(before.id);
  await d.kill();

  const unreachable = new RegExp(`cannot reach containerd at ${escape(d.address)}`);
  const commands: [string, () => Promise<unknown>][] = [
    ["preview", () => s.stack.preview()],
    ["up", () => s.stack.up()],
    ["refresh", () => s.stack.refresh()],
    ["destroy", () => s.stack.destroy()],
  ];
  for (const [name, run] of commands) {
    const { message, ms } = await failsFast(run);
    console.log(`${name} with the daemon down failed in ${ms} ms`);
    assert.match(message, unreachable, `${name}: ${message}`);
    assert.ok(ms < FAIL_FAST_MS, `${name} failed after ${ms} ms`);
    const now = await resourceState();
    assert.ok(now, `${name}: the resource is still in the state`);
    assert.equal(now.id, id);
    assert.deepEqual(now.outputs, before.outputs, `${name}: the state is unchanged`);
  }

  await d.start();
  assert.equal(await taskStatus(d, id), "RUNNING", "the container outlived the daemon");
  const preview = await s.stack.preview();
  assert.equal(preview.changeSummary.same, 2, "preview: no changes");
  const up = await s.stack.up();
  assert.equal(up.summary.result, "succeeded");
  assert.equal((await resourceState())?.id, id, "up: the same container");
  const refresh = await s.stack.refresh();
  assert.equal(refresh.summary.result, "succeeded");
  assert.equal((await resourceState())?.outputs.status, "running");
  const destroy = await s.stack.destroy();
  assert.equal(destroy.summary.result, "succeeded");
  await assertInventoryUnchanged(d, baseline, "after destroy");
});

test("daemon restarted (SIGTERM) between up and destroy: destroy still removes everything", TEST_TIMEOUT, async () => {
  args = direct();
  await s.stack.up();
  const { containerId } = await outputsOf();
  await d.restart();
  assert.equal(await taskStatus(d, String(containerId)), "RUNNING", "the container outlived the daemon");
  const result = await s.stack.destroy();
  assert.equal(result.summary.result, "succeeded");
  assert.equal(await resourceState(), undefined);
  await assertInventoryUnchanged(d, baseline, "after destroy (daemon restarted)");
});
