/**
 * The hostile-input corpus: a table of bad inputs (container ids, namespaces,
 * addresses, refs, resource options, and checkpoint indexes and blobs written
 * byte for byte with the harness). Each one must be refused with a typed error
 * that names the field or the index entry (RestoreError with its code and
 * subject, a check failure naming the property, or a ContainerdError from
 * connect), without crashing, and the daemon must hold exactly what it held
 * before (containers, tasks, snapshots, leases, images, content, ingests).
 * Companion to bad-input.test.ts, whose cases are not repeated here.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  ContainerdError,
  RestoreError,
  connect,
  inspect,
  planRestore,
  restore,
  teardown,
  type ContainerdClient,
  type ContainerdErrorCode,
  type RestoreErrorCode,
  type RestoreOptions,
  type RestorePlan,
} from "../../provider/index";
import { check } from "../../provider/pulumi/restored-container";
import { validateInputs } from "../../provider/pulumi/inputs";
import {
  Annotation,
  anyBlob,
  SPEC_TYPE_URL,
  assertInventoryUnchanged,
  daemonSuite,
  makeLegacyCheckpoint,
  MediaType,
  takeInventory,
  uniqueId,
  writeCustomIndex,
  type CustomIndexOptions,
  type Descriptor,
  type ImageIndex,
  type LegacyCheckpoint,
} from "../harness";

const MAX_INDEX_BYTES = 512 * 1024;

let legacy: LegacyCheckpoint;
/** A plan of the good checkpoint: restore-option cases fail before using it. */
let goodPlan: RestorePlan;

const unhandled: unknown[] = [];
const onUnhandled = (err: unknown): void => void unhandled.push(err);
before(() => void process.on("unhandledRejection", onUnhandled));
after(() => void process.off("unhandledRejection", onUnhandled));

const suite = daemonSuite({
  connect: (d) => connect(d.address, { namespace: d.namespace }),
  checkpoints: { good: { ref: "checkpoint/hostile-good:v1" } },
  setUp: async ({ d, client, checkpoints }) => {
    legacy = await makeLegacyCheckpoint(d, checkpoints.good, "checkpoint/hostile-legacy:v1");
    goodPlan = await planRestore(client, checkpoints.good.ref);
  },
});

// ---------------------------------------------------------------------------
// Building blocks for hostile indexes and blobs

const digestOf = (data: Buffer | string): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;
/** A digest no blob on the daemon has. */
const absent = (what: string): string => digestOf(`hostile-input: never written: ${what}`);

/** A copy of the good checkpoint's index with `edit` applied. */
function edited(edit: (index: ImageIndex) => void, base: ImageIndex = suite.checkpoints.good.index): ImageIndex {
  const index = structuredClone(base);
  edit(index);
  return index;
}

function entry(index: ImageIndex, mediaType: string): Descriptor {
  const found = index.manifests.find((m) => m.mediaType === mediaType);
  assert.ok(found, `fixture index has a ${mediaType} entry`);
  return found;
}

/** The good index with the `mediaType` entry pointing at `data` (to be added as an extra blob). */
const pointing = (mediaType: string, data: Buffer, base?: ImageIndex): ImageIndex =>
  edited((i) => {
    const e = entry(i, mediaType);
    e.digest = digestOf(data);
    e.size = data.length;
  }, base);

/** The good index with the `mediaType` entry pointing at a digest the daemon lacks. */
const dangling = (mediaType: string, base?: ImageIndex): ImageIndex =>
  edited((i) => {
    entry(i, mediaType).digest = absent(mediaType);
  }, base);

/** The good index naming `name` as its base image. */
const basedOn = (name: string): ImageIndex => edited((i) => void (i.annotations![Annotation.ociRefName] = name));

let refSerial = 0;
const freshRef = (stem: string): string => `hostile/${stem}-${++refSerial}:v1`;

/** Writes an image record for a hostile base image (manifest, list or anything) and returns its name. */
async function writeBase(target: object | string, extra: Buffer[] = [], mediaType: string = MediaType.ociManifest): Promise<string> {
  const name = freshRef("base");
  await writeCustomIndex(suite.d, name, target, extra, { targetMediaType: mediaType });
  return name;
}

const manifestJson = (config: { digest: string; size: number }) => ({
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  config: { mediaType: MediaType.ociConfig, ...config },
  layers: [{ mediaType: MediaType.ociLayerGzip, digest: suite.image.layerDigest, size: 1 }],
});

// ---------------------------------------------------------------------------
// The corpus

type Expect =
  /** A RestoreError with this code (or one of these), whose subject and message name the culprit. */
  | { restoreError: RestoreErrorCode | RestoreErrorCode[]; subject: string | RegExp; message: string | RegExp }
  /** validateInputs / the provider's check: a failure for this property. */
  | { checkFailure: string; reason: string | RegExp }
  /** connect(): a ContainerdError with this code, naming the address. */
  | { containerdError: ContainerdErrorCode; message: string | RegExp };

interface Case {
  group: string;
  name: string;
  /** Puts the hostile fixture on the daemon (before the inventory is taken); returns a ref for `attempt`. */
  setup?: () => Promise<string>;
  /** The attempt; its error (or, for check cases, its result) is judged against `expect`. */
  attempt: (ref: string) => Promise<unknown>;
  expect: Expect;
}

const cases: Case[] = [];
let refused = 0;

/** Plans and restores `ref` like a user would; an unexpected success is torn down and fails the case. */
async function planAndRestore(ref: string, via: ContainerdClient = suite.client, options: Partial<RestoreOptions> = {}): Promise<unknown> {
  const plan = await planRestore(via, ref);
  const result = await restore(via, plan, { id: uniqueId("hostile"), ...options });
  await teardown(via, result.id, { graceMs: 300 });
  assert.fail(`restore of ${ref} succeeded (pid ${result.pid}); expected a refusal`);
}

/** Inputs as the SDK sends them, valid except for `bad`. */
function rawInputs(bad: Record<string, unknown>): Record<string, unknown> {
  return {
    checkpoint: suite.checkpoints.good.ref,
    address: suite.d.address,
    namespace: suite.d.namespace,
    resourceName: "hostile",
    stopTimeoutSeconds: 1,
    ...bad,
  };
}

const matches = (text: string, want: string | RegExp): boolean => (typeof want === "string" ? text.includes(want) : want.test(text));
const show = (s: string): string => JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…(${s.length})` : s);

// Container ids: the library (restore) and the resource's `name` input.
const badIds = [
  "../escape",
  "ns/../../etc",
  "a\\b",
  "/abs",
  "a".repeat(300),
  `${"c".repeat(40)}-${"d".repeat(36)}`, // 77 characters, each otherwise fine
  "has space",
  " lead-space",
  "tab\there",
  "café",
  "容器",
  "emoji-😀",
  "-leading-dash",
  "trailing-dash-",
  ".hidden",
  "double--dash",
  "nul\u0000byte",
  "line\nbreak",
  "",
];
for (const id of badIds) {
  cases.push({
    group: "container ids",
    name: `restore() with id ${show(id)}`,
    attempt: () => restore(suite.client, goodPlan, { id }),
    expect: { restoreError: "invalid-id", subject: "id", message: `id "${id}"` },
  });
  cases.push({
    group: "container ids",
    name: `name input ${show(id)}`,
    attempt: async () => validateInputs(rawInputs({ name: id })),
    expect: { checkFailure: "name", reason: `name "${id}"` },
  });
}

// Namespaces: containerd's identifier rule. The daemon's own answer for the ASCII ones is
// InvalidArgument "namespace validation: identifier … must match …" (for "" FailedPrecondition
// "namespace is required"), and grpc-js throws a plain Error for a non-ASCII header value;
// planRestore checks first and throws a typed invalid-option naming the namespace.
const badNamespaces = ["bad/ns", "../up", "-lead", "trail-", "with space", "x".repeat(77), "", "café", "a..b", "名前空間"];
for (const namespace of badNamespaces) {
  cases.push({
    group: "namespaces",
    name: `namespace input ${show(namespace)}`,
    attempt: async () => validateInputs(rawInputs({ namespace })),
    expect: { checkFailure: "namespace", reason: `namespace "${namespace}"` },
  });
  cases.push({
    group: "namespaces",
    name: `planRestore over a client connected with namespace ${show(namespace)}`,
    attempt: async () => {
      const bad = connect(suite.d.address, { namespace });
      try {
        return await planAndRestore(suite.checkpoints.good.ref, bad);
      } finally {
        bad.close();
      }
    },
    expect: { restoreError: "invalid-option", subject: "namespace", message: `namespace "${namespace}"` },
  });
}
// inspect and teardown pass containerd's answer on, typed (ASCII names only: see the report).
for (const namespace of ["bad/ns", "-lead"]) {
  for (const [what, call] of [
    ["inspect", (c: ContainerdClient) => inspect(c, "anything")],
    ["teardown", (c: ContainerdClient) => teardown(c, "anything", { graceMs: 0 })],
  ] as const) {
    cases.push({
      group: "namespaces",
      name: `${what} over a client connected with namespace ${show(namespace)}`,
      attempt: async () => {
        const bad = connect(suite.d.address, { namespace });
        try {
          await call(bad);
        } finally {
          bad.close();
        }
        assert.fail(`${what} in namespace ${namespace} succeeded`);
      },
      expect: { restoreError: "daemon-error", subject: /^$|^undefined$/, message: new RegExp(`namespace validation: identifier "${namespace.replace(/[/.-]/g, "\\$&")}"`) },
    });
  }
}

// Addresses.
const badAddresses = [
  "http://localhost:2375",
  "npipe:////./pipe/containerd-containerd",
  "unix://run/containerd/containerd.sock",
  "unix:containerd.sock",
  "containerd.sock",
  "./containerd.sock",
  "tcp://localhost:0",
  "tcp://localhost:65536",
  "tcp://localhost:port",
  "tcp://localhost",
  "tcp://:2375",
  "tcp://localhost:-1",
  "",
];
for (const address of badAddresses) {
  cases.push({
    group: "addresses",
    name: `address input ${show(address)}`,
    attempt: async () => validateInputs(rawInputs({ address })),
    expect: { checkFailure: "address", reason: `address "${address}"` },
  });
  cases.push({
    group: "addresses",
    name: `connect(${show(address)})`,
    attempt: async () => {
      connect(address, { namespace: suite.d.namespace }).close();
      assert.fail(`connect(${address}) accepted the address`);
    },
    expect: { containerdError: "invalid-argument", message: `address "${address}"` },
  });
}
cases.push(
  {
    group: "addresses",
    name: "plaintext tcp:// without tls or insecure (input)",
    attempt: async () => validateInputs(rawInputs({ address: "tcp://127.0.0.1:2375" })),
    expect: { checkFailure: "address", reason: /plaintext TCP/ },
  },
  {
    group: "addresses",
    name: "plaintext tcp:// without tls or insecure (connect)",
    attempt: async () => {
      connect("tcp://127.0.0.1:2375", { namespace: suite.d.namespace }).close();
      assert.fail("connect accepted plaintext tcp://");
    },
    expect: { containerdError: "invalid-argument", message: /address "tcp:\/\/127\.0\.0\.1:2375": tcp:\/\/ needs TLS/ },
  },
);

// Checkpoint refs.
const badRefs = ["", " ", "checkpoint/hostile-good:v1 ", "checkpoint/hostile good:v1", "checkpoint/hostile-good:v1\n", "\tcheckpoint/hostile-good:v1"];
for (const ref of badRefs) {
  cases.push({
    group: "checkpoint refs",
    name: `checkpoint input ${show(ref)}`,
    attempt: async () => validateInputs(rawInputs({ checkpoint: ref })),
    expect: { checkFailure: "checkpoint", reason: /^checkpoint must/ },
  });
  cases.push({
    group: "checkpoint refs",
    name: `planRestore(${show(ref)})`,
    attempt: () => planAndRestore(ref),
    expect: { restoreError: "checkpoint-not-found", subject: "checkpoint", message: `checkpoint image ${ref} not found` },
  });
}

// Other resource inputs and restore options.
const badInputs: [string, Record<string, unknown>, string, string | RegExp][] = [
  ["checkpoint missing", { checkpoint: undefined }, "checkpoint", /checkpoint is required/],
  ["checkpoint not a string", { checkpoint: 42 }, "checkpoint", /checkpoint is required/],
  ["relative logPath", { logPath: "logs/counter.log" }, "logPath", /absolute path/],
  ["negative stopTimeoutSeconds", { stopTimeoutSeconds: -1 }, "stopTimeoutSeconds", /0|small/i],
  ["fractional stopTimeoutSeconds", { stopTimeoutSeconds: 1.5 }, "stopTimeoutSeconds", /int/i],
  ["unknown stopSignal", { stopSignal: "SIGNOPE" }, "stopSignal", /SIGNOPE/],
  ["reserved label", { labels: { "containerd-restore/checkpoint-digest": "sha256:0" } }, "labels.containerd-restore/checkpoint-digest", /written by the provider/],
  ["live as a string", { live: "yes" }, "live", /boolean/i],
  ["resourceName missing", { resourceName: undefined }, "resourceName", /./],
  ["empty tls.ca", { tls: { ca: "", cert: "x", key: "y" }, address: "tcp://127.0.0.1:2375" }, "tls.ca", /PEM/],
];
for (const [name, bad, property, reason] of badInputs) {
  cases.push({ group: "resource inputs", name, attempt: async () => validateInputs(rawInputs(bad)), expect: { checkFailure: property, reason } });
}
const badOptions: [string, Partial<RestoreOptions>, string, string | RegExp][] = [
  ["relative logPath", { logPath: "counter.log" }, "logPath", /logPath must be an absolute path/],
  ["unknown stopSignal", { stopSignal: "SIGNOPE" }, "stopSignal", /stopSignal .*SIGNOPE/],
  ["a label under the provider's prefix", { labels: { "containerd-restore/owner": "me" } }, "labels", /labels must not set containerd-restore\/owner/],
];
for (const [name, options, subject, message] of badOptions) {
  cases.push({
    group: "restore options",
    name,
    attempt: () => restore(suite.client, goodPlan, { id: uniqueId("hostile"), ...options }),
    expect: { restoreError: "invalid-option", subject, message },
  });
}

// Checkpoint indexes and the blobs they point at, through planRestore + restore.
function indexCase(
  name: string,
  index: () => object | string,
  expect: Expect,
  extra: () => Buffer[] = () => [],
  options: CustomIndexOptions = {},
): void {
  cases.push({
    group: "checkpoint indexes",
    name,
    setup: async () => (await writeCustomIndex(suite.d, freshRef("index"), index(), extra(), options)).ref,
    attempt: (ref) => planAndRestore(ref),
    expect,
  });
}
const refusal = (restoreError: RestoreErrorCode | RestoreErrorCode[], subject: string | RegExp, message: string | RegExp): Expect => ({ restoreError, subject, message });

// Not JSON / not an index.
indexCase("index of NUL and control bytes", () => "\u0000\u0001\u0002\u001b[0m", refusal("index-not-json", /^checkpoint index /, /is not JSON/));
indexCase("index cut off mid-way", () => JSON.stringify(suite.checkpoints.good.index).slice(0, 200), refusal("index-not-json", /^checkpoint index /, /is not JSON/));
indexCase("index with trailing garbage", () => `${JSON.stringify(suite.checkpoints.good.index)} trailing`, refusal("index-not-json", /^checkpoint index /, /is not JSON/));
indexCase("index in YAML", () => "schemaVersion: 2\nmanifests:\n  - mediaType: x\n", refusal("index-not-json", /^checkpoint index /, /is not JSON/));
indexCase("index `null`", () => "null", refusal("index-invalid", "(top level)", /\(top level\)/));
indexCase("index `[]`", () => "[]", refusal("index-invalid", "(top level)", /\(top level\)/));
indexCase("index nested 200 000 arrays deep", () => `${"[".repeat(200_000)}${"]".repeat(200_000)}`, refusal("json-too-deep", /^checkpoint index .*: (\[0\])+$/, /nested more than 32 levels deep; the limit is 32/));
indexCase("schemaVersion as a string", () => edited((i) => void ((i as { schemaVersion: unknown }).schemaVersion = "2")), refusal("index-invalid", "schemaVersion", /schemaVersion: .*number/));
indexCase("no manifests array", () => edited((i) => void delete (i as Partial<ImageIndex>).manifests), refusal("index-invalid", "manifests", /manifests: /));
indexCase("manifests as an object", () => edited((i) => void ((i as { manifests: unknown }).manifests = { 0: i.manifests[0] })), refusal("index-invalid", "manifests", /manifests: /));
indexCase(
  "an annotation that is not a string",
  () => edited((i) => void ((i.annotations as Record<string, unknown>)[Annotation.checkpointRuntime] = 2)),
  refusal("index-invalid", `annotations.${Annotation.checkpointRuntime}`, Annotation.checkpointRuntime),
);
indexCase(
  "annotations smuggled through __proto__",
  () => `{"schemaVersion":2,"manifests":[],"annotations":{"__proto__":{"${Annotation.checkpointRuntime}":"io.containerd.runc.v2"}}}`,
  refusal(["not-a-checkpoint", "index-invalid"], /annotations/, /annotations|not a containerd checkpoint/),
);
indexCase(
  "an entry digest in upper case",
  () => edited((i) => void (entry(i, MediaType.criuCheckpoint).digest = entry(i, MediaType.criuCheckpoint).digest.toUpperCase().replace("SHA256", "sha256"))),
  refusal("index-invalid", /^manifests\[\d+\]\.digest$/, /manifests\[\d+\]\.digest: not an OCI digest/),
);
indexCase("an entry with a negative size", () => edited((i) => void (entry(i, MediaType.checkpointConfig).size = -1)), refusal("index-invalid", /^manifests\[\d+\]\.size$/, /manifests\[\d+\]\.size/));
indexCase("an entry with an empty media type", () => edited((i) => void (i.manifests[1].mediaType = "")), refusal("index-invalid", "manifests[1].mediaType", /manifests\[1\]\.mediaType: empty media type/));
indexCase(
  "an empty runtime annotation",
  () => edited((i) => void (i.annotations![Annotation.checkpointRuntime] = "")),
  refusal("index-invalid", `annotations.${Annotation.checkpointRuntime}`, /runtime name\) is missing or empty/),
);
indexCase(
  "no base image name annotation",
  () => edited((i) => void delete i.annotations![Annotation.ociRefName]),
  refusal("index-invalid", `annotations.${Annotation.ociRefName}`, /base image name\) is missing or empty/),
);
indexCase(
  "unknown media types on every entry",
  () => edited((i) => i.manifests.forEach((m, n) => (m.mediaType = `application/x-hostile-${n}`))),
  refusal("index-invalid", "manifests[0].mediaType", /unknown media types: manifests\[0\] \(application\/x-hostile-0\), manifests\[1\]/),
);
indexCase(
  "an image whose target is not an index",
  () => edited(() => undefined),
  refusal("not-a-checkpoint", "checkpoint", /is not a checkpoint: its target is application\/octet-stream/),
  () => [],
  { targetMediaType: "application/octet-stream" },
);

// Huge: the plan refuses on the target's size, without reading the blob.
cases.push({
  group: "checkpoint indexes",
  name: "an index over 512 KiB is refused before it is read",
  setup: async () => {
    const padded = edited((i) => void (i.annotations!["hostile.padding"] = "p".repeat(MAX_INDEX_BYTES)));
    return (await writeCustomIndex(suite.d, freshRef("huge"), padded)).ref;
  },
  attempt: async (ref) => {
    const spy = connect(suite.d.address, { namespace: suite.d.namespace });
    const streamed: string[] = [];
    const stream = spy.stream.bind(spy);
    spy.stream = ((method, request, options) => {
      streamed.push(method);
      return stream(method, request, options);
    }) as typeof spy.stream;
    try {
      await planAndRestore(ref, spy);
    } catch (err) {
      assert.deepEqual(streamed, [], "no blob was read");
      throw err;
    } finally {
      spy.close();
    }
  },
  expect: refusal("index-too-large", "checkpoint", /checkpoint index of .* is 52\d{4} bytes; refusing more than 524288/),
});

// Entries pointing at blobs the daemon does not have.
indexCase("CRIU image entry at a missing digest", () => dangling(MediaType.criuCheckpoint), refusal("missing-blob", "CRIU image", /CRIU image sha256:\w+ .*not in the daemon's content store/));
indexCase("config (spec) entry at a missing digest", () => dangling(MediaType.checkpointConfig), refusal("missing-blob", "checkpoint config", /checkpoint config sha256:\w+ .*not in the daemon's content store/));
indexCase("rw layer entry at a missing digest", () => dangling(MediaType.ociLayerGzip), refusal("missing-blob", "rw layer", /rw layer sha256:\w+ .*not in the daemon's content store/));
indexCase("runtime options entry at a missing digest", () => dangling(MediaType.checkpointRuntimeOptions), refusal("missing-blob", "runtime options", /runtime options sha256:\w+ .*not in the daemon's content store/));
indexCase("base manifest entry at a missing digest", () => dangling(MediaType.ociManifest), refusal("missing-blob", "base image manifest", /base image manifest sha256:\w+ .*not in the daemon's content store/));
indexCase("legacy: base manifest entry at a missing digest", () => dangling(MediaType.dockerManifest, legacy.index), refusal("missing-blob", "base image manifest", /base image manifest sha256:\w+ .*not in the daemon's content store/));

// The spec (config Any) and the runtime options.
const specCase = (name: string, blob: () => Buffer, message: RegExp): void =>
  indexCase(name, () => pointing(MediaType.checkpointConfig, blob()), refusal("malformed-spec", /checkpoint config|^sha256:/, message), () => [blob()]);
specCase("spec Any with the spec type URL and invalid JSON", () => anyBlob(SPEC_TYPE_URL, "{ \"ociVersion\": \"1.0.2\", process: }"), /checkpoint spec sha256:\w+ is not JSON/);
specCase("spec Any with the spec type URL and an empty value", () => anyBlob(SPEC_TYPE_URL, ""), /checkpoint spec sha256:\w+ is not JSON/);
specCase("spec Any with the spec type URL and JSON that is not a spec", () => anyBlob(SPEC_TYPE_URL, '{"process":"sh -c counter"}'), /is not an OCI runtime spec/);
specCase("an empty Any (type URL and value both empty)", () => anyBlob("", ""), /holds an empty Any/);
specCase("an Any of another type", () => anyBlob("types.containerd.io/opencontainers/runtime-spec/1/Process", "{}"), /holds types\.containerd\.io\/opencontainers\/runtime-spec\/1\/Process, not/);
specCase("a config Any whose type URL runs past the end of the blob", () => Buffer.from([0x0a, 0x7f, ...Buffer.from(SPEC_TYPE_URL)]), /checkpoint config is not a serialized google\.protobuf\.Any: index out of range/);
const optionsCase = (name: string, blob: () => Buffer): void =>
  indexCase(
    name,
    () => pointing(MediaType.checkpointRuntimeOptions, blob()),
    refusal("malformed-runtime-options", "runtime options", /runtime options is not a serialized google\.protobuf\.Any/),
    () => [blob()],
  );
optionsCase("runtime options of 0xff bytes", () => Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
optionsCase("runtime options of text", () => Buffer.from("runtime: runc\nshim: v2\n"));
// A type URL whose length runs past the end of the blob (protobufjs's Buffer reader clamps strings silently).
optionsCase("runtime options with a truncated type URL", () => Buffer.from([0x0a, 0x7f, ...Buffer.from("containerd.runc.v1.Options")]));

// The base image: its manifest, config and snapshot.
const baseCase = (name: string, build: () => Promise<string>, expect: Expect): void => {
  cases.push({
    group: "base images",
    name,
    setup: async () => (await writeCustomIndex(suite.d, freshRef("index"), basedOn(await build()))).ref,
    attempt: (ref) => planAndRestore(ref),
    expect,
  });
};
const neverUnpacked = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [absent("layer diff id")] } }));
baseCase(
  "a base image whose diff_id was never unpacked (no snapshot for the chain id)",
  () => writeBase(manifestJson({ digest: digestOf(neverUnpacked), size: neverUnpacked.length }), [neverUnpacked]),
  refusal("base-image-not-unpacked", "image", new RegExp(`parent snapshot ${absent("layer diff id")} is missing`)),
);
baseCase("a base manifest that is not JSON", () => writeBase("<manifest>not json</manifest>"), refusal("base-image-invalid", /^manifest sha256:/, /manifest sha256:\w+ is not JSON/));
baseCase("a base manifest without a config", () => writeBase({ schemaVersion: 2, layers: [] }), refusal("base-image-invalid", "config", /manifest sha256:\w+: config: /));
const configNotJson = Buffer.from("{ rootfs: layers }");
baseCase(
  "a base image config that is not JSON",
  () => writeBase(manifestJson({ digest: digestOf(configNotJson), size: configNotJson.length }), [configNotJson]),
  refusal("base-image-invalid", /^image config sha256:/, /image config sha256:\w+ is not JSON/),
);
const configNoRootfs = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux" }));
baseCase(
  "a base image config without rootfs",
  () => writeBase(manifestJson({ digest: digestOf(configNoRootfs), size: configNoRootfs.length }), [configNoRootfs]),
  refusal("base-image-invalid", "rootfs", /image config sha256:\w+: rootfs: /),
);
baseCase(
  "a base manifest whose config blob is missing",
  () => writeBase(manifestJson({ digest: absent("base config"), size: 100 })),
  refusal("missing-blob", "base image config", /base image config sha256:\w+ .*not in the daemon's content store/),
);
baseCase(
  "a base manifest list without this platform",
  () =>
    writeBase(
      { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociManifest, digest: suite.image.manifestDigest, size: 1, platform: { os: "linux", architecture: "hostile-arch" } }] },
      [],
      MediaType.ociIndex,
    ),
  refusal("no-matching-platform", "image", /has no manifest for linux\//),
);

// Legacy (ctr tasks checkpoint) indexes.
indexCase(
  "legacy index without a base image entry",
  () => edited((i) => void (i.manifests = i.manifests.filter((m) => m.mediaType !== MediaType.dockerManifest)), legacy.index),
  refusal("index-invalid", "manifests", /legacy checkpoint has no base image manifest entry/),
);
const legacyManifestNotJson = Buffer.from("this is no manifest");
indexCase(
  "legacy base manifest entry at a blob that is not JSON",
  () => pointing(MediaType.dockerManifest, legacyManifestNotJson, legacy.index),
  refusal("base-image-invalid", /^manifest sha256:/, /manifest sha256:\w+ is not JSON/),
  () => [legacyManifestNotJson],
);

// The same refusals through the Pulumi provider's check: a failure on `checkpoint`, never a throw.
const checkCase = (name: string, index: () => object | string, reason: RegExp, extra: () => Buffer[] = () => []): void => {
  cases.push({
    group: "provider check",
    name,
    setup: async () => (await writeCustomIndex(suite.d, freshRef("check"), index(), extra())).ref,
    attempt: (ref) => check({}, rawInputs({ checkpoint: ref })),
    expect: { checkFailure: "checkpoint", reason },
  });
};
checkCase("check: an index that is not JSON", () => "]{", /is not JSON/);
checkCase("check: an index over 512 KiB", () => edited((i) => void (i.annotations!["hostile.padding"] = "p".repeat(MAX_INDEX_BYTES + 1))), /refusing more than 524288/);
checkCase("check: a spec that is not JSON", () => pointing(MediaType.checkpointConfig, anyBlob(SPEC_TYPE_URL, "nope")), /is not JSON/, () => [anyBlob(SPEC_TYPE_URL, "nope")]);
checkCase("check: unknown media types on every entry", () => edited((i) => i.manifests.forEach((m) => (m.mediaType = "text/plain"))), /unknown media types/);

// ---------------------------------------------------------------------------
// Running the table

function judge(c: Case, threw: boolean, outcome: unknown): void {
  const e = c.expect;
  if ("checkFailure" in e) {
    assert.equal(threw, false, `${c.name}: check threw instead of reporting a failure: ${outcome}`);
    const failures = (outcome as { failures?: { property: string; reason: string }[] }).failures ?? [];
    const failure = failures.find((f) => f.property === e.checkFailure);
    assert.ok(failure, `${c.name}: expected a failure for ${e.checkFailure}, got ${JSON.stringify(failures)}`);
    assert.ok(matches(failure.reason, e.reason), `${c.name}: reason ${JSON.stringify(failure.reason)} does not match ${e.reason}`);
    return;
  }
  assert.equal(threw, true, `${c.name}: nothing was thrown`);
  if ("containerdError" in e) {
    assert.ok(outcome instanceof ContainerdError, `${c.name}: expected a ContainerdError, got ${outcome}`);
    assert.equal(outcome.code, e.containerdError, outcome.message);
    assert.ok(matches(outcome.message, e.message), `${c.name}: message ${JSON.stringify(outcome.message)} does not match ${e.message}`);
    return;
  }
  assert.ok(outcome instanceof RestoreError, `${c.name}: expected a RestoreError, got ${(outcome as Error)?.stack ?? outcome}`);
  const codes = Array.isArray(e.restoreError) ? e.restoreError : [e.restoreError];
  assert.ok(codes.includes(outcome.code), `${c.name}: code ${outcome.code}, expected ${codes.join(" or ")}: ${outcome.message}`);
  assert.ok(matches(String(outcome.subject), e.subject), `${c.name}: subject ${JSON.stringify(outcome.subject)} does not match ${e.subject} (${outcome.message})`);
  assert.ok(matches(outcome.message, e.message), `${c.name}: message ${JSON.stringify(outcome.message)} does not match ${e.message}`);
  assert.deepEqual(outcome.cleanupErrors, [], `${c.name}: cleanup errors`);
}

const groups = [...new Set(cases.map((c) => c.group))];
for (const group of groups) {
  describe(group, () => {
    for (const c of cases.filter((x) => x.group === group)) {
      test(c.name, async () => {
        const ref = c.setup ? await c.setup() : "";
        const inventory = await takeInventory(suite.d);
        let threw = false;
        let outcome: unknown;
        try {
          outcome = await c.attempt(ref);
        } catch (err) {
          threw = true;
          outcome = err;
        }
        judge(c, threw, outcome);
        assert.ok(suite.d.pid !== undefined, "the daemon is still running");
        await assertInventoryUnchanged(suite.d, inventory, `after ${c.name}`);
        refused++;
      });
    }
  });
}

test("corpus: every bad input was refused cleanly", () => {
  console.log(`hostile-input corpus: ${refused} of ${cases.length} bad inputs refused cleanly (${groups.map((g) => `${g} ${cases.filter((c) => c.group === g).length}`).join(", ")})`);
  assert.deepEqual(unhandled, [], "no unhandled rejections");
  assert.equal(refused, cases.length);
  assert.ok(refused >= 25, `only ${refused} bad inputs`);
});
