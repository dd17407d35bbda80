/**
 * The pieces a copy is pipelined with, without a daemon: the byte-bounded queue
 * and read-ahead (backpressure both ways), the blob codecs against protobufjs
 * (round trips, views not copies, malformed input), the streaming decoder of
 * Content.Read's answers (any split, any layout, hostile framing), the range reader (ranges,
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
  STREAM_TUNING,
  readAhead,
  readChunks,
  readContentDecoder,
  writeBlob,
  writeRequestLead,
  type ContainerdClient,
} from "../../provider/containerd";
import { GrpcStatusError } from "../../provider/containerd/grpc-h2";
import { methodCodec } from "../../provider/containerd/proto";

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
    const header = { action: "WRITE", ref: "copy-sha256:abc", total: 5_000_000_000, expected: "sha256:abc", offset: 4_294_967_296 + 7 };
    const request = { ...header, data };
    const lead = writeRequestLead(methodCodec("content.Write").encode(header), data.length);
    const framed = Buffer.concat([lead, data.subarray(0, 1000), data.subarray(1000)]);
    assert.equal(framed[0], 0, "not compressed");
    assert.equal(framed.readUInt32BE(1), framed.length - 5, "gRPC's length prefix covers the message");
    const encoded = framed.subarray(5);
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
    const commit = { action: "COMMIT", ref: "r", total: 3, expected: "sha256:x", offset: 3, labels: { a: "b" } };
    const back = writeType.toObject(writeType.decode(methodCodec("content.Write").encode(commit)), { enums: String, longs: Number });
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


/** `messages` as gRPC frames of ReadContentResponse, encoded by protobufjs or given as raw message bytes. */
function readFrames(messages: Array<{ offset: number; data: Uint8Array } | Buffer>, compressed = false): Buffer {
  const type = messageType("containerd.services.content.v1.ReadContentResponse");
  return Buffer.concat(
    messages.flatMap((m) => {
      const body = Buffer.isBuffer(m) ? m : Buffer.from(type.encode(type.fromObject(m)).finish());
      const prefix = Buffer.alloc(5);
      prefix[0] = compressed ? 1 : 0;
      prefix.writeUInt32BE(body.length, 1);
      return [prefix, body];
    }),
  );
}

/** Feeds `wire` to a fresh decoder in chunks of `step` bytes; the pieces it gave. */
function decodeInChunks(wire: Buffer, step: number, max = 16 * 1024 * 1024): Array<{ offset: number; data: Uint8Array; chunk: Buffer }> {
  const decoder = readContentDecoder(max);
  const pieces: Array<{ offset: number; data: Uint8Array; chunk: Buffer }> = [];
  for (let at = 0; at < wire.length; at += step) {
    const chunk = Buffer.from(wire.subarray(at, at + step)); // a buffer of its own, as node:http2 gives
    for (const p of decoder.push(chunk)) pieces.push({ ...p, chunk });
  }
  decoder.end();
  return pieces;
}

describe("readContentDecoder: Content.Read's answers as they arrive", () => {
  const a = randomBytes(70_000);
  const b = randomBytes(33_333);
  const wire = readFrames([
    { offset: 6_000_000_000, data: a },
    { offset: 6_000_070_000, data: b },
  ]);

  test("split anywhere, the pieces are the data in order, with their blob offsets", () => {
    for (const step of [1, 2, 3, 5, 7, 31, 32, 33, 1000, 16_384, wire.length]) {
      const pieces = decodeInChunks(wire, step);
      assert.ok(Buffer.concat(pieces.map((p) => p.data)).equals(Buffer.concat([a, b])), `step ${step}`);
      let at = 6_000_000_000;
      for (const p of pieces) {
        assert.equal(p.offset, at, `step ${step}: each piece says where it starts`);
        at += p.data.length;
      }
    }
  });

  test("data pieces are views of the received chunks, not copies (at most a message's first few bytes are, when its header straddles two chunks)", () => {
    for (const step of [16_384, 70_010, 3]) {
      const pieces = decodeInChunks(wire, step);
      const copied = pieces.filter((p) => p.data.buffer !== p.chunk.buffer).reduce((n, p) => n + p.data.length, 0);
      assert.ok(copied <= 2 * 32, `step ${step}: ${copied} bytes copied for two messages`);
    }
    const whole = decodeInChunks(wire, wire.length);
    assert.equal(whole.length, 2, "one piece per message when the chunk holds it all");
  });

  test("other layouts are decoded whole by protobuf's rules: data before offset, data twice (the last wins), unknown fields", () => {
    const dataFirst = Buffer.concat([Buffer.from([0x12, 3]), Buffer.from("abc"), Buffer.from([0x08, 0x07])]);
    const twice = Buffer.concat([Buffer.from([0x08, 0x02, 0x12, 3]), Buffer.from("old"), Buffer.from([0x12, 3]), Buffer.from("new")]);
    const unknown = Buffer.concat([Buffer.from([0x48, 0x96, 0x01, 0x5a, 2, 0xaa, 0xbb, 0x08, 0x05, 0x12, 0x03]), Buffer.from("xyz")]);
    for (const step of [1, 4, 100]) {
      const pieces = decodeInChunks(readFrames([dataFirst, twice, unknown]), step);
      assert.deepEqual(
        pieces.map((p) => [p.offset, Buffer.from(p.data).toString()]),
        [
          [7, "abc"],
          [2, "new"],
          [5, "xyz"],
        ],
        `step ${step}`,
      );
    }
  });

  test("an empty message and one with only an offset give no piece", () => {
    assert.deepEqual(decodeInChunks(readFrames([Buffer.alloc(0), Buffer.from([0x08, 0x09])]), 1), []);
  });

  test("hostile framing is refused with a gRPC status: compressed, larger than the limit, malformed, cut inside a message", () => {
    const status = (fn: () => unknown): GrpcStatusError => {
      try {
        fn();
      } catch (err) {
        assert.ok(err instanceof GrpcStatusError, String(err));
        return err;
      }
      assert.fail("not refused");
    };
    assert.match(status(() => decodeInChunks(readFrames([{ offset: 0, data: a }], true), 1000)).details, /compressed/);
    const big = status(() => decodeInChunks(wire, 1000, 50_000));
    assert.equal(big.code, 8, "RESOURCE_EXHAUSTED");
    assert.match(big.details, /larger than max \(70\d+ vs 50000\)/);
    assert.match(status(() => decodeInChunks(readFrames([Buffer.from([0x12, 0x05, 1, 2])]), 1)).details, /does not decode: .*past the end/);
    assert.match(status(() => decodeInChunks(readFrames([Buffer.from([0x0b])]), 1)).details, /wire type 3/);
    assert.match(status(() => decodeInChunks(wire.subarray(0, 1000), 100)).details, /ended inside a message/);
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
  const state = { sentBeforeFirstAnswer: 0, received: 0, ended: false, cancelled: false, maxUnanswered: 0, writeSizes: [] as number[] };
  const client = {
    address: "unix:///fake.sock",
    async call(method: string) {
      log.push(method);
      return {};
    },
    duplex() {
      return {
        async send(r: { action: string; offset?: number }, data?: readonly Uint8Array[]) {
          log.push(r.action);
          if (r.action === "WRITE") {
            assert.equal(r.offset, ingest, "each WRITE carries the ingest's offset");
            const bytes = data!.reduce((n, d) => n + d.length, 0);
            state.writeSizes.push(bytes);
            ingest += bytes;
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
      for (let at = 0; at < blob.length; at += 1024) yield blob.subarray(at, at + 1024);
    };
    const saved = STREAM_TUNING.writeBytes;
    STREAM_TUNING.writeBytes = 4096;
    try {
      const result = await writeBlob(client, "ref", { digest: sha256(blob), size: blob.length }, source);
      assert.equal(result.bytesWritten, blob.length);
    } finally {
      STREAM_TUNING.writeBytes = saved;
    }
    assert.equal(state.sentBeforeFirstAnswer, 16, "all 16 WRITEs were sent before the first WRITE answer was read (within the in-flight budget)");
    assert.equal(log.at(-1), "COMMIT");
    assert.deepEqual(state.writeSizes, Array(16).fill(4096), "1 KiB chunks gathered four to a WRITE");
  });

  test("chunks are gathered into WRITEs as they are (views, never copies); a chunk larger than a WRITE is cut into views", async () => {
    const sent: Uint8Array[][] = [];
    const { client } = writingClient();
    const duplex = (client as unknown as { duplex(): { send(r: object, d?: readonly Uint8Array[]): Promise<void> } }).duplex;
    (client as unknown as { duplex: () => unknown }).duplex = () => {
      const call = duplex();
      const send = call.send.bind(call);
      call.send = (r, d) => (d && sent.push([...d]), send(r, d));
      return call;
    };
    const small = [randomBytes(300_000), randomBytes(300_000)];
    const large = randomBytes(3 * 1024 * 1024 + 5);
    const whole = Buffer.concat([...small, large]);
    await writeBlob(client, "ref", { digest: sha256(whole), size: whole.length }, async function* () {
      yield* small;
      yield large;
    });
    assert.deepEqual(
      sent.map((w) => w.reduce((n, d) => n + d.length, 0)),
      [1024 * 1024, 1024 * 1024, 1024 * 1024, whole.length - 3 * 1024 * 1024],
      "WRITEs of STREAM_TUNING.writeBytes, the last one the rest",
    );
    assert.equal(sent[0][0], small[0], "the chunk itself, not a copy");
    for (const piece of sent.flat()) assert.ok(piece.buffer === small[0].buffer || piece.buffer === small[1].buffer || piece.buffer === large.buffer, "every piece is a view of a source chunk");
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
    assert.deepEqual(state.writeSizes, [2000], "the chunks given before the failure went out (in one WRITE)");
    assert.equal(state.received, 2, "STAT's answer and the WRITE's answer were read");
    assert.equal(state.cancelled, true);
    assert.equal(ingest(), 2000);
  });
});
