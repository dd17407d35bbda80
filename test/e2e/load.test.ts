/**
 * Load: `pulumi up` of 30 RestoredContainers from one checkpoint with
 * `parallel: 30`, three rounds in a row (up, checks, destroy), through the real
 * Pulumi engine against one private containerd. Each round: all 30 run, each in
 * its own cgroup; in round 1, removing one resource from the program deletes
 * only that one (the other 29 keep running with the same pids); destroy clears
 * everything and the daemon holds exactly what it held before the stack. Wall
 * times per round are printed.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { connect, inspect, type ContainerdClient } from "../../provider/index";
import { RestoredContainer } from "../../sdk";
import {
  assertInventoryUnchanged,
  importBaseImage,
  makeCheckpoint,
  pidAlive,
  startContainerd,
  takeInventory,
  type Checkpoint,
  type Inventory,
  type PrivateContainerd,
} from "../harness";
import { eventCollector, newStack, resourceSteps, type TestStack } from "./stack";

const N = 30;
const ROUNDS = 3;
const PARALLEL = 30;
const NAMES = Array.from({ length: N }, (_, i) => `load-${String(i).padStart(2, "0")}`);
/** The resource removed from the program in round 1. */
const DROPPED = NAMES[7];

let d: PrivateContainerd;
let client: ContainerdClient;
let checkpoint: Checkpoint;
let baseline: Inventory;
let s: TestStack;
/** The resources the program declares; tests change it between operations. */
let active: string[] = NAMES;

interface Restored {
  id: string;
  pid: number;
  status: string;
  restoreDurationMs: number;
}

interface RoundTiming {
  round: number;
  upMs: number;
  checksMs: number;
  dropOneMs?: number;
  destroyMs: number;
  totalMs: number;
  restoreMsMedian: number;
  restoreMsMax: number;
}
const timings: RoundTiming[] = [];

before(async () => {
  d = await startContainerd();
  client = connect(d.address, { namespace: d.namespace });
  const image = await importBaseImage(d);
  checkpoint = await makeCheckpoint(d, { ref: "checkpoint/load:v1", image });
  baseline = await takeInventory(d);
  s = await newStack("restore-e2e-load", async () => {
    const out: Record<string, pulumi.Output<Restored>> = {};
    for (const name of active) {
      const c = new RestoredContainer(name, {
        checkpoint: checkpoint.ref,
        address: d.address,
        namespace: d.namespace,
        // The restored counter is pid 1 of its namespace and ignores SIGTERM.
        stopTimeoutSeconds: 1,
      });
      out[name] = pulumi
        .all([c.containerId, c.pid, c.status, c.restoreDurationMs])
        .apply(([id, pid, status, restoreDurationMs]) => ({ id, pid, status, restoreDurationMs }));
    }
    return out;
  });
});

after(async () => {
  if (timings.length > 0) {
    console.log(`load: ${N} RestoredContainers, parallel ${PARALLEL}, wall times per round (ms):`);
    console.table(timings);
  }
  client?.close();
  await s?.remove();
  await d?.stop();
});

/** The stack's exported containers by resource name. */
function restoredFrom(outputs: Record<string, { value: unknown }>): Map<string, Restored> {
  return new Map(Object.entries(outputs).map(([name, o]) => [name, o.value as Restored]));
}

/** The cgroup (v2 unified path, else the v1 pids/memory path) of a pid. */
function cgroupOf(pid: number): string {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").trim().split("\n");
  const unified = lines.find((l) => l.startsWith("0::"));
  const line = unified ?? lines.find((l) => /:(pids|memory):/.test(l)) ?? lines[0];
  return line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1);
}

/** Every container is running under its own id, pid as exported, each in its own cgroup named after it. */
async function assertAllRunning(restored: Map<string, Restored>, names: string[]): Promise<void> {
  assert.deepEqual([...restored.keys()].sort(), [...names].sort(), "one export per declared resource");
  const ids = new Set([...restored.values()].map((r) => r.id));
  assert.equal(ids.size, names.length, "container ids are distinct");
  const states = await Promise.all(names.map((name) => inspect(client, restored.get(name)!.id)));
  const cgroups = new Map<string, string>();
  names.forEach((name, i) => {
    const r = restored.get(name)!;
    const state = states[i];
    assert.ok(state, `${name}: container ${r.id} exists`);
    assert.equal(state.status, "running", `${name}: ${r.id} is ${state.status}`);
    assert.equal(r.status, "running", `${name}: exported status`);
    assert.ok(r.pid > 0 && state.pid === r.pid, `${name}: pid ${state.pid} on the daemon, ${r.pid} exported`);
    assert.ok(pidAlive(r.pid), `${name}: pid ${r.pid} is alive`);
    const cgroup = cgroupOf(r.pid);
    assert.ok(cgroup.split("/").includes(r.id), `${name}: pid ${r.pid} is in cgroup ${cgroup}, which should name ${r.id}`);
    cgroups.set(name, cgroup);
  });
  assert.equal(new Set(cgroups.values()).size, names.length, `${names.length} distinct cgroups: ${[...cgroups.values()].join(" ")}`);
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.floor((sorted.length - 1) / 2)];
};

async function timed<T>(run: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const result = await run();
  return [result, Math.round(performance.now() - t0)];
}

/** One round: up, checks (and in round 1, dropping one resource), destroy, leak check. */
async function runRound(round: number): Promise<void> {
  const started = performance.now();
  const [up, upMs] = await timed(() => s.stack.up({ parallel: PARALLEL }));
  assert.equal(up.summary.result, "succeeded");
  assert.equal(up.summary.resourceChanges?.create, N + 1, "every container and the stack are created");

  const [restored, checksMs] = await timed(async () => {
    const restored = restoredFrom(up.outputs);
    await assertAllRunning(restored, NAMES);
    return restored;
  });

  let dropOneMs: number | undefined;
  if (round === 1) {
    // Remove one resource from the program: only it is deleted, the rest keep running untouched.
    active = NAMES.filter((name) => name !== DROPPED);
    const { events, onEvent } = eventCollector();
    const [dropped, ms] = await timed(() => s.stack.up({ parallel: PARALLEL, onEvent }));
    dropOneMs = ms;
    const steps = resourceSteps(events);
    const changed = steps.filter((m) => m.op !== "same");
    assert.deepEqual(
      changed.map((m) => `${m.op} ${m.urn.split("::").pop()}`),
      [`delete ${DROPPED}`],
      "the removed resource is the only change",
    );
    assert.equal(steps.filter((m) => m.op === "same").length, N - 1);
    assert.equal(await inspect(client, restored.get(DROPPED)!.id), undefined, `${DROPPED}'s container is gone`);
    assert.ok(!pidAlive(restored.get(DROPPED)!.pid), `${DROPPED}'s process is gone`);
    const remaining = restoredFrom(dropped.outputs);
    await assertAllRunning(remaining, active);
    for (const name of active) {
      assert.equal(remaining.get(name)!.pid, restored.get(name)!.pid, `${name} kept its pid`);
      assert.equal(remaining.get(name)!.id, restored.get(name)!.id, `${name} kept its container`);
    }
  }

  const [destroy, destroyMs] = await timed(() => s.stack.destroy({ parallel: PARALLEL }));
  assert.equal(destroy.summary.result, "succeeded");
  for (const r of restored.values()) assert.ok(!pidAlive(r.pid), `pid ${r.pid} (${r.id}) is gone after destroy`);
  await assertInventoryUnchanged(d, baseline, `after round ${round}'s destroy`, { settleMs: 5_000 });

  const restoreMs = [...restored.values()].map((r) => r.restoreDurationMs);
  timings.push({
    round,
    upMs,
    checksMs,
    ...(dropOneMs !== undefined ? { dropOneMs } : {}),
    destroyMs,
    totalMs: Math.round(performance.now() - started),
    restoreMsMedian: median(restoreMs),
    restoreMsMax: Math.max(...restoreMs),
  });
}

for (let round = 1; round <= ROUNDS; round++) {
  test(`round ${round}: up of ${N} with parallel ${PARALLEL}, checks, destroy; nothing left behind`, async () => {
    active = NAMES;
    try {
      await runRound(round);
    } catch (err) {
      // Leave the next round a clean slate.
      active = NAMES;
      await s.stack.destroy({ parallel: PARALLEL }).catch(() => undefined);
      throw err;
    }
  });
}
