/**
 * gRPC over node:http2 for the two calls that carry blob bytes, Content.Read and
 * Content.Write: the bytes of a copy go from the DATA frames one daemon sends to
 * the DATA frames written to the other without being reassembled into messages.
 *
 * grpc-js (which every other call goes through) concatenates each received
 * message into a buffer of its own and copies each sent message into a frame of
 * its own: per MiB moved that is two MiB-sized allocations the garbage collector
 * frees late, the CPU and most of the memory a copy used. Here a received
 * ReadContentResponse is parsed as its frames arrive and its `data` handed on as
 * views of what node:http2 received; a WRITE is a few dozen header bytes
 * followed by those views, written as they are.
 *
 * What grpc-js enforces is enforced here too, for a daemon's answers are input:
 * HTTP status and content type, no compressed message (none was asked for), a
 * message at most MAX_MESSAGE_BYTES, the status from the trailers (or a
 * trailers-only answer), every call under a deadline (sent as `grpc-timeout` and
 * kept locally), a bounded queue of answers (the stream is paused beyond it, so
 * HTTP/2 flow control holds the daemon), and a reset stream or a dropped
 * connection as UNAVAILABLE/INTERNAL with the reason.
 */
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { status as GrpcCode } from "@grpc/grpc-js";

/** How far a daemon may stream ahead of the reader: per stream, and for the whole connection. Chosen by measurement (bench/blob-copy.ts). Not API. @internal */
export const H2_TUNING = { streamWindow: 1024 * 1024, sessionWindow: 2 * 1024 * 1024 };

/** A gRPC status that ended a call (what toContainerdError reads: `code`, `details`). */
export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`${code} ${details}`);
  }
}

/** Where and how to connect; the address is already parsed and the TLS material checked (client.ts). */
export type H2Endpoint =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number; tls?: { ca: string; cert?: string; key?: string; serverName?: string } };

/** What one call needs besides its path. */
export interface H2CallOptions {
  metadata: Record<string, string>;
  deadlineMs: number;
  signal?: AbortSignal;
}

/**
 * Turns response body bytes into items (the pieces of data a read yields, the
 * messages a write is answered with) and says how much each weighs, for the
 * bound on what is queued.
 */
export interface BodyDecoder<T> {
  /** The items `chunk` completes (views of it are fine: it is not reused). Throws GrpcStatusError on a malformed body. */
  push(chunk: Buffer): T[];
  /** The body ended: throws when it ended inside a message. */
  end(): void;
  weigh(item: T): number;
}

/**
 * Splits a body into gRPC messages (1-byte flag, 4-byte length, bytes), handing
 * each message's bytes on as they arrive, in views: `onStart(length)`,
 * `onBytes(view)` (0 or more times), `onEnd()`.
 */
export class MessageFramer {
  private readonly prefix = Buffer.alloc(5);
  private prefixHave = 0;
  /** Bytes of the current message still to come; -1 between messages. */
  private left = -1;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly handler: { onStart(length: number): void; onBytes(view: Buffer): void; onEnd(): void },
  ) {}

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.left < 0) {
        const take = Math.min(5 - this.prefixHave, chunk.length - pos);
        chunk.copy(this.prefix, this.prefixHave, pos, pos + take);
        this.prefixHave += take;
        pos += take;
        if (this.prefixHave < 5) return;
        this.prefixHave = 0;
        if (this.prefix[0] !== 0) {
          throw new GrpcStatusError(GrpcCode.INTERNAL, `the daemon sent a compressed message (flag ${this.prefix[0]}), but no compression was negotiated`);
        }
        const length = this.prefix.readUInt32BE(1);
        if (length > this.maxMessageBytes) {
          throw new GrpcStatusError(GrpcCode.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs ${this.maxMessageBytes})`);
        }
        this.left = length;
        this.handler.onStart(length);
        if (length === 0) this.finish();
        continue;
      }
      const take = Math.min(this.left, chunk.length - pos);
      this.left -= take;
      this.handler.onBytes(chunk.subarray(pos, pos + take));
      pos += take;
      if (this.left === 0) this.finish();
    }
  }

  /** The body ended: it must not end inside a message. */
  end(): void {
    if (this.left >= 0 || this.prefixHave > 0) throw new GrpcStatusError(GrpcCode.INTERNAL, "the daemon's answer ended inside a message");
  }

  private finish(): void {
    this.left = -1;
    this.handler.onEnd();
  }
}

/** Whole messages, each decoded by `decode` (small answers: Content.Write's). */
export function messageDecoder<T>(decode: (bytes: Buffer) => T, maxMessageBytes: number): BodyDecoder<T> {
  const done: T[] = [];
  let message: Buffer | undefined;
  let have = 0;
  const framer = new MessageFramer(maxMessageBytes, {
    onStart: (length) => {
      message = Buffer.allocUnsafe(length);
      have = 0;
    },
    onBytes: (view) => {
      view.copy(message!, have);
      have += view.length;
    },
    onEnd: () => {
      try {
        done.push(decode(message!));
      } catch (err) {
        throw new GrpcStatusError(GrpcCode.INTERNAL, `the daemon's answer does not decode: ${err instanceof Error ? err.message : String(err)}`);
      }
      message = undefined;
    },
  });
  return {
    push(chunk) {
      framer.push(chunk);
      return done.splice(0);
    },
    end: () => framer.end(),
    weigh: () => 1024,
  };
}

/** HTTP statuses as gRPC codes, as gRPC's HTTP/2 protocol maps them. */
function codeOfHttpStatus(status: number): number {
  if (status === 400) return GrpcCode.INTERNAL;
  if (status === 401) return GrpcCode.UNAUTHENTICATED;
  if (status === 403) return GrpcCode.PERMISSION_DENIED;
  if (status === 404) return GrpcCode.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return GrpcCode.UNAVAILABLE;
  return GrpcCode.UNKNOWN;
}

/** RST_STREAM codes as gRPC codes (gRPC's HTTP/2 protocol). */
function codeOfReset(rstCode: number): number {
  const c = http2.constants;
  if (rstCode === c.NGHTTP2_REFUSED_STREAM) return GrpcCode.UNAVAILABLE;
  if (rstCode === c.NGHTTP2_CANCEL) return GrpcCode.CANCELLED;
  if (rstCode === c.NGHTTP2_ENHANCE_YOUR_CALM) return GrpcCode.RESOURCE_EXHAUSTED;
  if (rstCode === c.NGHTTP2_INADEQUATE_SECURITY) return GrpcCode.PERMISSION_DENIED;
  return GrpcCode.INTERNAL;
}

/** `grpc-message` is percent-encoded (gRPC's HTTP/2 protocol); a malformed one is shown as it came. */
function decodeGrpcMessage(value: unknown): string {
  const text = typeof value === "string" ? value : Array.isArray(value) ? value.join(", ") : "";
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The outcome response headers or trailers carry: OK (null), the error, or undefined when they carry no status. */
function statusOf(headers: http2.IncomingHttpHeaders): GrpcStatusError | null | undefined {
  const raw = headers["grpc-status"];
  if (raw === undefined) return undefined;
  if (raw === "0") return null;
  const code = Number(raw);
  if (!Number.isInteger(code) || code < 1 || code > 16) return new GrpcStatusError(GrpcCode.UNKNOWN, `the daemon sent an invalid grpc-status ${JSON.stringify(String(raw).slice(0, 20))}`);
  return new GrpcStatusError(code, decodeGrpcMessage(headers["grpc-message"]));
}

/** Items a call queues before its stream is paused (HTTP/2 flow control then holds the daemon). */
const QUEUE_HIGH_BYTES = 256 * 1024;

/**
 * One call: request bytes out (`write`, `end`), decoded answers in (`next`), the
 * status at the end. Answers are queued up to QUEUE_HIGH_BYTES, then the stream
 * is paused until the consumer catches up.
 */
export class H2Call<T> {
  private readonly queue: T[] = [];
  private queued = 0;
  private paused = false;
  /** The call's outcome once known: OK (null) or the error; set once. */
  private outcome: GrpcStatusError | null | undefined;
  private wake: (() => void) | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = () => this.fail(new GrpcStatusError(GrpcCode.CANCELLED, "Cancelled on client"));

  constructor(
    private readonly stream: http2.ClientHttp2Stream,
    private readonly decoder: BodyDecoder<T>,
    options: H2CallOptions,
  ) {
    this.timer = setTimeout(() => this.fail(new GrpcStatusError(GrpcCode.DEADLINE_EXCEEDED, `Deadline exceeded after ${options.deadlineMs} ms`)), options.deadlineMs);
    if (options.signal?.aborted) queueMicrotask(this.onAbort);
    options.signal?.addEventListener("abort", this.onAbort, { once: true });
    const signal = options.signal;
    const session = stream.session!;
    stream.on("response", (headers) => {
      const status = Number(headers[":status"]);
      if (status !== 200) return this.fail(new GrpcStatusError(codeOfHttpStatus(status), `the daemon answered HTTP ${status}`));
      const type = String(headers["content-type"] ?? "");
      if (!type.startsWith("application/grpc")) return this.fail(new GrpcStatusError(GrpcCode.UNKNOWN, `the daemon answered content-type ${JSON.stringify(type.slice(0, 80))}, not gRPC`));
      // A trailers-only answer: the status comes with the headers.
      const trailersOnly = statusOf(headers);
      if (trailersOnly !== undefined) this.settle(trailersOnly);
    });
    stream.on("data", (chunk: Buffer) => {
      if (this.outcome !== undefined) return;
      let items: T[];
      try {
        items = this.decoder.push(chunk);
      } catch (err) {
        return this.fail(err instanceof GrpcStatusError ? err : new GrpcStatusError(GrpcCode.INTERNAL, String(err)));
      }
      for (const item of items) {
        this.queue.push(item);
        this.queued += this.decoder.weigh(item);
      }
      if (this.queued > QUEUE_HIGH_BYTES && !this.paused) {
        this.paused = true;
        stream.pause();
      }
      this.notify();
    });
    // Trailers may come while data before them is still buffered (the stream paused): the status counts at the body's end.
    let trailerStatus: GrpcStatusError | null | undefined;
    stream.on("trailers", (trailers) => {
      const status = statusOf(trailers);
      trailerStatus = status !== undefined ? status : new GrpcStatusError(GrpcCode.UNKNOWN, "the daemon's trailers carry no grpc-status");
    });
    stream.on("end", () => {
      if (this.outcome !== undefined || trailerStatus === undefined) return; // no trailers: the close handler says why
      if (trailerStatus) return this.settle(trailerStatus);
      try {
        this.decoder.end();
      } catch (err) {
        return this.fail(err as GrpcStatusError);
      }
      this.settle(null);
    });
    stream.on("error", (err: Error & { code?: string; cause?: unknown }) => {
      // A stream the daemon reset: the close handler names its code.
      if (err.code === "ERR_HTTP2_STREAM_ERROR") return;
      const cause = err.cause instanceof Error ? err.cause : undefined;
      this.settle(new GrpcStatusError(GrpcCode.UNAVAILABLE, `connection to the daemon failed: ${(cause ?? err).message}`));
    });
    stream.on("close", () => {
      clearTimeout(this.timer);
      signal?.removeEventListener("abort", this.onAbort);
      if (this.outcome === undefined) {
        const rst = stream.rstCode;
        this.settle(
          // node closes every stream of a connection that broke with CANCEL: that is a lost daemon, not a cancel.
          session.destroyed || session.closed
            ? new GrpcStatusError(GrpcCode.UNAVAILABLE, "the connection to the daemon was lost")
            : rst !== undefined && rst !== http2.constants.NGHTTP2_NO_ERROR
              ? new GrpcStatusError(codeOfReset(rst), `the daemon reset the stream (HTTP/2 error ${rst})`)
              : new GrpcStatusError(GrpcCode.UNAVAILABLE, "the daemon closed the stream without a status"),
        );
      }
    });
  }

  /** Sends request bytes (one gRPC message may be several buffers); resolves when the stream can take more. */
  async write(buffers: readonly Uint8Array[]): Promise<void> {
    if (this.outcome !== undefined) throw this.outcome ?? new GrpcStatusError(GrpcCode.INTERNAL, "the call has ended");
    let room = true;
    this.stream.cork();
    for (const buffer of buffers) room = this.stream.write(buffer);
    process.nextTick(() => this.stream.uncork());
    if (room) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        this.stream.off("drain", done);
        this.stream.off("close", done);
        if (this.outcome) reject(this.outcome);
        else resolve();
      };
      this.stream.on("drain", done);
      this.stream.on("close", done);
    });
  }

  /** Ends the request side. */
  end(): void {
    if (!this.stream.destroyed) this.stream.end();
  }

  /** The next answer; `undefined` when the call ended OK; throws the status otherwise. */
  async next(): Promise<T | undefined> {
    for (;;) {
      const item = this.queue.shift();
      if (item !== undefined) {
        this.queued -= this.decoder.weigh(item);
        if (this.paused && this.queued <= QUEUE_HIGH_BYTES / 4) {
          this.paused = false;
          this.stream.resume();
        }
        return item;
      }
      if (this.outcome === null) return undefined;
      if (this.outcome) throw this.outcome;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Cancels the call (RST_STREAM CANCEL) unless it has ended; answers not yet taken are dropped. */
  cancel(): void {
    if (this.outcome === undefined) this.fail(new GrpcStatusError(GrpcCode.CANCELLED, "Cancelled on client"));
  }

  /** Ends the call with `status` from this side: the stream is reset. */
  private fail(status: GrpcStatusError): void {
    if (this.outcome !== undefined) return;
    this.settle(status);
    this.queue.length = 0;
    this.queued = 0;
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  private settle(outcome: GrpcStatusError | null): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    clearTimeout(this.timer);
    if (this.paused) this.stream.resume(); // let the stream run to its end, so it closes
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * One HTTP/2 connection to a daemon for the content streams, opened on the first
 * call and again after it broke. It never keeps the process alive by itself: an
 * open call does, by its deadline timer.
 */
export class H2Connection {
  private session: http2.ClientHttp2Session | undefined;
  private closed = false;

  constructor(private readonly endpoint: H2Endpoint) {}

  /** Starts a call of `path`; the request message(s) follow with `write`. */
  call<T>(path: string, decoder: BodyDecoder<T>, options: H2CallOptions): H2Call<T> {
    if (this.closed) throw new GrpcStatusError(GrpcCode.UNAVAILABLE, "the client was closed");
    const session = this.current();
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": `${Math.max(1, Math.ceil(options.deadlineMs))}m`,
      "user-agent": "containerd-restore",
      ...options.metadata,
    };
    return new H2Call(session.request(headers), decoder, options);
  }

  close(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
  }

  private current(): http2.ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const endpoint = this.endpoint;
    const session = http2.connect(endpoint.kind === "unix" ? "http://localhost" : `${endpoint.tls ? "https" : "http"}://${endpoint.host}:${endpoint.port}`, {
      createConnection: () => connectSocket(endpoint),
      settings: { enablePush: false, initialWindowSize: H2_TUNING.streamWindow },
      // Room for the windows and the WRITEs in flight; node refuses new streams beyond it.
      maxSessionMemory: 64,
    });
    // A connection error reaches each open stream as its own error; the session's is only logged there.
    session.on("error", () => undefined);
    session.once("connect", () => {
      if (!session.destroyed) session.setLocalWindowSize(H2_TUNING.sessionWindow);
    });
    session.on("goaway", () => {
      if (this.session === session) this.session = undefined;
    });
    session.on("close", () => {
      if (this.session === session) this.session = undefined;
    });
    session.unref();
    this.session = session;
    return session;
  }
}

function connectSocket(endpoint: H2Endpoint): net.Socket {
  if (endpoint.kind === "unix") return net.connect(endpoint.path);
  const host = endpoint.host.replace(/^\[|\]$/g, "");
  if (!endpoint.tls) return net.connect(endpoint.port, host);
  const { ca, cert, key, serverName } = endpoint.tls;
  // The certificate is checked against serverName when given, else the host (a name or an IP address);
  // SNI is sent only for a name (RFC 6066).
  const name = serverName ?? (net.isIP(host) ? undefined : host);
  return tls.connect({
    host,
    port: endpoint.port,
    ca,
    cert,
    key,
    servername: name,
    ALPNProtocols: ["h2"],
    checkServerIdentity: (hostname, peer) => tls.checkServerIdentity(serverName ?? hostname, peer),
  });
}
