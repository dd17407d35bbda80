/**
 * The restore policy against a private containerd with real runc and CRIU:
 * hostile checkpoints made at test time from a real one are refused on live and
 * cold restores, naming the field, before anything changes on the daemon, and
 * nothing they name (hook, binary, CRIU action script) runs; each allowance
 * admits exactly its category; checkpoints of ordinary `ctr run` containers
 * restore under the default policy.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { RestoreError, connect, planRestore, restore, teardown, type RestorePlan } from "../../provider/index";
import { check } from "../../provider/pulumi/restored-container";
import {
  assertInventoryUnchanged,
  daemonSuite,
  makeCheckpoint,
  makeCorruptedCriuCheckpoint,
  makeHostileCheckpoint,
  runcOptionsBlob,
  takeInventory,
  uniqueId,
  type Checkpoint,
  type ImageRef,
} from "../harness";

const QUICK = { graceMs: 300 };

/** Hooks, scripts and fake binaries touch files here when they run: it must stay empty. */
let markers: string;
const fixtures: Record<string, ImageRef> = {};

/** A host program that records that it ran, then does nothing else. */
function markerScript(name: string, then = "exit 0"): string {
  const file = path.join(markers, "bin", name);
  fs.writeFileSync(file, `#!/bin/sh\ntouch ${path.join(markers, "ran", name)}\n${then}\n`, { mode: 0o755 });
  return file;
}

const ran = () => fs.readdirSync(path.join(markers, "ran")).sort();

const hook = (name: string) => ({ path: markerScript(name), args: [name] });

/** A private daemon, its client, the base image and a real checkpoint of the counter. */
const suite = daemonSuite({
  connect: (daemon) => connect(daemon.address, { namespace: daemon.namespace }),
  checkpoints: { good: { ref: "checkpoint/policy-good:v1" } },
  setUp: () => makeFixtures(),
  tearDown: async () => {
    if (markers) fs.rmSync(markers, { recursive: true, force: true });
  },
});

/** The marker dir and the hostile checkpoints, each made from the real one. */
async function makeFixtures(): Promise<void> {
  markers = fs.mkdtempSync(path.join(os.tmpdir(), "policy-markers-"));
  fs.mkdirSync(path.join(markers, "bin"));
  fs.mkdirSync(path.join(markers, "ran"));
  const criuConfig = path.join(markers, "criu.conf");
  fs.writeFileSync(criuConfig, `action-script=${markerScript("criu-action-script")}\n`);
  const runc = (await import("node:child_process")).execFileSync("sh", ["-c", "command -v runc"]).toString().trim();
  const make = async (name: string, options: Parameters<typeof makeHostileCheckpoint>[3]) => {
    fixtures[name] = await makeHostileCheckpoint(suite.d, suite.checkpoints.good, `checkpoint/policy-${name}:v1`, options);
  };
  await make("hooks", { spec: (s) => (s.hooks = { prestart: [hook("prestart")], createRuntime: [hook("createRuntime")], poststart: [hook("poststart")] }) });
  await make("binary-name", { runtimeOptions: runcOptionsBlob({ binaryName: markerScript("fake-runc", `exec ${runc} "$@"`) }) });
  await make("criu-config", { spec: (s) => (s.annotations = { ...s.annotations, "org.criu.config": criuConfig }) });
  await make("host-root-mount", { spec: (s) => s.mounts.push({ destination: "/host", type: "bind", source: "/", options: ["rbind", "rw"] }) });
  await make("host-pid", { spec: (s) => (s.linux.namespaces = s.linux.namespaces.filter((n: { type: string }) => n.type !== "pid")) });
  await make("all-caps", {
    spec: (s) => {
      for (const set of ["bounding", "effective", "permitted"]) s.process.capabilities[set].push("CAP_SYS_ADMIN", "CAP_SYS_PTRACE");
    },
  });
  await make("all-devices", { spec: (s) => s.linux.resources.devices.push({ allow: true, access: "rwm" }) });
  await make("hooks-and-mount", {
    spec: (s) => {
      s.hooks = { prestart: [hook("prestart-2")] };
      s.mounts.push({ destination: "/data", type: "bind", source: markers, options: ["rbind", "ro"] });
    },
  });
  fs.mkdirSync(path.join(markers, "shared"));
  fs.symlinkSync("/", path.join(markers, "shared", "escape"));
  await make("symlink-escape", { spec: (s) => s.mounts.push({ destination: "/data", type: "bind", source: path.join(markers, "shared", "escape"), options: ["rbind", "rw"] }) });
  await make("privileged-ish", {
    spec: (s) => {
      s.hooks = { poststart: [hook("poststart-privileged")] };
      for (const set of ["bounding", "effective", "permitted"]) s.process.capabilities[set].push("CAP_SYS_ADMIN");
      s.process.noNewPrivileges = false;
    },
  });
}

async function refusal(run: () => Promise<unknown>): Promise<RestoreError> {
  try {
    await run();
  } catch (err) {
    assert.ok(err instanceof RestoreError, `expected a RestoreError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected the policy to refuse");
}

/** Each hostile fixture, the field its refusal names, and the allowance that would admit it. */
const REFUSED: { fixture: string; path: string; allowance: RegExp }[] = [
  { fixture: "hooks", path: "spec.hooks.prestart[0]", allowance: /allow\.hooks: true/ },
  { fixture: "binary-name", path: "runtimeOptions.binaryName", allowance: /allow\.runtimeOptions: \["binaryName"\]/ },
  { fixture: "criu-config", path: 'spec.annotations["org.criu.config"]', allowance: /allow\.annotations: \["org\.criu\.config"\]/ },
  { fixture: "host-root-mount", path: "spec.mounts[7]", allowance: /allow\.hostMounts: \["\/"\]/ },
  { fixture: "host-pid", path: "spec.linux.namespaces", allowance: /allow\.hostNamespaces: \["pid"\]/ },
  { fixture: "all-caps", path: "spec.process.capabilities", allowance: /allow\.capabilities: \["CAP_SYS_ADMIN"\]/ },
  { fixture: "all-devices", path: "spec.linux.resources.devices[10]", allowance: /allow\.devices: \["a \*:\*"\]/ },
];

describe("hostile checkpoints are refused by default, before the daemon changes", () => {
  for (const { fixture, path: field, allowance } of REFUSED) {
    test(`${fixture}: refused on live and cold restore, naming ${field}`, async () => {
      const before = await takeInventory(suite.d);
      const ref = fixtures[fixture].ref;
      for (const live of [true, false]) {
        const err = await refusal(() => planRestore(suite.client, ref, { live }));
        assert.equal(err.code, "policy-violation");
        const violation = err.violations.find((v) => v.path === field);
        assert.ok(violation, `violations name ${field}: ${err.violations.map((v) => v.path).join(", ")}`);
        assert.match(violation.allowance, allowance);
        assert.ok(err.message.includes(`${field}: `), err.message);
      }
      // A plan made under privileged does not carry the permission: restore checks again.
      const plan = await planRestore(suite.client, ref, { privileged: true });
      const err = await refusal(() => restore(suite.client, plan, { id: uniqueId("pol") }));
      assert.equal(err.code, "policy-violation");
      assert.deepEqual(ran(), [], "no hook, script or binary of the checkpoint ran");
      await assertInventoryUnchanged(suite.d, before, `${fixture} left nothing behind`);
    });
  }

  test("pulumi check (preview) fails on the checkpoint property, naming the field", async () => {
    const result = await check({}, { checkpoint: fixtures.hooks.ref, address: suite.d.address, namespace: suite.d.namespace, resourceName: "hooked" });
    assert.equal(result.inputs, undefined);
    assert.equal(result.failures?.[0]?.property, "checkpoint");
    assert.match(result.failures![0].reason, /spec\.hooks\.prestart\[0\]: runs .*prestart/);
    assert.deepEqual(ran(), []);
  });
});

describe("preview shows what a checkpoint is granted", () => {
  test("check with allow.hooks passes, and its plan and security summary name the hooks", async () => {
    const result = await check({}, { checkpoint: fixtures.hooks.ref, address: suite.d.address, namespace: suite.d.namespace, resourceName: "hooked", allow: { hooks: true } });
    assert.deepEqual(result.failures ?? [], []);
    const inputs = result.inputs as { plan: { step: string; grants?: string }[]; security: { hooks: string[] } };
    assert.equal(inputs.security.hooks.length, 3);
    assert.match(inputs.plan.find((s) => s.step === "create-container")?.grants ?? "", /^hooks: prestart: .*prestart, createRuntime: .*, poststart: /);
    const plain = await check({}, { checkpoint: suite.checkpoints.good.ref, address: suite.d.address, namespace: suite.d.namespace, resourceName: "plain" });
    const plainPlan = (plain.inputs as { plan: { step: string; grants?: string }[] }).plan;
    assert.equal(plainPlan.find((s) => s.step === "create-container")?.grants, "nothing beyond an ordinary container");
    assert.deepEqual(ran(), []);
  });
});

describe("allowances admit exactly their category", () => {
  async function restoreAndTeardown(ref: string, policy: Parameters<typeof planRestore>[2]) {
    const before = await takeInventory(suite.d);
    const id = uniqueId("pol");
    const plan: RestorePlan = await planRestore(suite.client, ref, policy);
    const { pid } = await restore(suite.client, plan, { id, ...policy });
    assert.ok(pid > 0);
    await teardown(suite.client, id, QUICK);
    await assertInventoryUnchanged(suite.d, before, `${ref} torn down`);
    return plan;
  }

  test("the hooks checkpoint restores with allow.hooks, and its hooks run (the policy was the only barrier)", async () => {
    const plan = await restoreAndTeardown(fixtures.hooks.ref, { allow: { hooks: true } });
    assert.deepEqual(plan.security.hooks.length, 3);
    assert.ok(ran().includes("prestart"), `ran: ${ran().join(", ")}`);
    for (const f of fs.readdirSync(path.join(markers, "ran"))) fs.rmSync(path.join(markers, "ran", f));
  });

  test("allow.hooks does not admit a host mount", async () => {
    const err = await refusal(() => planRestore(suite.client, fixtures["hooks-and-mount"].ref, { allow: { hooks: true } }));
    assert.deepEqual(err.violations.map((v) => v.path), ["spec.mounts[7]"]);
    assert.deepEqual(ran(), []);
  });

  test("allow.capabilities admits the listed capabilities only", async () => {
    const err = await refusal(() => planRestore(suite.client, fixtures["all-caps"].ref, { allow: { capabilities: ["CAP_SYS_ADMIN"] } }));
    assert.deepEqual(err.violations.map((v) => v.grant.split(" ")[0]), ["CAP_SYS_PTRACE"]);
    await restoreAndTeardown(fixtures["all-caps"].ref, { allow: { capabilities: ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"] } });
  });

  test("allow.hostMounts admits a bind below the prefix (cold restore), and the plan shows it", async () => {
    const plan = await restoreAndTeardown(fixtures["hooks-and-mount"].ref, { live: false, allow: { hooks: true, hostMounts: [markers] } });
    assert.deepEqual(plan.security.hostMounts, [`${markers} → /data (read-only)`]);
    for (const f of fs.readdirSync(path.join(markers, "ran"))) fs.rmSync(path.join(markers, "ran", f));
  });

  test("an admitted prefix does not admit a symlink below it that leads out", async () => {
    const before = await takeInventory(suite.d);
    const allow = { hostMounts: [path.join(markers, "shared")] };
    const err = await refusal(() => planRestore(suite.client, fixtures["symlink-escape"].ref, { allow }));
    assert.equal(err.code, "policy-violation");
    assert.deepEqual(err.violations.map((v) => v.path), ["spec.mounts[7]"]);
    assert.match(err.violations[0].grant, /resolves through a symlink to \/, outside the allowed host paths/);
    const plan = await planRestore(suite.client, fixtures["symlink-escape"].ref, { privileged: true });
    assert.equal((await refusal(() => restore(suite.client, plan, { id: uniqueId("pol"), allow }))).code, "policy-violation");
    await assertInventoryUnchanged(suite.d, before);
  });

  test("privileged: true admits everything and the plan still says what was granted", async () => {
    const plan = await restoreAndTeardown(fixtures["privileged-ish"].ref, { privileged: true });
    assert.deepEqual(plan.security.capabilitiesBeyondDefault, ["CAP_SYS_ADMIN"]);
    assert.equal(plan.security.noNewPrivileges, false);
    for (const f of fs.readdirSync(path.join(markers, "ran"))) fs.rmSync(path.join(markers, "ran", f));
  });
});

describe("no false positives", () => {
  test("a checkpoint of an ordinary ctr run container restores under the default policy; the plan says it asks for nothing extra", async () => {
    const before = await takeInventory(suite.d);
    const plan = await planRestore(suite.client, suite.checkpoints.good.ref);
    assert.deepEqual(plan.security.hostNamespaces, []);
    assert.deepEqual(plan.security.capabilitiesBeyondDefault, []);
    assert.deepEqual(plan.security.hostMounts, []);
    assert.deepEqual(plan.security.hooks, []);
    const id = uniqueId("pol");
    await restore(suite.client, plan, { id });
    await teardown(suite.client, id, QUICK);
    await assertInventoryUnchanged(suite.d, before);
  });

  test("ctr run --net-host is refused for its host network, and admitted by allow.hostNamespaces", async () => {
    const netHost = await makeCheckpoint(suite.d, { ref: "checkpoint/policy-net-host:v1", image: suite.image, runArgs: ["--net-host"] });
    const err = await refusal(() => planRestore(suite.client, netHost.ref));
    // --net-host also binds the host's /etc/hosts and /etc/resolv.conf: host files, refused by name too.
    assert.deepEqual(err.violations.map((v) => `${v.path}: ${v.grant}`), [
      "spec.linux.namespaces: no network namespace (host network)",
      "spec.mounts[7]: bind of host /etc/hosts read-only at /etc/hosts",
      "spec.mounts[8]: bind of host /etc/resolv.conf read-only at /etc/resolv.conf",
    ]);
    const plan = await planRestore(suite.client, netHost.ref, { allow: { hostNamespaces: ["network"], hostMounts: ["/etc/hosts", "/etc/resolv.conf"] } });
    assert.deepEqual(plan.security.hostNamespaces, ["network (shared with the host)"]);
    await suite.d.ctr(["images", "rm", netHost.ref]);
  });

  test("ctr run --privileged is refused for everything it grants", async (t) => {
    const privileged = await makeCheckpoint(suite.d, { ref: "checkpoint/policy-privileged:v1", image: suite.image, runArgs: ["--privileged"] }).catch((err: Error) => err);
    if (privileged instanceof Error) {
      t.skip(`CRIU could not checkpoint a --privileged container on this host: ${privileged.message.split("\n")[0]}`);
      return;
    }
    const err = await refusal(() => planRestore(suite.client, privileged.ref));
    const paths = new Set(err.violations.map((v) => v.path));
    for (const expected of ["spec.process.capabilities", "spec.linux.maskedPaths", "spec.linux.readonlyPaths", "spec.linux.resources.devices"]) {
      assert.ok([...paths].some((p) => p.startsWith(expected)), `refusal names ${expected}: ${[...paths].join(", ")}`);
    }
    await suite.d.ctr(["images", "rm", privileged.ref]);
  });
});

describe("restore.log comes only from the work directory the provider chose", () => {
  test("a checkpoint naming another CRIU work path gets no foreign file into the error (privileged, CRIU fails)", async () => {
    const foreign = path.join(markers, "other.log");
    fs.writeFileSync(foreign, "FOREIGN-SECRET-LINE\n".repeat(30));
    const corrupted = await makeCorruptedCriuCheckpoint(suite.d, suite.checkpoints.good, "checkpoint/policy-corrupt:v1");
    const corruptCheckpoint: Checkpoint = { ...suite.checkpoints.good, ref: corrupted.ref, digest: corrupted.digest, index: JSON.parse((await suite.d.ctrRaw(["content", "get", corrupted.digest])).toString()) };
    const hostile = await makeHostileCheckpoint(suite.d, corruptCheckpoint, "checkpoint/policy-corrupt-workpath:v1", {
      runtimeOptions: runcOptionsBlob({ criuWorkPath: `${foreign}.d` }),
    });
    const before = await takeInventory(suite.d);
    const refused = await refusal(() => planRestore(suite.client, hostile.ref));
    assert.deepEqual(refused.violations.map((v) => v.path), ["runtimeOptions.criuWorkPath"]);
    const plan = await planRestore(suite.client, hostile.ref, { privileged: true });
    const err = await refusal(() => restore(suite.client, plan, { id: uniqueId("pol"), privileged: true }));
    assert.equal(err.code, "criu-failed");
    assert.ok(!err.message.includes("FOREIGN-SECRET-LINE"), err.message);
    assert.ok(err.restoreLog && err.restoreLog.length > 0, "the tail of the provider's own restore.log is there");
    assert.ok(!err.restoreLog.some((line) => line.includes("FOREIGN-SECRET-LINE")));
    assert.equal(fs.existsSync(`${foreign}.d`), false, "the checkpoint's work path was not used");
    await assertInventoryUnchanged(suite.d, before);
    await suite.d.ctr(["images", "rm", hostile.ref, corrupted.ref]);
  });
});
