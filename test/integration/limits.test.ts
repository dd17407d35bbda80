/**
 * Bounded decoding and reads (issue 8, item 5): oversize, deep and wide specs,
 * huge and wide indexes against a real daemon, and a trickling or stalled
 * daemon (a fake gRPC server: a real one cannot trickle on demand). Each must
 * fail with its typed RestoreError, naming the blob and the limit, within a
 * stated time, and with a bounded peak RSS: every case runs planRestore (or the
 * provider's check) in a fresh child process whose peak RSS is its own. The
 * daemon is left as it was. Also: terminal escapes in a daemon's error message
 * never reach the error or the check failure.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { RestoreError, connect, planRestore, type ContainerdClient } from "../../provider/index";
import { decodeMessage, messageType } from "../../provider/containerd/proto";
import { check } from "../../provider/pulumi/restored-container";
import {
  MediaType,
  SPEC_TYPE_URL,
  anyBlob,
  assertInventoryUnchanged,
  importBaseImage,
  makeCheckpoint,
  readContent,
  startContainerd,
  takeInventory,
  writeCustomIndex,
  type Checkpoint,
  type ImageIndex,
  type PrivateContainerd,
} from "../harness";
import { FakeStatus, startFakeDaemon, type FakeDaemon } from "../harness/fake-daemon";

const MiB = 1024 * 1024;
const CHILD = path.join(__dirname, "limits.child.js");

let d: PrivateContainerd;
let client: ContainerdClient;
let checkpoint: Checkpoint;
let goodSpec: Record<string, unknown>;
/** Figures for the report: case → outcome, time, peak RSS. */
const figures: string[] = [];

before(async () => {
  d = await startContainerd();
  client = connect(d.address, { namespace: d.namespace });
  const image = await importBaseImage(d);
  checkpoint = await makeCheckpoint(d, { ref: "checkpoint/limits:v1", image });
  const config = checkpoint.index.manifests.find((m) => m.mediaType === MediaType.checkpointConfig)!;
  const any = decodeMessage<{ value: Uint8Array }>(messageType("google.protobuf.Any"), await readContent(d, config.digest));
  goodSpec = JSON.parse(Buffer.from(any.value).toString("utf8")) as Record<string, unknown>;
});

after(async () => {
  client?.close();
  await d?.stop();
  console.log(`limits figures:\n  ${figures.join("\n  ")}`);
});

const digestOf = (data: Buffer | string): string => `sha256:${createHash("sha256").update(data).digest("hex")}`;

let serial = 0;
/** The checkpoint with its spec replaced by `specJson` (its entry's size as given, or the true one). */
async function withSpec(specJson: string, claimedSize?: number): Promise<string> {
  const blob = anyBlob(SPEC_TYPE_URL, specJson);
  const index = structuredClone(checkpoint.index) as ImageIndex;
  const entry = index.manifests.find((m) => m.mediaType === MediaType.checkpointConfig)!;
  entry.digest = digestOf(blob);
  entry.size = claimedSize ?? blob.length;
  return (await writeCustomIndex(d, `limits/spec-${++serial}:v1`, index, [blob])).ref;
}

interface ChildResult {
  outcome: { digest?: string; code?: string; subject?: string; message?: string; thrown?: string; failures?: { property: string; reason: string }[] };
  ms: number;
  baselineKiB: number;
  peakKiB: number;
}

/** planRestore (or check) of `ref` in a fresh process. */
async function inChild(mode: "plan" | "check", ref: string, address = d.address): Promise<ChildResult> {
  const { stdout } = await promisify(execFile)(process.execPath, [CHILD, mode, address, d.namespace, ref], { maxBuffer: 16 * MiB, timeout: 120_000 });
  return JSON.parse(stdout.trim().split("\n").pop()!) as ChildResult;
}

const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;

/** Runs one case in a child, checks code, subject, message, time and memory, and records the figures. */
async function limitCase(
  name: string,
  ref: string,
  expect: { code: string; subject: RegExp; message: RegExp; withinMs: number; extraRssMiB: number },
  address?: string,
): Promise<ChildResult> {
  const inventory = address ? undefined : await takeInventory(d);
  const result = await inChild("plan", ref, address);
  const { outcome } = result;
  assert.equal(outcome.thrown, undefined, `${name}: threw ${outcome.thrown}: ${outcome.message}`);
  assert.equal(outcome.code, expect.code, `${name}: ${outcome.code}: ${outcome.message}`);
  assert.match(String(outcome.subject), expect.subject, `${name}: subject`);
  assert.match(String(outcome.message), expect.message, `${name}: message`);
  assert.ok(result.ms < expect.withinMs, `${name}: took ${result.ms.toFixed(0)} ms, bound ${expect.withinMs} ms`);
  const extra = (result.peakKiB - result.baselineKiB) / 1024;
  assert.ok(extra < expect.extraRssMiB, `${name}: peak RSS ${mib(result.peakKiB)} is ${extra.toFixed(0)} MiB over the baseline ${mib(result.baselineKiB)}; bound ${expect.extraRssMiB} MiB`);
  figures.push(`${name}: ${outcome.code} in ${result.ms.toFixed(0)} ms (bound ${expect.withinMs} ms), peak RSS ${mib(result.peakKiB)} (process at start ${mib(result.baselineKiB)})`);
  if (inventory) await assertInventoryUnchanged(d, inventory, `after ${name}`);
  return result;
}

describe("specs", () => {
  test("the good checkpoint plans (the baseline figure)", async () => {
    const result = await inChild("plan", checkpoint.ref);
    assert.equal(result.outcome.digest, checkpoint.digest, JSON.stringify(result.outcome));
    figures.push(`good checkpoint: planned in ${result.ms.toFixed(0)} ms, peak RSS ${mib(result.peakKiB)} (process at start ${mib(result.baselineKiB)})`);
  });

  test("a 16 MiB spec is refused from its descriptor, before a byte is read", async () => {
    const spec = JSON.stringify({ ...goodSpec, annotations: { padding: "p".repeat(16 * MiB) } });
    await limitCase("16 MiB spec", await withSpec(spec), {
      code: "blob-too-large",
      subject: /^checkpoint config$/,
      message: /checkpoint config sha256:\w+ is 16\d{6} bytes; the limit is 1048576 bytes \(1 MiB\)/,
      withinMs: 2_000,
      extraRssMiB: 32,
    });
  });

  test("a 16 MiB spec behind a descriptor that claims 4 KiB is cut off at 4 KiB", async () => {
    const spec = JSON.stringify({ ...goodSpec, annotations: { padding: "p".repeat(16 * MiB) } });
    await limitCase("16 MiB spec, descriptor says 4 KiB", await withSpec(spec, 4096), {
      code: "size-mismatch",
      subject: /^checkpoint config$/,
      message: /read more than 4096 bytes, but its descriptor says 4096/,
      withinMs: 2_000,
      extraRssMiB: 32,
    });
  });

  test("a spec nested 6,000 levels deep is json-too-deep, in planRestore and in check", async () => {
    const deep = `${'{"a":'.repeat(6000)}1${"}".repeat(6000)}`;
    const spec = JSON.stringify({ ...goodSpec, annotations: undefined }).replace(/}$/, `,"x-deep":${deep}}`);
    const ref = await withSpec(spec);
    await limitCase("spec 6,000 levels deep", ref, {
      code: "json-too-deep",
      subject: /^checkpoint spec sha256:\w+: x-deep(\.a)+$/,
      message: /nested more than 32 levels deep; the limit is 32/,
      withinMs: 2_000,
      extraRssMiB: 32,
    });
    const viaCheck = await inChild("check", ref);
    const failure = viaCheck.outcome.failures?.find((f) => f.property === "checkpoint");
    assert.ok(failure, `check reports a failure on checkpoint: ${JSON.stringify(viaCheck.outcome)}`);
    assert.match(failure.reason, /nested more than 32 levels deep/);
  });

  test("a spec with 60,000 annotations (under 1 MiB) is too-many-entries", async () => {
    const annotations = Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`k${i}`, ""]));
    await limitCase("spec with 60,000 annotations", await withSpec(JSON.stringify({ ...goodSpec, annotations })), {
      code: "too-many-entries",
      subject: /^checkpoint spec sha256:\w+: annotations$/,
      message: /annotations has more than 10000 entries; the limit is 10000/,
      withinMs: 2_000,
      extraRssMiB: 32,
    });
  });

  test("a spec with 5,000 environment variables is too-many-entries at process.env", async () => {
    const env = Array.from({ length: 5000 }, (_, i) => `V${i}=1`);
    const spec = { ...goodSpec, process: { ...(goodSpec.process as object), env } };
    await limitCase("spec with 5,000 env entries", await withSpec(JSON.stringify(spec)), {
      code: "too-many-entries",
      subject: /: process\.env$/,
      message: /process\.env has more than 4096 entries; the limit is 4096/,
      withinMs: 2_000,
      extraRssMiB: 32,
    });
  });

  test("the largest spec admitted (just under 1 MiB) plans, at a bounded cost", async () => {
    const base = JSON.stringify({ ...goodSpec, annotations: { padding: "" } });
    const spec = base.replace('"padding":""', `"padding":"${"p".repeat(MiB - base.length - 256)}"`);
    const ref = await withSpec(spec);
    const result = await inChild("plan", ref);
    assert.ok(result.outcome.digest, `planned: ${JSON.stringify(result.outcome)}`);
    const extra = (result.peakKiB - result.baselineKiB) / 1024;
    assert.ok(extra < 64, `peak RSS ${mib(result.peakKiB)}, ${extra.toFixed(0)} MiB over the start`);
    figures.push(`largest admitted spec (${spec.length} bytes): planned in ${result.ms.toFixed(0)} ms, peak RSS ${mib(result.peakKiB)} (process at start ${mib(result.baselineKiB)})`);
  });
});

describe("indexes", () => {
  test("an index of 600 KiB is refused from the image record, before it is read", async () => {
    const index = structuredClone(checkpoint.index) as ImageIndex;
    index.annotations = { ...index.annotations, padding: "p".repeat(600 * 1024) };
    const { ref } = await writeCustomIndex(d, "limits/huge-index:v1", index);
    await limitCase("600 KiB index", ref, {
      code: "index-too-large",
      subject: /^checkpoint$/,
      message: /is 61\d{4} bytes; refusing more than 524288/,
      withinMs: 2_000,
      extraRssMiB: 32,
    });
  });

  test("an index with 100,000 entries (under 512 KiB) is too-many-entries at manifests", async () => {
    const index = { ...checkpoint.index, manifests: Array.from({ length: 100_000 }, () => ({})) };
    const { ref } = await writeCustomIndex(d, "limits/wide-index:v1", index);
    await limitCase("index with 100,000 entries", ref, {
      code: "too-many-entries",
      subject: /^checkpoint index .*: manifests$/,
      message: /manifests has more than 64 entries; the limit is 64/,
      withinMs: 2_000,
      extraRssMiB: 32,
    });
  });
});

describe("slow and hostile daemons (fake gRPC server)", () => {
  const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [], annotations: { padding: "p".repeat(4096) } }));
  const target = { mediaType: MediaType.ociIndex, digest: digestOf(indexBytes), size: indexBytes.length };
  const imagesGet = () => ({ image: { name: "slow/checkpoint:v1", target } });
  let fake: FakeDaemon | undefined;
  after(async () => fake?.stop());

  test("a daemon that trickles the index one byte every 100 ms: read-timeout at the 15 s deadline", async () => {
    fake = await startFakeDaemon({
      "images.Get": imagesGet,
      "content.Read": async (_req, send, call) => {
        for (let i = 0; i < indexBytes.length && !call.cancelled; i++) {
          send({ offset: i, data: indexBytes.subarray(i, i + 1) });
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      },
    });
    const result = await limitCase(
      "daemon trickling 10 bytes/s",
      "slow/checkpoint:v1",
      { code: "read-timeout", subject: /^checkpoint index$/, message: /stalled: not finished after \d+ ms \(deadline 15000 ms\)/, withinMs: 17_000, extraRssMiB: 32 },
      fake.address,
    );
    assert.ok(result.ms >= 14_500, `the deadline, not something else, ended it (${result.ms.toFixed(0)} ms)`);
    await fake.stop();
    fake = undefined;
  });

  test("a daemon that goes silent after the first chunk: read-timeout after 5 s without data", async () => {
    fake = await startFakeDaemon({
      "images.Get": imagesGet,
      "content.Read": async (_req, send, call) => {
        send({ offset: 0, data: indexBytes.subarray(0, 100) });
        while (!call.cancelled) await new Promise((resolve) => setTimeout(resolve, 50));
      },
    });
    const result = await limitCase(
      "daemon silent after one chunk",
      "slow/checkpoint:v1",
      { code: "read-timeout", subject: /^checkpoint index$/, message: /stalled: no data for 5000 ms/, withinMs: 7_000, extraRssMiB: 32 },
      fake.address,
    );
    assert.ok(result.ms >= 4_500, `the stall timer ended it (${result.ms.toFixed(0)} ms)`);
    assert.ok(fake.cancelled.includes("content.Read"), "the read was cancelled on the daemon's side");
    await fake.stop();
    fake = undefined;
  });

  test("a daemon that never answers Images.Get: read-timeout at the 10 s metadata deadline, naming the call", async () => {
    fake = await startFakeDaemon({ "images.Get": () => new Promise(() => undefined) });
    const result = await limitCase(
      "daemon silent on Images.Get",
      "slow/checkpoint:v1",
      { code: "read-timeout", subject: /^images\.Get$/, message: /images\.Get: .*[Dd]eadline exceeded.*did not answer this metadata read within its deadline/, withinMs: 12_000, extraRssMiB: 32 },
      fake.address,
    );
    assert.ok(result.ms >= 9_500, `the deadline ended it (${result.ms.toFixed(0)} ms)`);
    await fake.stop();
    fake = undefined;
  });

  test("a daemon that sends more than the descriptor's size: size-mismatch at once", async () => {
    fake = await startFakeDaemon({
      "images.Get": imagesGet,
      "content.Read": async (_req, send) => {
        send({ offset: 0, data: Buffer.concat([indexBytes, Buffer.from("extra")]) });
      },
    });
    await limitCase(
      "daemon sending more than the descriptor says",
      "slow/checkpoint:v1",
      { code: "size-mismatch", subject: /^checkpoint index$/, message: new RegExp(`read more than ${indexBytes.length} bytes`), withinMs: 2_000, extraRssMiB: 32 },
      fake.address,
    );
    await fake.stop();
    fake = undefined;
  });

  test("terminal escapes and control characters in a daemon's message never reach the error or check's failure", async () => {
    const hostile = "\u001b[2J\u001b]0;owned\u0007boom\r\n\u001b[1A\u202eFAKE: restore succeeded\u0008\u0000";
    fake = await startFakeDaemon({ "images.Get": () => Promise.reject(new FakeStatus(grpc.status.INTERNAL, hostile)) });
    const fakeClient = connect(fake.address, { namespace: d.namespace });
    try {
      const err = await planRestore(fakeClient, "any/checkpoint:v1").catch((e: unknown) => e);
      assert.ok(err instanceof RestoreError, String(err));
      assert.equal(err.code, "daemon-error");
      assert.match(err.message, /images\.Get: boom FAKE: restore succeeded$/);
      assert.doesNotMatch(err.message, /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e]/);
      const checked = await check({}, { checkpoint: "any/checkpoint:v1", address: fake.address, namespace: d.namespace, resourceName: "limits" });
      const reason = checked.failures?.find((f) => f.property === "checkpoint")?.reason ?? "";
      assert.match(reason, /boom FAKE: restore succeeded/);
      assert.doesNotMatch(reason, /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e]/);
    } finally {
      fakeClient.close();
      await fake.stop();
      fake = undefined;
    }
  });
});
