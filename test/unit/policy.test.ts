/** The restore policy as a pure function: no daemon, no root. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { RestoreError } from "../../provider/errors";
import {
  allowanceProblems,
  enforcePolicy,
  evaluatePolicy,
  grantsBeyondDefault,
  hostPaths,
  summaryLines,
  type Allowances,
  type PolicyInput,
  type RestorePolicy,
} from "../../provider/policy";
import { decodeRuncOptions, encodeRuncOptions, fieldNumbers } from "../../provider/containerd";
import { assertHostPathsResolveInside } from "../../provider/restore/policy";
import { ctrRunSpec } from "./fixtures/ctr-run-spec";

const RUNC = "io.containerd.runc.v2";
const input = (spec: Record<string, any>, runtime: PolicyInput["runtime"] = { name: RUNC }): PolicyInput => ({ spec, runtime });

/** A spec based on ctr run's, changed by `edit`. */
function specWith(edit: (spec: Record<string, any>) => void): Record<string, any> {
  const spec = ctrRunSpec();
  edit(spec);
  return spec;
}

const refusedPaths = (i: PolicyInput, policy?: RestorePolicy) => evaluatePolicy(i, policy).refused.map((f) => f.path);

describe("the default policy admits an ordinary container", () => {
  test("ctr run's spec (containerd 1.6.20) has no finding at all", () => {
    const result = evaluatePolicy(input(ctrRunSpec(), { name: RUNC, options: { typeUrl: "containerd.runc.v1.Options", runc: {}, unknownFields: [] } }));
    assert.deepEqual(result.refused, []);
    assert.deepEqual(result.admitted, []);
    assert.deepEqual(result.summary.hostNamespaces, []);
    assert.deepEqual(result.summary.capabilitiesBeyondDefault, []);
    assert.deepEqual(result.summary.hostMounts, []);
    assert.equal(result.summary.noNewPrivileges, true);
    assert.match(result.summary.user, /uid 0, gid 0 \(root/);
  });

  test("containerd 2.x's smaller capability set, the powercap mask and the tun rule are admitted too", () => {
    const spec = specWith((s) => {
      for (const set of ["bounding", "effective", "permitted"]) s.process.capabilities[set] = ["CAP_CHOWN", "CAP_KILL"];
      s.linux.maskedPaths.push("/sys/devices/virtual/powercap");
      s.linux.resources.devices.push({ allow: true, type: "c", major: 10, minor: 200, access: "rwm" });
    });
    assert.deepEqual(refusedPaths(input(spec)), []);
  });

  test("an empty runtime-options Any (containerd ≥ 1.7 writes none) and user/cgroup namespaces of its own are fine", () => {
    const spec = specWith((s) => s.linux.namespaces.push({ type: "user" }, { type: "cgroup" }));
    assert.deepEqual(refusedPaths(input(spec, { name: RUNC, options: { typeUrl: "", unknownFields: [] } })), []);
  });

  test("deny rules after the deny-all and a non-root user are fine", () => {
    const spec = specWith((s) => {
      s.linux.resources.devices.push({ allow: false, type: "c", major: 1, minor: 3, access: "w" });
      s.process.user = { uid: 1000, gid: 1000 };
    });
    const result = evaluatePolicy(input(spec));
    assert.deepEqual(result.refused, []);
    assert.equal(result.summary.user, "uid 1000, gid 1000");
  });
});

/** One hostile change per category, the path the refusal must name, and the allowance that admits exactly it. */
const CATEGORIES: { name: string; edit: (s: Record<string, any>) => void; paths: string[]; allow: Allowances; admitted?: number }[] = [
  {
    name: "hooks of every kind",
    edit: (s) =>
      (s.hooks = {
        prestart: [{ path: "/bin/sh", args: ["sh", "-c", "touch /tmp/pwned"] }],
        createRuntime: [{ path: "/bin/sh" }],
        createContainer: [{ path: "/bin/true" }],
        startContainer: [{ path: "/bin/true" }],
        poststart: [{ path: "/bin/sh" }],
        poststop: [{ path: "/bin/sh" }],
      }),
    paths: ["spec.hooks.prestart[0]", "spec.hooks.createRuntime[0]", "spec.hooks.createContainer[0]", "spec.hooks.startContainer[0]", "spec.hooks.poststart[0]", "spec.hooks.poststop[0]"],
    allow: { hooks: true },
  },
  {
    name: "a CRIU configuration file",
    edit: (s) => (s.annotations = { ...s.annotations, "org.criu.config": "/tmp/evil.conf", "com.example/harmless": "x" }),
    paths: ['spec.annotations["org.criu.config"]'],
    allow: { annotations: ["org.criu.config"] },
  },
  {
    name: "systemd unit properties and crun handlers",
    edit: (s) => (s.annotations = { ...s.annotations, "org.systemd.property.ExecStopPost": "/bin/sh", "run.oci.handler": "krun", bundle: "/" }),
    paths: ['spec.annotations["org.systemd.property.ExecStopPost"]', 'spec.annotations["run.oci.handler"]', 'spec.annotations["bundle"]'],
    allow: { annotations: ["org.systemd.property.", "run.oci.*", "bundle"] },
  },
  {
    name: "host pid, network and ipc (missing namespaces)",
    edit: (s) => (s.linux.namespaces = s.linux.namespaces.filter((n: { type: string }) => !["pid", "network", "ipc"].includes(n.type))),
    paths: ["spec.linux.namespaces", "spec.linux.namespaces", "spec.linux.namespaces"],
    allow: { hostNamespaces: ["pid", "network", "ipc"] },
  },
  {
    name: "a namespace joined by path",
    edit: (s) => (s.linux.namespaces[4] = { type: "network", path: "/proc/1/ns/net" }),
    paths: ["spec.linux.namespaces[4]"],
    allow: { hostNamespaces: ["network"] },
  },
  {
    name: "capabilities beyond the default set",
    edit: (s) => {
      s.process.capabilities.bounding.push("CAP_SYS_ADMIN", "CAP_NET_ADMIN");
      s.process.capabilities.ambient = ["CAP_SYS_ADMIN"];
    },
    paths: ["spec.process.capabilities", "spec.process.capabilities"],
    allow: { capabilities: ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"] },
  },
  { name: "noNewPrivileges false", edit: (s) => (s.process.noNewPrivileges = false), paths: ["spec.process.noNewPrivileges"], allow: { newPrivileges: true } },
  {
    name: "unconfined AppArmor and SELinux",
    edit: (s) => {
      s.process.apparmorProfile = "unconfined";
      s.process.selinuxLabel = "system_u:system_r:spc_t:s0";
    },
    paths: ["spec.process.apparmorProfile", "spec.process.selinuxLabel"],
    allow: { unconfined: true },
  },
  {
    name: "masked and read-only paths removed, sysfs writable",
    edit: (s) => {
      s.linux.maskedPaths = s.linux.maskedPaths.filter((p: string) => p !== "/proc/kcore");
      s.linux.readonlyPaths = s.linux.readonlyPaths.filter((p: string) => p !== "/proc/sys");
      s.mounts[5].options = ["nosuid", "noexec", "nodev"];
    },
    paths: ["spec.linux.maskedPaths", "spec.linux.readonlyPaths", "spec.mounts[5]"],
    allow: { unmaskedPaths: ["/proc/kcore", "/proc/sys", "/sys"] },
  },
  {
    name: "a bind mount of host / read-write",
    edit: (s) => s.mounts.push({ destination: "/host", type: "bind", source: "/", options: ["rbind", "rw"] }),
    paths: ["spec.mounts[7]"],
    allow: { hostMounts: ["/"] },
  },
  {
    name: "a host block device mounted as a filesystem",
    edit: (s) => s.mounts.push({ destination: "/disk", type: "ext4", source: "/dev/vda", options: [] }),
    paths: ["spec.mounts[7]"],
    allow: { hostMounts: ["/dev/vda"] },
  },
  {
    name: "device nodes and wider device rules",
    edit: (s) => {
      s.linux.devices = [{ path: "/dev/sda", type: "b", major: 8, minor: 0 }];
      s.linux.resources.devices.push({ allow: true, type: "b", major: 8, minor: 0, access: "rwm" }, { allow: true, type: "c", major: 10, access: "rwm" });
    },
    paths: ["spec.linux.devices[0]", "spec.linux.resources.devices[10]", "spec.linux.resources.devices[11]"],
    // The node's allowance also covers the cgroup rule for that node.
    allow: { devices: ["/dev/sda", "c 10:*"] },
    admitted: 2,
  },
  {
    name: "no deny-all device rule (every device allowed)",
    edit: (s) => s.linux.resources.devices.shift(),
    paths: ["spec.linux.resources.devices"],
    allow: { devices: ["a *:*"] },
  },
  {
    name: "an allow-all device rule after the deny-all",
    edit: (s) => s.linux.resources.devices.push({ allow: true, access: "rwm" }),
    paths: ["spec.linux.resources.devices[10]"],
    allow: { devices: ["a *:*"] },
  },
  {
    name: "a host-wide sysctl",
    edit: (s) => (s.linux.sysctl = { "kernel.core_pattern": "|/tmp/x", "net.ipv4.ip_forward": "1", "kernel.shmmax": "1" }),
    paths: ['spec.linux.sysctl["kernel.core_pattern"]'],
    allow: { sysctls: ["kernel.core_pattern"] },
  },
  {
    name: "a seccomp listener socket on the host",
    edit: (s) => (s.linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/agent.sock" }),
    paths: ["spec.linux.seccomp.listenerPath"],
    allow: { hostMounts: ["/run/agent.sock"] },
  },
  {
    name: "a host network device moved in",
    edit: (s) => (s.linux.netDevices = { eth0: {} }),
    paths: ['spec.linux.netDevices["eth0"]'],
    allow: { devices: ["netdev/eth0"] },
  },
];

describe("each category is refused by default, naming the field, and its allowance admits exactly it", () => {
  for (const category of CATEGORIES) {
    test(category.name, () => {
      const hostile = input(specWith(category.edit));
      const result = evaluatePolicy(hostile);
      assert.deepEqual(result.refused.map((f) => f.path).sort(), [...category.paths].sort());
      for (const finding of result.refused) {
        assert.ok(finding.grant.length > 0);
        assert.match(finding.allowance, /^(allow\.\w+: |privileged)/);
      }
      const allowed = evaluatePolicy(hostile, { allow: category.allow });
      assert.deepEqual(allowed.refused, [], `allowance ${JSON.stringify(category.allow)} should admit ${category.name}`);
      assert.equal(allowed.admitted.length, category.admitted ?? category.paths.length);
    });
  }

  test("an allowance does not admit another category: hooks allowed, a host mount still refused", () => {
    const spec = specWith((s) => {
      s.hooks = { prestart: [{ path: "/bin/sh" }] };
      s.mounts.push({ destination: "/data", type: "bind", source: "/srv/data", options: ["rbind"] });
    });
    assert.deepEqual(refusedPaths(input(spec), { allow: { hooks: true } }), ["spec.mounts[7]"]);
  });

  test("each allowance is precise: another capability, namespace or path is still refused", () => {
    const spec = specWith((s) => {
      s.process.capabilities.bounding.push("CAP_SYS_ADMIN");
      s.linux.namespaces = s.linux.namespaces.filter((n: { type: string }) => n.type !== "pid");
      s.mounts.push({ destination: "/data", type: "bind", source: "/srv/database", options: ["rbind"] });
    });
    const policy = { allow: { capabilities: ["CAP_NET_ADMIN"], hostNamespaces: ["network" as const], hostMounts: ["/srv/data"] } };
    assert.deepEqual(refusedPaths(input(spec), policy), ["spec.linux.namespaces", "spec.process.capabilities", "spec.mounts[7]"]);
  });

  test("a host-mount prefix admits what lies below it, after normalizing .. away", () => {
    const mount = (source: string) => specWith((s) => s.mounts.push({ destination: "/d", type: "bind", source, options: ["rbind", "ro"] }));
    const policy = { allow: { hostMounts: ["/srv/data"] } };
    assert.deepEqual(refusedPaths(input(mount("/srv/data/app")), policy), []);
    assert.deepEqual(refusedPaths(input(mount("/srv/data/../../etc")), policy), ["spec.mounts[7]"]);
    assert.match(evaluatePolicy(input(mount("/srv/data/../../etc"))).refused[0].grant, /bind of host \/etc read-only at \/d/);
  });

  test("net.* sysctls are host-wide when the network namespace is the host's", () => {
    const spec = specWith((s) => {
      s.linux.sysctl = { "net.ipv4.ip_forward": "1" };
      s.linux.namespaces = s.linux.namespaces.filter((n: { type: string }) => n.type !== "network");
    });
    assert.deepEqual(refusedPaths(input(spec), { allow: { hostNamespaces: ["network"] } }), ['spec.linux.sysctl["net.ipv4.ip_forward"]']);
  });

  test("a root filesystem outside the bundle and shared propagation need privileged", () => {
    const spec = specWith((s) => {
      s.root.path = "/";
      s.linux.rootfsPropagation = "rshared";
    });
    const result = evaluatePolicy(input(spec));
    assert.deepEqual(result.refused.map((f) => f.path), ["spec.root.path", "spec.linux.rootfsPropagation"]);
    assert.ok(result.refused.every((f) => f.allowance === "privileged: true"));
  });
});

describe("runtime and runtime options", () => {
  const withOptions = (runc: Record<string, unknown>, unknownFields: number[] = []) =>
    input(ctrRunSpec(), { name: RUNC, options: { typeUrl: "containerd.runc.v1.Options", runc, unknownFields } });

  test("options that choose binaries or paths are refused, each by field", () => {
    const hostile = withOptions({ binaryName: "/tmp/evil", root: "/tmp/state", criuPath: "/tmp/criu", criuImagePath: "/etc", criuWorkPath: "/var/log/x.log.d", shimCgroup: "/" });
    assert.deepEqual(refusedPaths(hostile).sort(), [
      "runtimeOptions.binaryName",
      "runtimeOptions.criuImagePath",
      "runtimeOptions.criuPath",
      "runtimeOptions.criuWorkPath",
      "runtimeOptions.root",
      "runtimeOptions.shimCgroup",
    ]);
    assert.deepEqual(refusedPaths(hostile, { allow: { runtimeOptions: ["binaryName", "root", "criuPath", "criuImagePath", "criuWorkPath", "shimCgroup"] } }), []);
    assert.deepEqual(refusedPaths(hostile, { allow: { runtimeOptions: ["binaryName"] } }).length, 5);
  });

  test("binaryName \"runc\" (ctr run --runc-binary runc, containerd 1.7/2.x fixtures) is the default, not a choice", () => {
    assert.deepEqual(refusedPaths(withOptions({ binaryName: "runc" })), []);
    assert.deepEqual(refusedPaths(withOptions({ binaryName: "/usr/sbin/runc" })), ["runtimeOptions.binaryName"]);
    assert.deepEqual(refusedPaths(withOptions({ binaryName: "crun" })), ["runtimeOptions.binaryName"]);
  });

  test("systemdCgroup is shown, not refused", () => {
    const result = evaluatePolicy(withOptions({ systemdCgroup: true }));
    assert.deepEqual(result.refused, []);
    assert.deepEqual(result.summary.runtimeOptions, ["systemdCgroup=true"]);
  });

  test("fields this provider does not know, and options of another type, need privileged", () => {
    assert.deepEqual(refusedPaths(withOptions({}, [12])), ["runtimeOptions.field12"]);
    const other = input(ctrRunSpec(), { name: RUNC, options: { typeUrl: "containerd.linux.runc.RuncOptions", unknownFields: [] } });
    assert.deepEqual(refusedPaths(other), ["runtimeOptions"]);
    assert.deepEqual(refusedPaths(other, { privileged: true }), []);
  });

  test("runtimes outside the allow-list are refused unless listed", () => {
    const kata = input(ctrRunSpec(), { name: "io.containerd.kata.v2" });
    assert.deepEqual(refusedPaths(kata), ["runtime"]);
    assert.deepEqual(refusedPaths(kata, { allow: { runtimes: ["io.containerd.kata.v2"] } }), []);
  });
});

describe("privileged, the error and the summary", () => {
  const everything = specWith((s) => {
    for (const c of CATEGORIES) c.edit(s);
  });

  test("privileged: true admits every category and still reports what it admitted", () => {
    const refused = evaluatePolicy(input(everything));
    assert.ok(refused.refused.length >= 25, `expected every category refused, got ${refused.refused.length}`);
    const admitted = evaluatePolicy(input(everything), { privileged: true });
    assert.deepEqual(admitted.refused, []);
    assert.equal(admitted.admitted.length, refused.refused.length);
  });

  test("enforcePolicy throws policy-violation listing every refused field with its allowance", () => {
    let error: unknown;
    try {
      enforcePolicy(input(everything), {}, "checkpoint/app:v1@sha256:abc");
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof RestoreError);
    assert.equal(error.code, "policy-violation");
    assert.equal(error.violations.length, evaluatePolicy(input(everything)).refused.length);
    for (const v of error.violations) assert.ok(error.message.includes(`${v.path}: `), `message names ${v.path}`);
    assert.match(error.message, /spec\.hooks\.prestart\[0\]: runs \/bin\/sh on the host as root \(prestart hook\) \(admit with allow\.hooks: true\)/);
    assert.match(error.message, /privileged: true to admit everything/);
  });

  test("the one-line grant of a step preview: nothing for ctr run's spec, each category otherwise", () => {
    assert.equal(grantsBeyondDefault(evaluatePolicy(input(ctrRunSpec())).summary), "nothing beyond an ordinary container");
    const hooked = specWith((s) => (s.hooks = { prestart: [{ path: "/bin/sh" }] }));
    assert.equal(grantsBeyondDefault(evaluatePolicy(input(hooked), { allow: { hooks: true } }).summary), "hooks: prestart: /bin/sh");
    assert.match(grantsBeyondDefault(evaluatePolicy(input(everything), { privileged: true }).summary), /host namespaces: .*; capabilities: .*CAP_SYS_ADMIN.*; host mounts: .*; devices: .*; hooks: /);
  });

  test("the summary tells what a checkpoint would get, line by line", () => {
    const lines = summaryLines(evaluatePolicy(input(everything), { privileged: true }).summary);
    const line = (prefix: string) => lines.find((l) => l.startsWith(prefix)) ?? "";
    assert.match(line("host namespaces:"), /pid \(shared with the host\)/);
    assert.match(line("capabilities beyond default:"), /CAP_SYS_ADMIN/);
    assert.match(line("host mounts:"), /\/ → \/host \(read-write\)/);
    assert.match(line("hooks:"), /prestart: \/bin\/sh/);
    assert.match(line("devices:"), /\/dev\/sda/);
    assert.match(line("runtime annotations:"), /org\.criu\.config=\/tmp\/evil\.conf/);
    assert.equal(line("no new privileges:"), "no new privileges: false");
  });
});

describe("allowances are validated by one rule", () => {
  test("a valid allowance set has no problem", () => {
    assert.deepEqual(
      allowanceProblems({ hooks: true, hostNamespaces: ["network"], capabilities: ["CAP_NET_ADMIN"], hostMounts: ["/srv/data"], devices: ["/dev/fuse", "c 10:229", "netdev/eth1"], runtimeOptions: ["noNewKeyring"], runtimes: ["io.containerd.runsc.v1"], annotations: ["org.criu.config"], sysctls: ["kernel.core_pattern"] }),
      [],
    );
  });

  test("each bad entry is named by its path", () => {
    const problems = allowanceProblems({ hostNamespaces: ["net"], capabilities: ["SYS_ADMIN"], hostMounts: ["srv/data", "/srv/../etc"], devices: ["fuse"], hooks: "yes", tmpfs: true });
    assert.deepEqual(problems.map((p) => p.path).sort(), [
      "allow.capabilities[0]",
      "allow.devices[0]",
      "allow.hooks",
      "allow.hostMounts[0]",
      "allow.hostMounts[1]",
      "allow.hostNamespaces[0]",
      "allow.tmpfs",
    ]);
    assert.match(problems.find((p) => p.path === "allow.hostNamespaces[0]")!.message, /not a namespace type/);
  });

  test("allow must be an object", () => {
    assert.deepEqual(allowanceProblems(["hooks"]).map((p) => p.path), ["allow"]);
  });
});

describe("runc options on the wire", () => {
  test("every field is read back, and fields the schema lacks are listed, not passed", () => {
    const encoded = encodeRuncOptions({ binaryName: "/x/fake-runc", root: "/r", criuWorkPath: "/w", systemdCgroup: true, ioUid: 300 });
    assert.deepEqual(fieldNumbers(encoded).sort((a, b) => a - b), [4, 6, 7, 9, 11]);
    const unknown = Buffer.concat([encoded, Buffer.from([0x62, 0x03, 0x61, 0x62, 0x63])]); // field 12, "abc"
    const decoded = decodeRuncOptions(unknown);
    assert.equal(decoded.options.binaryName, "/x/fake-runc");
    assert.equal(decoded.options.criuWorkPath, "/w");
    assert.equal(decoded.options.ioUid, 300);
    assert.deepEqual(decoded.unknownFields, [12]);
    assert.deepEqual(fieldNumbers(encodeRuncOptions(decoded.options)).includes(12), false);
    assert.throws(() => fieldNumbers(Buffer.from([0x32, 0x09, 0x61])), /runs past the end/);
  });
});

describe("host paths an allowance admits stay inside it once symlinks resolve (local daemon)", () => {
  const plan = (spec: Record<string, any>) => ({ spec, runtime: { name: RUNC }, checkpoint: { ref: "checkpoint/app:v1", digest: "sha256:x" } });

  test("every host path the hostMounts allowance governs is listed once: binds, other host-sourced mounts, the seccomp listener", () => {
    const spec = specWith((s) => {
      s.mounts.push({ destination: "/d", type: "bind", source: "/srv/data/../data/x", options: ["rbind"] });
      s.mounts.push({ destination: "/disk", type: "ext4", source: "/dev/vda", options: [] });
      s.linux.seccomp = { defaultAction: "SCMP_ACT_ERRNO", listenerPath: "/run/agent.sock" };
    });
    assert.deepEqual(hostPaths(spec), [
      { path: "spec.mounts[7]", source: "/srv/data/x" },
      { path: "spec.mounts[8]", source: "/dev/vda" },
      { path: "spec.linux.seccomp.listenerPath", source: "/run/agent.sock" },
    ]);
    assert.deepEqual(hostPaths(ctrRunSpec()), []);
  });

  test("a device-mount source and a seccomp listener reached through a planted symlink are refused; real paths inside pass", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "host-paths-"));
    try {
      const allowed = path.join(root, "allowed");
      fs.mkdirSync(allowed);
      fs.writeFileSync(path.join(allowed, "real.sock"), "");
      fs.symlinkSync("/", path.join(allowed, "escape"));
      const allow = { hostMounts: [allowed] };
      const hostile = specWith((s) => {
        s.mounts.push({ destination: "/disk", type: "ext4", source: path.join(allowed, "escape", "dev", "vda"), options: [] });
        s.linux.seccomp = { defaultAction: "SCMP_ACT_ERRNO", listenerPath: path.join(allowed, "escape", "run", "x.sock") };
      });
      assert.deepEqual(refusedPaths(input(hostile), { allow }), [], "the pure policy admits both by prefix");
      const err = await assertHostPathsResolveInside(plan(hostile), { allow }).then(
        () => assert.fail("a symlink escape was admitted"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RestoreError);
      assert.equal(err.code, "policy-violation");
      assert.deepEqual(err.violations.map((v) => v.path), ["spec.mounts[7]", "spec.linux.seccomp.listenerPath"]);
      assert.match(err.violations[1].grant, /resolves through a symlink to \/run\/x\.sock, outside the allowed host paths/);
      const inside = specWith((s) => (s.linux.seccomp = { defaultAction: "SCMP_ACT_ERRNO", listenerPath: path.join(allowed, "real.sock") }));
      await assertHostPathsResolveInside(plan(inside), { allow });
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
