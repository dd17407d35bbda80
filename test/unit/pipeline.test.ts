/**
 * The pieces a copy is pipelined with, without a daemon: the byte-bounded queue
 * and read-ahead (backpressure both ways), the blob codecs against protobufjs
 * (round trips, views not copies, malformed input), the range reader (ranges,
 * prefetch, digest and size checks) and the writer that does not wait for each
 * answer (and flushes what it sent when its source fails).
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import {
  BlobError,
  BoundedQueue,
  decodeReadContentResponse,
  messageType,
  readAhead,
  readChunks,
  writeBlob,
  writeContentRequestEncoder,
  type ContainerdClient,
} from "../../provider/containerd";
import { methodCodec } from "../../provider/containerd/proto";
import { release } from "../../provider/containerd/blob-codec";

const tick = () => new Promise((resolve) => setImmediate(resolve));
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

describe("BoundedQueue", () => {
  test("a push beyond the budget waits until the consumer takes; order is kept", async () => {
    const q = new BoundedQueue(10);
    await q.push(Buffer.alloc(6, 1));
    let second = false;
    const pushing = q.push(Buffer.alloc(6, 2)).then(() => (second = true));
    await tick();
    assert.equal(second, false, "6 + 6 > 10: the producer waits");
    assert.equal((await q.shift())![0], 1);
    await pushing;
    assert.equal(second, true);
    assert.equal((await q.shift())![0], 2);
    assert.equal(q.size, 0);
  });

  test("a chunk larger than the budget is let in alone (no deadlock)", async () => {
    const q = new BoundedQueue(4);
    assert.equal(await q.push(Buffer.alloc(100)), true);
    assert.equal((await q.shift())!.length, 100);
  });

  test("a consumer waiting gets the next push; after close, what is queued and then the end", async () => {
    const q = new BoundedQueue(100);
    const waiting = q.shift();
    await q.push(Buffer.from("a"));
    assert.equal((await waiting)!.toString(), "a");
    await q.push(Buffer.from("b"));
    q.close();
    assert.equal((await q.shift())!.toString(), "b");
    assert.equal(await q.shift(), undefined);
    assert.equal(await q.push(Buffer.from("c")), false, "nothing is queued after close");
  });

  test("a failure reaches the consumer after the chunks before it", async () => {
    const q = new BoundedQueue(100);
    await q.push(Buffer.from("a"));
    q.fail(new Error("broken"));
    assert.equal((await q.shift())!.toString(), "a");
    await assert.rejects(q.shift(), /broken/);
  });
});

/** A source of `n` chunks of `size` bytes that counts how many were pulled and whether it was returned. */
function countingSource(n: number, size: number) {
  const state = { pulled: 0, returned: false };
  const source = (async function* () {
    try {
      for (let i = 0; i < n; i++) {
        state.pulled++;
        yield Buffer.alloc(size, i);
      }
    } finally {
      state.returned = true;
    }
  })();
  return { source, state };
}

describe("readAhead", () => {
  test("reads ahead while the consumer is busy, no further than the budget (backpressure)", async () => {
    const { source, state } = countingSource(100, 10);
    const it = readAhead(source, 35)[Symbol.asyncIterator]();
    assert.equal((await it.next()).value![0], 0);
    for (let i = 0; i < 10; i++) await tick();
    // 3 chunks (30 bytes) queued, a 4th waiting for room: never 100.
    assert.ok(state.pulled >= 3 && state.pulled <= 5, `pulled ${state.pulled}`);
    let n = 1;
    for (let r = await it.next(); !r.done; r = await it.next()) assert.equal(r.value[0], n++);
    assert.equal(n, 100, "every chunk, in order");
  });

  test("stopping early stops the pump and returns the source", async () => {
    const { source, state } = countingSource(100, 10);
    for await (const chunk of readAhead(source, 20)) if (chunk[0] === 2) break;
    for (let i = 0; i < 5; i++) await tick();
    assert.equal(state.returned, true);
    assert.ok(state.pulled < 10, `pulled ${state.pulled}`);
  });

  test("the source's error comes after its chunks", async () => {
    const source = (async function* () {
      yield Buffer.from("a");
      throw new Error("source broke");
    })();
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const c of readAhead(source, 100)) got.push(Buffer.from(c).toString());
      })(),
      /source broke/,
    );
    assert.deepEqual(got, ["a"]);
  });
});

describe("blob codecs", () => {
  const writeType = messageType("containerd.services.content.v1.WriteContentRequest");
  const readType = messageType("containerd.services.content.v1.ReadContentResponse");

  test("a WRITE request framed by hand is what protobufjs reads, field for field", () => {
    const data = randomBytes(70_000);
    const request = { action: "WRITE", ref: "copy-sha256:abc", total: 5_000_000_000, expected: "sha256:abc", offset: 4_294_967_296 + 7, data };
    const encoded = methodCodec("content.Write").encode(request);
    const back = writeType.toObject(writeType.decode(encoded), { longs: Number, enums: String, defaults: true });
    assert.equal(back.action, "WRITE");
    assert.equal(back.ref, request.ref);
    assert.equal(back.total, request.total);
    assert.equal(back.expected, request.expected);
    assert.equal(back.offset, request.offset);
    assert.ok(Buffer.from(back.data).equals(data));
    // Byte for byte what protobufjs itself writes (fields in number order, data last).
    assert.ok(encoded.equals(Buffer.from(writeType.encode(writeType.fromObject(request)).finish())));
  });

  test("requests without data (STAT, COMMIT with labels) go through protobufjs unchanged", () => {
    const encode = writeContentRequestEncoder((m) => Buffer.from(writeType.encode(writeType.fromObject(m)).finish()));
    const commit = { action: "COMMIT", ref: "r", total: 3, expected: "sha256:x", offset: 3, labels: { a: "b" } };
    const back = writeType.toObject(writeType.decode(encode(commit)), { enums: String, longs: Number });
    assert.deepEqual(back.labels, { a: "b" });
    assert.equal(back.action, "COMMIT");
  });

  test("a read answer decodes to a view of the received buffer, not a copy", () => {
    const data = randomBytes(100_000);
    const wire = Buffer.from(readType.encode(readType.fromObject({ offset: 6_000_000_000, data })).finish());
    const decoded = decodeReadContentResponse(wire);
    assert.equal(decoded.offset, 6_000_000_000);
    assert.ok(Buffer.from(decoded.data).equals(data));
    assert.equal(decoded.data.buffer, wire.buffer, "same memory");
    const empty = decodeReadContentResponse(Buffer.alloc(0));
    assert.deepEqual([empty.offset, empty.data.length], [0, 0]);
  });

  test("unknown fields are skipped; truncated or malformed answers are refused", () => {
    // field 9 varint, field 10 fixed64, field 11 bytes, then offset and data.
    const wire = Buffer.concat([Buffer.from([0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 2, 0xaa, 0xbb, 0x08, 0x05, 0x12, 0x03]), Buffer.from("xyz")]);
    const d = decodeReadContentResponse(wire);
    assert.equal(d.offset, 5);
    assert.equal(Buffer.from(d.data).toString(), "xyz");
    assert.throws(() => decodeReadContentResponse(Buffer.from([0x12, 0x05, 1, 2])), /past the end/);
    assert.throws(() => decodeReadContentResponse(Buffer.from([0x08, 0xff])), /truncated varint/);
    assert.throws(() => decodeReadContentResponse(Buffer.from([0x0b])), /wire type 3/);
  });
});

describe("release", () => {
  test("frees a buffer that is a whole allocation of its own (a received message, an encoding)", () => {
    const message = Buffer.allocUnsafe(1024 * 1024 + 5);
    const data = message.subarray(9);
    release(data);
    assert.equal(message.length, 0, "detached: the memory is gone now, not at the next GC");
  });

  test("leaves alone slices of Node's shared pool, small buffers and views of part of a larger buffer", () => {
    const small = Buffer.from("pooled");
    release(small);
    assert.equal(small.toString(), "pooled");
    const big = Buffer.alloc(1024 * 1024, 1);
    const part = big.subarray(0, 512 * 1024);
    release(part);
    assert.equal(big.length, 1024 * 1024, "a view of half of it does not free the rest");
  });

  test("the writer frees the chunks only when they are its own", async () => {
    for (const ownsChunks of [false, true]) {
      const { client } = writingClient();
      const chunks = [Buffer.alloc(128 * 1024, 1), Buffer.alloc(128 * 1024, 2)];
      const whole = Buffer.concat(chunks);
      await writeBlob(client, "ref", { digest: sha256(whole), size: whole.length }, async function* () {
        yield* chunks;
      }, { ownsChunks });
      await tick();
      assert.deepEqual(chunks.map((c) => c.length), ownsChunks ? [0, 0] : [128 * 1024, 128 * 1024]);
    }
  });
});

/** A client whose Content.Read serves `blob` in `chunk`-byte messages, recording each request. */
function readingClient(blob: Buffer, chunk = 1000) {
  const requests: Array<{ offset: number; size: number }> = [];
  const client = {
    address: "unix:///fake.sock",
    async *stream(_method: string, request: { digest: string; offset: number; size: number }) {
      requests.push({ offset: request.offset, size: request.size });
      const end = request.size ? Math.min(blob.length, request.offset + request.size) : blob.length;
      for (let at = request.offset; at < end; at += chunk) {
        await tick();
        yield { offset: at, data: blob.subarray(at, Math.min(end, at + chunk)) };
      }
    },
  } as unknown as ContainerdClient;
  return { client, requests };
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of source) parts.push(c);
  return Buffer.concat(parts);
}

describe("readChunks splits a blob into ranges", () => {
  const blob = randomBytes(10_500);
  const digest = sha256(blob);

  test("one Content.Read per range, exactly as long as the range, bytes in order", async () => {
    const { client, requests } = readingClient(blob);
    const got = await collect(readChunks(client, digest, blob.length, 0, undefined, 4096));
    assert.ok(got.equals(blob));
    assert.deepEqual(requests, [
      { offset: 0, size: 4096 },
      { offset: 4096, size: 4096 },
      { offset: 8192, size: 2308 },
    ]);
  });

  test("the next range's call is opened while the current one is consumed", async () => {
    const { client, requests } = readingClient(blob);
    const it = readChunks(client, digest, blob.length, 0, undefined, 4096)[Symbol.asyncIterator]();
    await it.next(); // the first chunk of range 0
    await tick();
    assert.equal(requests.length, 2, "range 1 is already asked for");
    await it.return?.(undefined);
  });

  test("a resumed read starts at the offset and leaves the digest to the daemon's commit", async () => {
    const { client, requests } = readingClient(blob);
    const got = await collect(readChunks(client, digest, blob.length, 5000, undefined, 4096));
    assert.ok(got.equals(blob.subarray(5000)));
    assert.deepEqual(requests[0], { offset: 5000, size: 4096 });
  });

  test("bytes that hash to another digest are refused before the last chunk is given out", async () => {
    const tampered = Buffer.from(blob);
    tampered[7000] ^= 1;
    const { client } = readingClient(tampered);
    let received = 0;
    const err = await (async () => {
      for await (const c of readChunks(client, digest, blob.length, 0, "criu image", 4096)) received += c.length;
    })().catch((e: unknown) => e);
    assert.ok(err instanceof BlobError && err.code === "digest-mismatch", String(err));
    assert.match(err.message, /criu image/);
    assert.ok(received < blob.length, "the last chunk was withheld");
  });

  test("a range cut short is a size-mismatch naming where the blob ended", async () => {
    const { client } = readingClient(blob);
    const err = await collect(readChunks(client, digest, blob.length + 1000, 0, undefined, 4096)).catch((e: unknown) => e);
    assert.ok(err instanceof BlobError && err.code === "size-mismatch", String(err));
    assert.match(err.message, new RegExp(`read ${blob.length} bytes, but its descriptor says ${blob.length + 1000}`));
  });
});

/** A Content.Write that answers each request only when the test lets it: shows how many WRITEs are sent unanswered. */
function writingClient() {
  const log: string[] = [];
  let ingest = 0;
  const answers: Array<{ offset: number }> = [];
  const state = { sentBeforeFirstAnswer: 0, received: 0, ended: false, cancelled: false, maxUnanswered: 0 };
  const client = {
    address: "unix:///fake.sock",
    async call(method: string) {
      log.push(method);
      return {};
    },
    duplex() {
      return {
        async send(r: { action: string; offset?: number; data?: Uint8Array }, onWritten?: () => void) {
          log.push(r.action);
          setImmediate(() => onWritten?.()); // the transport takes it a little later
          if (r.action === "WRITE") {
            assert.equal(r.offset, ingest, "each WRITE carries the ingest's offset");
            ingest += r.data!.length;
          }
          answers.push({ offset: ingest });
          state.maxUnanswered = Math.max(state.maxUnanswered, answers.length);
          if (state.received <= 1 && r.action === "WRITE") state.sentBeforeFirstAnswer++;
        },
        async receive() {
          await tick();
          state.received++;
          return answers.shift()!;
        },
        end: () => (state.ended = true),
        cancel: () => (state.cancelled = true),
      };
    },
  } as unknown as ContainerdClient;
  return { client, log, state, ingest: () => ingest };
}

describe("writeBlob pipelines its WRITEs", () => {
  test("WRITEs go out without waiting for each answer, each answer is checked, then COMMIT", async () => {
    const { client, log, state } = writingClient();
    const blob = randomBytes(64 * 1024);
    const source = async function* () {
      for (let at = 0; at < blob.length; at += 4096) yield blob.subarray(at, at + 4096);
    };
    const result = await writeBlob(client, "ref", { digest: sha256(blob), size: blob.length }, source);
    assert.equal(result.bytesWritten, blob.length);
    assert.equal(state.sentBeforeFirstAnswer, 16, "all 16 WRITEs were sent before the first WRITE answer was read (within the in-flight budget)");
    assert.equal(log.at(-1), "COMMIT");
    assert.equal(log.filter((a) => a === "WRITE").length, 16);
  });

  test("a source that fails mid-pipeline: what was sent is flushed (half-close, answers read) before the call is cancelled", async () => {
    const { client, state, ingest } = writingClient();
    const source = async function* () {
      yield Buffer.alloc(1000);
      yield Buffer.alloc(1000);
      throw new Error("source broke");
    };
    await assert.rejects(writeBlob(client, "ref", { digest: sha256(Buffer.alloc(5000)), size: 5000 }, source), /source broke/);
    assert.equal(state.ended, true, "half-closed so the daemon takes what was sent");
    assert.equal(state.received, 3, "STAT's answer and both WRITEs' answers were read");
    assert.equal(state.cancelled, true);
    assert.equal(ingest(), 2000);
  });
});
