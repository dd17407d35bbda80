/** Pure decoding: formats, entries, chain ids, addresses, specs, inputs. No daemon. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chainId, decodeCheckpointIndex } from "../../provider/checkpoint";
import { selectPlatform } from "../../provider/checkpoint/decode";
import { decodeMessage, encodeMessage, messageType, parseAddress } from "../../provider/containerd";
import { RestoreError } from "../../provider/errors";
import { specForContainer } from "../../provider/restore/steps";
import { containerIdFor, UNKNOWN, validateInputs } from "../../provider/pulumi/inputs";
import { check } from "../../provider/pulumi/restored-container";
import { invalidIdReason } from "../../provider/restore";

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const entry = (mediaType: string, n: number, extra: object = {}) => ({ mediaType, digest: d(n), size: 10 * n, ...extra });
const CRIU = "application/vnd.containerd.container.criu.checkpoint.criu.tar";
const CONFIG = "application/vnd.containerd.container.checkpoint.config.v1+proto";
const OPTS = "application/vnd.containerd.container.checkpoint.runtime.options+proto";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

const modern = {
  schemaVersion: 2,
  manifests: [entry(OPTS, 1), entry(MANIFEST, 2), entry(LAYER, 3), entry(CRIU, 4), entry(CONFIG, 5)],
  annotations: {
    "io.containerd.checkpoint.runtime": "io.containerd.runc.v2",
    "io.containerd.checkpoint.snapshotter": "overlayfs",
    "org.opencontainers.image.ref.name": "docker.io/library/counter:1",
  },
};

function decodeError(index: unknown): RestoreError {
  try {
    decodeCheckpointIndex(Buffer.from(typeof index === "string" ? index : JSON.stringify(index)), "test");
  } catch (err) {
    assert.ok(err instanceof RestoreError);
    return err;
  }
  assert.fail("decoded without error");
}

describe("checkpoint index decoding", () => {
  test("a modern index names runtime, snapshotter, base image and every entry", () => {
    const index = decodeCheckpointIndex(Buffer.from(JSON.stringify(modern)), "test");
    assert.equal(index.format, "modern");
    assert.equal(index.imageName, "docker.io/library/counter:1");
    assert.equal(index.runtime, "io.containerd.runc.v2");
    assert.equal(index.snapshotter, "overlayfs");
    assert.equal(index.criuImage?.digest, d(4));
    assert.equal(index.config?.digest, d(5));
    assert.equal(index.rwLayer?.digest, d(3));
    assert.equal(index.runtimeOptions?.digest, d(1));
  });

  test("a legacy index (schemaVersion 0, image.name, Docker manifest, any layer type) decodes with defaults", () => {
    const legacy = {
      schemaVersion: 0,
      manifests: [entry(CRIU, 4), entry(CONFIG, 5), entry("application/vnd.docker.distribution.manifest.v2+json", 2), entry("application/vnd.oci.image.layer.v1.tar", 3)],
      annotations: { "image.name": "docker.io/library/counter:1" },
    };
    const index = decodeCheckpointIndex(Buffer.from(`${JSON.stringify(legacy)}\n`), "test");
    assert.equal(index.format, "legacy");
    assert.equal(index.schemaVersion, 0);
    assert.equal(index.runtime, "io.containerd.runc.v2");
    assert.equal(index.snapshotter, "overlayfs");
    assert.equal(index.rwLayer?.mediaType, "application/vnd.oci.image.layer.v1.tar");
    assert.equal(index.baseImage?.digest, d(2));
  });

  test("only index-level annotations decide the format", () => {
    const err = decodeError({ schemaVersion: 2, manifests: [entry(MANIFEST, 2, { annotations: { "org.opencontainers.image.ref.name": "x" } })] });
    assert.equal(err.code, "not-a-checkpoint");
  });

  test("an empty snapshotter annotation is refused (containerd's own check misses it)", () => {
    const err = decodeError({ ...modern, annotations: { ...modern.annotations, "io.containerd.checkpoint.snapshotter": "" } });
    assert.equal(err.code, "index-invalid");
    assert.match(err.message, /io\.containerd\.checkpoint\.snapshotter/);
  });

  test("the re-checkpoint bug's index (no CRIU, no config) is named as such", () => {
    const err = decodeError({ ...modern, manifests: modern.manifests.slice(0, 3) });
    assert.equal(err.code, "incomplete-checkpoint");
    assert.match(err.message, /re-checkpoint bug/);
  });

  test("malformed JSON and malformed entries name what is wrong", () => {
    assert.equal(decodeError("{nope").code, "index-not-json");
    const err = decodeError({ ...modern, manifests: [...modern.manifests.slice(0, 4), { mediaType: CONFIG, digest: "sha256:xyz", size: 1 }] });
    assert.equal(err.code, "index-invalid");
    assert.match(err.message, /manifests\[4\]\.digest: not an OCI digest/);
  });

  test("platform selection picks the host's manifest from a list", () => {
    const list = [entry(MANIFEST, 6, { platform: { os: "linux", architecture: "arm64" } }), entry(MANIFEST, 7, { platform: { os: "linux", architecture: "amd64" } })];
    assert.equal(selectPlatform(list, { os: "linux", architecture: "amd64" })?.digest, d(7));
    assert.equal(selectPlatform(list, { os: "linux", architecture: "s390x" }), undefined);
  });
});

describe("chain id", () => {
  test("follows the image-spec formula", () => {
    assert.equal(chainId([]), "");
    assert.equal(chainId([d(1)]), d(1));
    // printf "sha256:111… sha256:222…" | sha256sum
    assert.equal(chainId([d(1), d(2)]), "sha256:9932074217c35353d2e03a3f5a86549f7c67bfeb0ba53e23d69f4d4c8f7958f5");
  });
});

describe("daemon addresses", () => {
  test("unix, bare paths and tcp parse; other schemes are refused with the reason", () => {
    assert.deepEqual(parseAddress("unix:///run/containerd/containerd.sock"), { kind: "unix", path: "/run/containerd/containerd.sock" });
    assert.deepEqual(parseAddress("/tmp/c.sock"), { kind: "unix", path: "/tmp/c.sock" });
    assert.deepEqual(parseAddress("tcp://10.0.0.1:1234"), { kind: "tcp", host: "10.0.0.1", port: 1234 });
    assert.throws(() => parseAddress("http://x:1"), /unsupported scheme "http"/);
    assert.throws(() => parseAddress("unix://relative.sock"), /must be absolute/);
    assert.throws(() => parseAddress("tcp://host:99999"), /port from 1 to 65535/);
  });
});

describe("spec rewrite", () => {
  test("moves the cgroup to the new container and leaves the original spec alone", () => {
    const spec = { process: { args: ["sh"] }, linux: { cgroupsPath: "/default/original" } };
    assert.equal((specForContainer(spec, "ns1", "copy-1").linux as { cgroupsPath: string }).cgroupsPath, "/ns1/copy-1");
    assert.equal(spec.linux.cgroupsPath, "/default/original");
    const systemd = { process: {}, linux: { cgroupsPath: "system.slice:containerd:original" } };
    assert.equal((specForContainer(systemd, "ns1", "copy-1").linux as { cgroupsPath: string }).cgroupsPath, "system.slice:containerd:copy-1");
  });
});

describe("protobuf Any", () => {
  test("round-trips with a camelCase typeUrl like every other message", () => {
    const any = messageType("google.protobuf.Any");
    const bytes = encodeMessage(any, { typeUrl: "containerd.runc.v1.Options", value: Buffer.from([1, 2]) });
    assert.deepEqual(bytes.subarray(0, 2), Buffer.from([0x0a, 26]));
    const back = decodeMessage<{ typeUrl: string; value: Uint8Array }>(any, bytes);
    assert.equal(back.typeUrl, "containerd.runc.v1.Options");
    assert.deepEqual(Buffer.from(back.value), Buffer.from([1, 2]));
  });
});

describe("resource inputs", () => {
  test("defaults apply and failures name the property", () => {
    const ok = validateInputs({ checkpoint: "checkpoint/a:v1", resourceName: "web" });
    assert.equal(ok.inputs?.address, "unix:///run/containerd/containerd.sock");
    assert.equal(ok.inputs?.namespace, "default");
    assert.equal(ok.inputs?.live, true);
    const bad = validateInputs({ checkpoint: "has space", name: "a/b", address: "http://x", stopSignal: "SIGNOPE", resourceName: "web", labels: { "containerd-restore/mode": "x" } });
    const byProperty = Object.fromEntries(bad.failures.map((f) => [f.property, f.reason]));
    assert.match(byProperty.checkpoint, /without spaces/);
    assert.match(byProperty.name, /must be letters/);
    assert.match(byProperty.address, /unsupported scheme/);
    assert.match(byProperty.stopSignal, /unknown signal/);
    assert.match(byProperty["labels.containerd-restore/mode"], /written by the provider/);
  });

  test("signals outside 1–64 and labels under the provider's prefix are refused", () => {
    for (const stopSignal of ["0", "99999"]) {
      const { failures } = validateInputs({ checkpoint: "c:1", resourceName: "web", stopSignal });
      assert.match(failures.find((f) => f.property === "stopSignal")?.reason ?? "", /out of range/, stopSignal);
    }
    const { failures } = validateInputs({ checkpoint: "c:1", resourceName: "web", labels: { "containerd-restore/anything": "x" } });
    assert.match(failures[0]?.reason ?? "", /written by the provider/);
  });

  test("preview with unknown TLS material or stop signal does not reach for the daemon", async () => {
    for (const unknown of [{ tls: UNKNOWN }, { insecure: UNKNOWN }, { insecure: true, stopSignal: UNKNOWN }]) {
      const result = await check({}, { checkpoint: "c:1", address: "tcp://127.0.0.1:9", resourceName: "web", ...unknown });
      assert.equal(result.failures, undefined, JSON.stringify(result.failures));
      const waitsFor = Object.keys(unknown).filter((k) => (unknown as Record<string, unknown>)[k] === UNKNOWN).join(", ");
      assert.deepEqual((result.inputs?.plan as { step: string; waitsFor: string }[]).map((s) => [s.step, s.waitsFor]), [["restore", waitsFor]], "no daemon plan: the plan says what it waits for");
      assert.equal(result.inputs?.containerId, undefined, "an auto-name is create's: unknown in preview");
    }
  });

  test("zod's generic messages are in the project's words, naming the property", () => {
    const reasons = (news: Record<string, unknown>) =>
      Object.fromEntries(validateInputs({ checkpoint: "c:1", resourceName: "web", ...news }).failures.map((f) => [f.property, f.reason]));
    assert.deepEqual(reasons({ stopTimeoutSeconds: -1 }), { stopTimeoutSeconds: "stopTimeoutSeconds must be ≥ 0" });
    assert.deepEqual(reasons({ stopTimeoutSeconds: 4000 }), { stopTimeoutSeconds: "stopTimeoutSeconds must be ≤ 3600" });
    assert.deepEqual(reasons({ stopTimeoutSeconds: 1.5 }), { stopTimeoutSeconds: "stopTimeoutSeconds must be a whole number of seconds" });
    assert.deepEqual(reasons({ live: "yes" }), { live: "live must be true or false" });
    assert.deepEqual(reasons({ labels: { a: 1 } }), { "labels.a": "labels.a must be a string" });
    assert.match(reasons({ labels: { "containerd-restore/x": "y" } })["labels.containerd-restore/x"], /keys under containerd-restore\/ .*are reserved/);
  });

  test("unknown values (preview) are passed through, not validated", () => {
    const { inputs, failures } = validateInputs({ checkpoint: UNKNOWN, resourceName: "web" });
    assert.deepEqual(failures, []);
    assert.equal(inputs?.checkpoint, UNKNOWN);
  });

  test("auto-names are stable (the same in preview and up), new for a replacement, and fit containerd's 76 characters", () => {
    const inputs = validateInputs({ checkpoint: "c:1", resourceName: "my app/" + "x".repeat(100), owner: "p/s/my app" }).inputs!;
    const id = containerIdFor(inputs, "sha256:aa");
    assert.ok(id.length <= 76, id);
    assert.match(id, /^my-app-x+-[0-9a-f]{7}$/);
    assert.equal(containerIdFor(inputs, "sha256:aa"), id, "the same inputs give the same name");
    assert.notEqual(containerIdFor(inputs, "sha256:bb"), id, "a new checkpoint digest (a replacement) gives a new name");
    assert.notEqual(containerIdFor({ ...inputs, namespace: "other" }, "sha256:aa"), id);
    assert.notEqual(containerIdFor({ ...inputs, owner: "p/other-stack/my app" }, "sha256:aa"), id, "another stack's resource gets another name");
    assert.equal(containerIdFor({ ...inputs, name: "fixed" }, "sha256:aa"), "fixed");
    // A cut that ends on a separator must not leave "--" before the suffix.
    const edge = validateInputs({ checkpoint: "c:1", resourceName: `${"a".repeat(67)}-b` }).inputs!;
    assert.equal(invalidIdReason(containerIdFor(edge, undefined)), undefined);
  });
});
