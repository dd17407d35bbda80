import * as grpc from "@grpc/grpc-js";
import { isIP } from "node:net";
import { messagePrefix, readContentDecoder, writeRequestLead } from "./blob-codec";
import { ContainerdError, toContainerdError } from "./errors";
import { H2Connection, messageDecoder, type H2Call, type H2CallOptions, type H2Endpoint } from "./grpc-h2";
import { methodCodec } from "./proto";
import { invalidTlsReason, isPlaintextTcp } from "./transport";
import type {
  BidiStreamMethod,
  BidiStreamMethods,
  Method,
  ServerStreamMethod,
  ServerStreamMethods,
  UnaryMethod,
  UnaryMethods,
} from "./types";

/** The default daemon socket of a system containerd. */
export const DEFAULT_ADDRESS = "unix:///run/containerd/containerd.sock";
export const DEFAULT_NAMESPACE = "default";

/** TLS material (PEM) for a `tcp://` daemon. */
export interface TlsOptions {
  /** CA certificate(s) the daemon's certificate must chain to. */
  ca: string;
  /** Client certificate for mutual TLS; give it with `key`, or neither when the daemon asks for none. */
  cert?: string;
  key?: string;
  /** Name to verify in the server certificate, when it differs from the address host. */
  serverName?: string;
}

export interface ConnectOptions {
  /** containerd namespace, sent as the `containerd-namespace` header. Default `default`. */
  namespace?: string;
  /** TLS for `tcp://` addresses. */
  tls?: TlsOptions;
  /** Allow plaintext `tcp://` (no TLS). Never needed for `unix://`. */
  insecure?: boolean;
}

export interface CallOptions {
  /** Deadline for this call in milliseconds; each method has a default. */
  timeoutMs?: number;
  /** Aborting cancels the call. */
  signal?: AbortSignal;
}

/** Defaults per method (slow actions longer, metadata reads shorter); every call has a deadline. */
const DEFAULT_TIMEOUT_MS = 30_000;
const SLOW_METHOD_TIMEOUT_MS: Partial<Record<Method, number>> = {
  "tasks.Create": 300_000,
  "tasks.Start": 300_000,
  "tasks.Checkpoint": 600_000,
  "diff.Apply": 300_000,
  "diff.Diff": 300_000,
  "content.Read": 600_000,
  "content.Write": 600_000,
  // Reads of metadata that a daemon answers from its database in milliseconds: a daemon
  // that sits on one does not hold a plan (and so `pulumi preview`) for long.
  "images.Get": 10_000,
  "content.Info": 10_000,
  "introspection.Plugins": 10_000,
  "snapshots.Stat": 10_000,
  "containers.Get": 10_000,
  "leases.List": 10_000,
};

/** The metadata reads with a short deadline (see above): missing it is a `read-timeout`, not a generic daemon error. */
export const METADATA_READS: ReadonlySet<string> = new Set(["images.Get", "content.Info", "introspection.Plugins", "snapshots.Stat", "containers.Get", "leases.List"]);

/** Calls that change nothing, so a transient UNAVAILABLE may be retried. */
const RETRYABLE = new Set<Method>([
  "version.Version",
  "namespaces.List",
  "introspection.Plugins",
  "images.Get",
  "images.List",
  "content.Info",
  "content.ListStatuses",
  "snapshots.Mounts",
  "snapshots.Stat",
  "containers.Get",
  "containers.List",
  "tasks.Get",
  "tasks.List",
  "leases.List",
]);
const RETRY_DELAYS_MS = [50, 200, 500];

const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** The parsed form of a daemon address. */
export type DaemonAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/**
 * Parses `unix:///abs/path`, a bare absolute socket path, or `tcp://host:port`.
 * Throws a ContainerdError with code `invalid-argument` for anything else.
 */
export function parseAddress(address: string): DaemonAddress {
  const invalid = (why: string) =>
    new ContainerdError("invalid-argument", "connect", `address "${address}": ${why}`, address);
  if (address.startsWith("/")) return { kind: "unix", path: address };
  const match = /^([a-z]+):\/\/(.*)$/.exec(address);
  if (!match) throw invalid("expected unix:///path/to/containerd.sock or tcp://host:port");
  const [, scheme, rest] = match;
  if (scheme === "unix") {
    if (!rest.startsWith("/")) throw invalid("a unix socket path must be absolute (unix:///run/containerd/containerd.sock)");
    return { kind: "unix", path: rest };
  }
  if (scheme === "tcp") {
    const hostPort = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(rest);
    const port = hostPort ? Number(hostPort[2]) : 0;
    if (!hostPort || port < 1 || port > 65535) throw invalid("expected tcp://host:port with a port from 1 to 65535");
    return { kind: "tcp", host: hostPort[1], port };
  }
  throw invalid(`unsupported scheme "${scheme}": use unix:// or tcp://`);
}

let ipServernameWarningMuted = false;

/**
 * grpc-js sets the TLS server name (SNI) to the target host, also when it is an IP address,
 * and Node then warns `[DEP0123] Setting the TLS ServerName to an IP address is not permitted
 * by RFC 6066` on the first such connection — in a dynamic provider, into the stack's output.
 * The certificate is still verified against the IP (or `serverName`); only the SNI is moot. So
 * that one warning is dropped, once per process; every other warning passes.
 */
function muteIpServernameWarning(): void {
  if (ipServernameWarningMuted) return;
  ipServernameWarningMuted = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === "object" && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === "DEP0123") return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

/** The grpc-js target and credentials of `address`, and the same endpoint for the content streams (grpc-h2.ts). */
function channelTarget(address: string, options: ConnectOptions): [string, grpc.ChannelCredentials, H2Endpoint] {
  const parsed = parseAddress(address);
  if (parsed.kind === "unix") return [`unix://${parsed.path}`, grpc.credentials.createInsecure(), parsed];
  const target = `${parsed.host}:${parsed.port}`;
  if (options.tls) {
    const { ca, cert, key } = options.tls;
    const tlsProblem = invalidTlsReason(options.tls);
    if (tlsProblem) throw new ContainerdError("invalid-argument", "connect", `address "${address}": ${tlsProblem}`, address);
    if (isIP(parsed.host.replace(/^\[|\]$/g, ""))) muteIpServernameWarning();
    return [target, grpc.credentials.createSsl(Buffer.from(ca), key ? Buffer.from(key) : null, cert ? Buffer.from(cert) : null), { ...parsed, tls: options.tls }];
  }
  if (isPlaintextTcp(address, options)) {
    throw new ContainerdError("invalid-argument", "connect", `address "${address}": tcp:// needs TLS material (ca, cert, key) or an explicit insecure: true`, address);
  }
  return [target, grpc.credentials.createInsecure(), parsed];
}

/** What a gRPC server that is not containerd's API (e.g. containerd's own tcp_address: CRI only) answers. */
const NOT_CONTAINERD_API = /unknown service containerd\.services\./;

/**
 * A call's error as a ContainerdError. An endpoint that answers gRPC but lacks
 * containerd's services is reported as unreachable, with what to do instead.
 */
function callError(err: unknown, method: string, address: string): ContainerdError {
  const mapped = toContainerdError(err, method, address);
  if (mapped.code !== "unimplemented" || !NOT_CONTAINERD_API.test(mapped.details)) return mapped;
  return new ContainerdError(
    "unavailable",
    method,
    `${mapped.details}: this endpoint does not serve containerd's API (containerd's own [grpc] tcp_address serves only CRI); ` +
      "use the daemon's unix socket, or a TLS proxy in front of it",
    address,
    { cause: err },
  );
}

interface Channel {
  /** Every unary call. */
  grpc: grpc.Client;
  /** The content streams, which carry blob bytes (see grpc-h2.ts). */
  h2: H2Connection;
  address: string;
}

/**
 * A connection to one containerd daemon, bound to a namespace (and optionally a
 * lease). Clients derived with `withLease` share the connection.
 */
export class ContainerdClient {
  private constructor(
    private readonly channel: Channel,
    /** The namespace every namespaced call is made in. */
    readonly namespace: string,
    /** The lease new content and snapshots are made under, if any. */
    readonly lease: string | undefined,
  ) {}

  /** @internal Use `connect`. */
  static open(address: string, options: ConnectOptions = {}): ContainerdClient {
    const [target, credentials, endpoint] = channelTarget(address, options);
    const channelOptions: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
    };
    if (options.tls?.serverName) channelOptions["grpc.ssl_target_name_override"] = options.tls.serverName;
    const channel = { grpc: new grpc.Client(target, credentials, channelOptions), h2: new H2Connection(endpoint), address };
    return new ContainerdClient(channel, options.namespace ?? DEFAULT_NAMESPACE, undefined);
  }

  /** The daemon address this client was opened with. */
  get address(): string {
    return this.channel.address;
  }

  /** The same connection, with calls made under lease `id`. */
  withLease(id: string | undefined): ContainerdClient {
    return new ContainerdClient(this.channel, this.namespace, id);
  }

  /** Closes the connection (shared by derived clients). */
  close(): void {
    this.channel.grpc.close();
    this.channel.h2.close();
  }

  /** One unary call; transient UNAVAILABLE is retried for calls that change nothing. */
  async call<M extends UnaryMethod>(
    method: M,
    request: UnaryMethods[M][0],
    options: CallOptions = {},
  ): Promise<UnaryMethods[M][1]> {
    const retries = RETRYABLE.has(method) ? RETRY_DELAYS_MS : [];
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.unaryOnce(method, request, options);
      } catch (err) {
        const delay = retries[attempt];
        if (!(err instanceof ContainerdError) || err.code !== "unavailable" || delay === undefined) throw err;
        if (NOT_CONTAINERD_API.test(err.details)) throw err;
        if (options.signal?.aborted) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private unaryOnce<M extends UnaryMethod>(
    method: M,
    request: UnaryMethods[M][0],
    options: CallOptions,
  ): Promise<UnaryMethods[M][1]> {
    const codec = methodCodec(method);
    // Kept unformatted: a stack is formatted only when read, and a host with source-map
    // support (Pulumi's) maps every frame then; a call that succeeds never reads it.
    const callSite = new Error();
    return new Promise((resolve, reject) => {
      const call = this.channel.grpc.makeUnaryRequest(
        codec.path,
        codec.encode,
        codec.decode,
        request,
        this.metadata(),
        this.callOptions(method, options),
        (err, response) => {
          options.signal?.removeEventListener("abort", onAbort);
          if (err) reject(withCallerStack(callError(err, method, this.address), callSite));
          else resolve(response as UnaryMethods[M][1]);
        },
      );
      const onAbort = () => call.cancel();
      options.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * A server-streaming call (Content.Read) as an async iterable of its answers' data
   * pieces, views of what was received (grpc-h2.ts); `break` cancels it.
   */
  async *stream<M extends ServerStreamMethod>(
    method: M,
    request: ServerStreamMethods[M][0],
    options: CallOptions = {},
  ): AsyncGenerator<ServerStreamMethods[M][1]> {
    const codec = methodCodec(method);
    let call: H2Call<ServerStreamMethods[M][1]> | undefined;
    try {
      call = this.channel.h2.call(codec.path, readContentDecoder(MAX_MESSAGE_BYTES), this.h2Options(method, options));
      const body = codec.encode(request);
      await call.write([messagePrefix(body.length), body]);
      call.end();
      for (;;) {
        const piece = await call.next();
        if (piece === undefined) return;
        yield piece;
      }
    } catch (err) {
      throw callError(err, method, this.address);
    } finally {
      call?.cancel();
    }
  }

  /** A bidirectional-streaming call (Content.Write): send requests, read responses in order. */
  duplex<M extends BidiStreamMethod>(method: M, options: CallOptions = {}): DuplexCall<M> {
    const codec = methodCodec(method);
    const call = this.channel.h2.call(codec.path, messageDecoder((bytes) => codec.decode(bytes) as BidiStreamMethods[M][1], MAX_MESSAGE_BYTES), this.h2Options(method, options));
    return new DuplexCall<M>(call, codec.encode, method, this.address);
  }

  private h2Options(method: Method, options: CallOptions): H2CallOptions {
    return { metadata: this.headers(), deadlineMs: timeoutOf(method, options), signal: options.signal };
  }

  /** The headers every call carries: the namespace, and the lease when there is one. */
  private headers(): Record<string, string> {
    return this.lease ? { "containerd-namespace": this.namespace, "containerd-lease": this.lease } : { "containerd-namespace": this.namespace };
  }

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(this.headers())) metadata.set(key, value);
    return metadata;
  }

  private callOptions(method: Method, options: CallOptions): grpc.CallOptions {
    return { deadline: Date.now() + timeoutOf(method, options) };
  }
}

/** A call's deadline in ms: the caller's, else the method's default. */
function timeoutOf(method: Method, options: CallOptions): number {
  return options.timeoutMs ?? SLOW_METHOD_TIMEOUT_MS[method] ?? DEFAULT_TIMEOUT_MS;
}

/** A bidi stream with promise-based reads and writes; errors are ContainerdErrors. */
export class DuplexCall<M extends BidiStreamMethod> {
  constructor(
    private readonly call: H2Call<BidiStreamMethods[M][1]>,
    private readonly encode: (message: object) => Buffer,
    private readonly method: M,
    private readonly address: string,
  ) {}

  /**
   * Sends one request, waiting when the stream's buffer is full. `data`, when given,
   * is the request's data field, sent after its other fields as these buffers are
   * (not copied); the buffers must stay unchanged until the call ends.
   */
  async send(request: BidiStreamMethods[M][0], data?: readonly Uint8Array[]): Promise<void> {
    const header = this.encode(request);
    const dataLength = data ? data.reduce((n, d) => n + d.length, 0) : 0;
    try {
      await this.call.write(dataLength > 0 ? [writeRequestLead(header, dataLength), ...data!] : [messagePrefix(header.length), header]);
    } catch (err) {
      throw callError(err, this.method, this.address);
    }
  }

  /** The next response; throws if the stream ended or failed. */
  async receive(): Promise<BidiStreamMethods[M][1]> {
    let next: BidiStreamMethods[M][1] | undefined;
    try {
      next = await this.call.next();
    } catch (err) {
      throw callError(err, this.method, this.address);
    }
    if (next === undefined) throw new ContainerdError("unknown", this.method, "stream closed by the daemon", this.address);
    return next;
  }

  /** Ends the request side. */
  end(): void {
    this.call.end();
  }

  /** Cancels the call. */
  cancel(): void {
    this.call.cancel();
  }
}

function withCallerStack(err: ContainerdError, callSite: Error): ContainerdError {
  const callerStack = callSite.stack;
  if (callerStack) err.stack = `${err.stack}\n    at (call site)${callerStack.slice(callerStack.indexOf("\n"))}`;
  return err;
}

/**
 * Opens a client for the daemon at `address` (default the system socket).
 * No I/O happens until the first call.
 */
export function connect(address: string = DEFAULT_ADDRESS, options: ConnectOptions = {}): ContainerdClient {
  return ContainerdClient.open(address, options);
}
