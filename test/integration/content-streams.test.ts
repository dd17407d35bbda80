/**
 * The content streams (Content.Read, Content.Write) go over the client's own
 * gRPC-on-HTTP/2 (provider/containerd/grpc-h2.ts), not grpc-js. A real daemon
 * covers the happy path and its own errors everywhere else; this file uses a raw
 * node:http2 server posing as one, for what no real daemon sends on demand and
 * what grpc-js used to refuse for us: compressed or oversized messages, HTTP
 * errors, a foreign content type, a reset or dropped stream, trailers without a
 * status, an answer at the wrong offset, and a daemon that sends without being
 * read (flow control must hold it). Each answer is a typed ContainerdError with
 * the daemon's words, and the stream is cancelled on the server's side.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http2 from "node:http2";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { BlobError, ContainerdError, H2_TUNING, connect, digestOf, messageType, readBlob, readChunks, writeBlob, type ContainerdClient } from "../../provider/containerd";

const READ = "/containerd.services.content.v1.Content/Read";
const readResponse = messageType("containerd.services.content.v1.ReadContentResponse");
const writeRequest = messageType("containerd.services.content.v1.WriteContentRequest");
const writeResponse = messageType("containerd.services.content.v1.WriteContentResponse");

type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/** gRPC's framing of `body` (flag 0 unless `compressed`). */
function frame(body: Uint8Array, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

const readAnswer = (offset: number, data: Uint8Array) => frame(readResponse.encode(readResponse.fromObject({ offset, data })).finish());
const ok = (stream: http2.ServerHttp2Stream) => stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });

let server: http2.Http2Server;
let socket: string;
let client: ContainerdClient;
let handler: Handler;
/** Every stream the server saw, with its headers, and how it closed. */
const seen: Array<{ headers: http2.IncomingHttpHeaders; closed: Promise<number> }> = [];

before(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raw-h2-"));
  socket = path.join(dir, "fake.sock");
  server = http2.createServer();
  server.on("stream", (stream, headers) => {
    seen.push({ headers, closed: new Promise((resolve) => stream.on("close", () => resolve(stream.rstCode))) });
    stream.on("error", () => undefined);
    handler(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  client = connect(`unix://${socket}`, { namespace: "ns1" }).withLease("lease1");
});

after(async () => {
  client.close();
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(path.dirname(socket), { recursive: true, force: true });
});

/** Runs `fn`, expecting a ContainerdError. */
async function daemonError(fn: () => Promise<unknown>): Promise<ContainerdError> {
  const err = await fn().then(
    () => assert.fail("not refused"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ContainerdError, String(err));
  return err;
}

/** The last stream the server saw was closed by the client (cancelled), not left open. */
async function lastStreamCancelled(): Promise<void> {
  const rst = await Promise.race([seen.at(-1)!.closed, new Promise<string>((resolve) => setTimeout(() => resolve("still open"), 2000))]);
  assert.ok(rst === http2.constants.NGHTTP2_CANCEL || rst === http2.constants.NGHTTP2_NO_ERROR, `the stream was closed (rst ${rst})`);
}

const blob = randomBytes(200_000);
const digest = digestOf(blob);

describe("Content.Read over the client's own HTTP/2", () => {
  test("a well-formed answer in many messages reads back whole; the request carries namespace, lease, deadline and gRPC's headers", async () => {
    handler = (stream) => {
      ok(stream);
      for (let at = 0; at < blob.length; at += 70_000) stream.write(readAnswer(at, blob.subarray(at, at + 70_000)));
      stream.end();
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    };
    const got = await readBlob(client, digest, 1024 * 1024, { size: blob.length });
    assert.ok(got.equals(blob));
    const { headers } = seen.at(-1)!;
    assert.equal(headers[":path"], READ);
    assert.equal(headers["content-type"], "application/grpc");
    assert.equal(headers.te, "trailers");
    assert.equal(headers["containerd-namespace"], "ns1");
    assert.equal(headers["containerd-lease"], "lease1");
    assert.match(String(headers["grpc-timeout"]), /^\d+m$/, "the deadline goes to the daemon too");
    assert.equal(headers["grpc-accept-encoding"], undefined, "no compression is offered");
  });

  test("a compressed message (none was negotiated) is refused: internal", async () => {
    handler = (stream) => {
      ok(stream);
      stream.write(frame(readResponse.encode({ offset: 0, data: blob }).finish(), true));
    };
    const err = await daemonError(() => readBlob(client, digest, 1024 * 1024, { size: blob.length }));
    assert.equal(err.code, "internal");
    assert.match(err.message, /compressed message/);
    await lastStreamCancelled();
  });

  test("a message announced larger than 16 MiB is refused from its prefix, before its bytes: resource-exhausted", async () => {
    handler = (stream) => {
      ok(stream);
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(17 * 1024 * 1024, 1);
      stream.write(prefix);
    };
    const err = await daemonError(() => readBlob(client, digest, 1024 * 1024, { size: blob.length }));
    assert.equal(err.code, "resource-exhausted");
    assert.match(err.message, /larger than max \(17825792 vs 16777216\)/);
    await lastStreamCancelled();
  });

  test("HTTP errors and a foreign content type are daemon errors, not data", async () => {
    handler = (stream) => stream.respond({ ":status": 503 }, { endStream: true });
    assert.equal((await daemonError(() => readBlob(client, digest, 1024 * 1024))).code, "unavailable");
    handler = (stream) => {
      stream.respond({ ":status": 200, "content-type": "text/html" });
      stream.end("<html>proxy login</html>");
    };
    const err = await daemonError(() => readBlob(client, digest, 1024 * 1024));
    assert.equal(err.code, "unknown");
    assert.match(err.message, /content-type "text\/html", not gRPC/);
  });

  test("a trailers-only status arrives with its percent-encoded message decoded; trailers without a status are unknown", async () => {
    handler = (stream) =>
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "5", "grpc-message": "content%20digest%20sha256:ab%3A%20not%20found" }, { endStream: true });
    const err = await daemonError(() => readBlob(client, digest, 1024 * 1024));
    assert.equal(err.code, "not-found");
    assert.equal(err.details, "content digest sha256:ab: not found");
    handler = (stream) => {
      ok(stream);
      stream.end();
      stream.on("wantTrailers", () => stream.sendTrailers({ "x-other": "1" }));
    };
    const bare = await daemonError(() => readBlob(client, digest, 1024 * 1024));
    assert.equal(bare.code, "unknown");
    assert.match(bare.message, /trailers carry no grpc-status/);
  });

  test("a stream the daemon resets mid-answer is internal, naming the HTTP/2 code; a dropped connection is unavailable", async () => {
    handler = (stream) => {
      ok(stream);
      stream.write(readAnswer(0, blob.subarray(0, 50_000)), () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    };
    const reset = await daemonError(() => readBlob(client, digest, 1024 * 1024, { size: blob.length }));
    assert.equal(reset.code, "internal");
    assert.match(reset.message, /reset the stream \(HTTP\/2 error 2\)/);
    handler = (stream) => {
      ok(stream);
      stream.write(readAnswer(0, blob.subarray(0, 50_000)), () => stream.session?.socket.destroy());
    };
    const dropped = await daemonError(() => readBlob(client, digest, 1024 * 1024, { size: blob.length }));
    assert.equal(dropped.code, "unavailable");
    // The next call opens a new connection.
    handler = (stream) => {
      ok(stream);
      stream.end(readAnswer(0, blob));
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    };
    assert.ok((await readBlob(client, digest, 1024 * 1024, { size: blob.length })).equals(blob));
  });

  test("a daemon that keeps sending while nobody reads is held by flow control: no more than a window reaches the client until it reads", async () => {
    const size = 16 * 1024 * 1024;
    const message = 64 * 1024;
    const big = randomBytes(size);
    let flushed = 0;
    handler = (stream) => {
      ok(stream);
      // Everything at once: node queues it, HTTP/2 sends only what the client's window allows; a callback per message sent.
      for (let at = 0; at < size; at += message) stream.write(readAnswer(at, big.subarray(at, at + message)), () => (flushed += message));
      stream.end();
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    };
    const reader = readChunks(client, digestOf(big), size, 0, "big blob", size)[Symbol.asyncIterator]();
    const first = await reader.next();
    assert.ok(!first.done && first.value.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 700));
    const held = flushed;
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(flushed, held, "nothing more got through while the reader waited");
    const bound = H2_TUNING.streamWindow + 256 * 1024 + 4 * message;
    assert.ok(held <= bound, `${held} bytes reached the client; a stream window (${H2_TUNING.streamWindow}) and the answer queue (256 KiB) allow ${bound}`);
    // Reading resumes the flow; every byte arrives and hashes right.
    let got = first.value.length;
    for (;;) {
      const next = await reader.next();
      if (next.done) break;
      got += next.value.length;
    }
    assert.equal(got, size);
  });
});

/** A Content.Write handler that answers STAT at offset 0 and then `after(stream)` decides (stays silent, stops reading…). */
function answersStatThen(after: (stream: http2.ServerHttp2Stream) => void): Handler {
  return (stream) => {
    ok(stream);
    let pending = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length < 5 || pending.length < 5 + pending.readUInt32BE(1)) return;
      stream.off("data", onData);
      stream.write(frame(writeResponse.encode(writeResponse.fromObject({ action: "STAT", offset: 0, total: blob.length })).finish()));
      after(stream);
    };
    stream.on("data", onData);
  };
}

describe("Content.Write over the client's own HTTP/2", () => {
  test("a daemon that stops answering mid-write is a write-timeout after the idle time, not the call's 600 s deadline; the stream is cancelled", async () => {
    handler = answersStatThen((stream) => stream.resume()); // takes every byte, never answers a WRITE
    const started = Date.now();
    const err = await writeBlob(client, "ref-silent", { digest, size: blob.length }, async function* () {
      yield blob;
    }, { idleMs: 1000 }).catch((e: unknown) => e);
    assert.ok(err instanceof BlobError && err.code === "write-timeout", String(err));
    assert.match(err.message, /stalled: no answer for 1000 ms/);
    assert.ok(Date.now() - started < 5000, `gave up after ${Date.now() - started} ms`);
    await lastStreamCancelled();
  });

  test("a daemon that stops taking bytes (no flow-control window) is a write-timeout too", async () => {
    handler = answersStatThen((stream) => stream.pause()); // reads nothing more: its window closes
    const big = randomBytes(4 * 1024 * 1024);
    const err = await writeBlob(client, "ref-full", { digest: digestOf(big), size: big.length }, async function* () {
      yield big;
    }, { idleMs: 1000 }).catch((e: unknown) => e);
    assert.ok(err instanceof BlobError && err.code === "write-timeout", String(err));
    await lastStreamCancelled();
  });

  test("an answer at another offset than the WRITE should reach is out-of-range, and the call is cancelled", async () => {
    handler = (stream) => {
      ok(stream);
      let pending = Buffer.alloc(0);
      stream.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
          const length = pending.readUInt32BE(1);
          const request = writeRequest.toObject(writeRequest.decode(pending.subarray(5, 5 + length)), { enums: String, longs: Number, defaults: true });
          pending = pending.subarray(5 + length);
          const offset = request.action === "STAT" ? 0 : 12345; // a WRITE answered with a wrong offset
          stream.write(frame(writeResponse.encode(writeResponse.fromObject({ action: request.action, offset, total: blob.length })).finish()));
        }
      });
    };
    const err = await daemonError(() =>
      writeBlob(client, "ref-1", { digest, size: blob.length }, async function* () {
        yield blob;
      }),
    );
    assert.equal(err.code, "out-of-range");
    assert.match(err.message, new RegExp(`blob ${digest}: the daemon's ingest is at 12345 after a write that should end at ${blob.length}`));
    await lastStreamCancelled();
  });
});
