/**
 * A transparent gRPC proxy in front of a private containerd, for fault tests.
 *
 * A Node `http2` server on its own unix socket forwards every stream to the
 * daemon's real socket (request headers and data, response headers, data and
 * trailers) and records each call's `:path`. It never answers for the daemon,
 * except where a test asks it to:
 *
 * - `arm(...)`: SIGKILL the daemon (`d.kill()`) after the response of a method
 *   has reached the client, when its request arrives, or after the daemon
 *   answered but before the client sees the answer ("withhold-response": the
 *   daemon did the work, the client learns nothing).
 * - `inject(...)`: answer the first N calls of a method with a gRPC status
 *   (trailers-only, e.g. 14 UNAVAILABLE), then forward again.
 *
 * Each client connection is paired with one connection to the daemon. When the
 * daemon's side goes away (it was killed), the client's connection is dropped
 * too, as it would be without the proxy; while the daemon is down, each call is
 * answered with UNAVAILABLE naming the connect error.
 */
import * as fs from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as path from "node:path";
import type { PrivateContainerd } from "./containerd";

const { HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS, NGHTTP2_CANCEL } = http2.constants;

/** The gRPC paths of the calls a restore makes, by restore step (containerd-restore.md §2.1). */
export const RESTORE_STEP_RPC = {
  "create-lease": "/containerd.services.leases.v1.Leases/Create",
  "prepare-snapshot": "/containerd.services.snapshots.v1.Snapshots/Prepare",
  "apply-rw-layer": "/containerd.services.diff.v1.Diff/Apply",
  "create-container": "/containerd.services.containers.v1.Containers/Create",
  "release-lease": "/containerd.services.leases.v1.Leases/Delete",
  "create-task": "/containerd.services.tasks.v1.Tasks/Create",
  "start-task": "/containerd.services.tasks.v1.Tasks/Start",
} as const;

/**
 * A method as a gRPC path: `/containerd.services.tasks.v1.Tasks/Start` as is, or
 * the short `tasks.Start` form the client uses.
 */
export function rpcPath(method: string): string {
  if (method.startsWith("/")) return method;
  const match = /^([a-z]+)\.([A-Za-z]+)$/.exec(method);
  if (!match) throw new Error(`not a method: ${method} (use tasks.Start or /containerd.services.tasks.v1.Tasks/Start)`);
  const [, service, name] = match;
  return `/containerd.services.${service}.v1.${service[0].toUpperCase()}${service.slice(1)}/${name}`;
}

/** When an armed fault fires. */
export type FaultMoment =
  /** The method's response (trailers) reached the client; the next call finds the daemon dead. */
  | "after-response"
  /** The method's request arrived: kill before forwarding it (the daemon never sees it). */
  | "on-request"
  /** The daemon answered the method, but the answer is dropped and the daemon killed: the work is done, the client never hears. */
  | "withhold-response";

export interface FaultSpec {
  /** `tasks.Start` or a full gRPC path. */
  method: string;
  when: FaultMoment;
  /** What to do; default SIGKILL the daemon (`d.kill()`). */
  action?: () => Promise<void>;
}

/** One call the proxy saw. */
export interface ProxyCall {
  path: string;
  /** `Date.now()` when its headers arrived. */
  at: number;
  /** The gRPC status the proxy answered itself (injected or daemon unreachable); undefined when forwarded. */
  answeredWith?: number;
}

export interface FaultProxy {
  /** The proxy's unix socket. */
  readonly socket: string;
  /** `unix://` + socket: give this to the client instead of the daemon's address. */
  readonly address: string;
  /** Every call seen, in arrival order (since the last `reset`). */
  readonly calls: readonly ProxyCall[];
  /** How many calls of `method` reached the proxy (since the last `reset`). */
  attempts(method: string): number;
  /** Arms one fault; resolves when it has fired and its action finished. */
  arm(spec: FaultSpec): Promise<void>;
  /** Answers the next `count` calls of `method` with gRPC `status` (trailers-only), then forwards again. */
  inject(method: string, count: number, status?: number, message?: string): void;
  /**
   * Forwards the next `count` calls of `method`, but resets each client stream
   * (RST_STREAM CANCEL) `afterMs` after it arrived, unless it finished before: what
   * containerd 2.4's gRPC server does at a stream's deadline (grpc-js: CANCELLED).
   */
  resetStreams(method: string, count: number, afterMs: number): void;
  /** Forgets calls, armed faults and injections. */
  reset(): void;
  /** Stops listening, drops every connection and removes the socket. */
  close(): Promise<void>;
}

interface Armed {
  path: string;
  when: FaultMoment;
  action: () => Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Injection {
  remaining: number;
  status: number;
  message: string;
}

/** Response headers of a trailers-only gRPC answer. */
function trailersOnly(status: number, message: string): http2.OutgoingHttpHeaders {
  return { [HTTP2_HEADER_STATUS]: 200, "content-type": "application/grpc", "grpc-status": String(status), "grpc-message": encodeURIComponent(message) };
}

/** Headers to pass on: everything but HTTP/1 connection-level fields (none are legal in HTTP/2 anyway). */
function passOn(headers: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || key === "connection" || key === "keep-alive" || key === "transfer-encoding") continue;
    out[key] = value;
  }
  return out;
}

/**
 * Starts a proxy for daemon `d` on `<d.dir>/fault-proxy.sock` (or `socket`).
 * Close it before `d.stop()` removes the dir (stop removes it anyway).
 */
export async function startFaultProxy(d: Pick<PrivateContainerd, "socket" | "dir" | "kill">, socket = path.join(d.dir, "fault-proxy.sock")): Promise<FaultProxy> {
  fs.rmSync(socket, { force: true });
  let calls: ProxyCall[] = [];
  let armed: Armed[] = [];
  let injections = new Map<string, Injection>();
  let resets = new Map<string, { remaining: number; afterMs: number }>();
  /** While a fault's action runs, new calls wait (so none reaches a daemon about to die). */
  let gate: Promise<void> | undefined;
  const sessions = new Set<http2.ServerHttp2Session>();

  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });

  /** Runs the fault's action (after `before`) with new calls held until it is done; settles its `arm` promise. */
  const fire = (fault: Armed, before: Promise<void> = Promise.resolve()): Promise<void> => {
    const run = before.then(() => fault.action());
    run.then(fault.resolve, fault.reject);
    const held: Promise<void> = run
      .catch(() => undefined)
      .finally(() => {
        if (gate === held) gate = undefined;
      });
    gate = held;
    return held;
  };

  /** The fault armed for this call, if any; it fires once, on the first such call. */
  const takeArmed = (callPath: string, when: FaultMoment): Armed | undefined => {
    const fault = armed.find((a) => a.path === callPath && a.when === when);
    if (fault) armed = armed.filter((a) => a !== fault);
    return fault;
  };

  server.on("session", (session) => {
    sessions.add(session);
    session.on("error", () => undefined);
    let upstream: Promise<http2.ClientHttp2Session> | undefined;
    const connectUpstream = (): Promise<http2.ClientHttp2Session> => {
      upstream ??= new Promise<http2.ClientHttp2Session>((resolve, reject) => {
        const up = http2.connect("http://localhost", { createConnection: () => net.connect(d.socket) });
        up.once("connect", () => {
          up.off("error", reject);
          up.on("error", () => undefined);
          // The daemon's side is gone (killed): drop the client's connection, as a dead daemon would.
          up.once("close", () => session.destroy());
          resolve(up);
        });
        up.once("error", reject);
      }).catch((err: unknown) => {
        upstream = undefined; // the next call tries again (the daemon may be back)
        throw err;
      });
      return upstream;
    };
    session.once("close", () => {
      sessions.delete(session);
      void upstream?.then((up) => up.destroy(), () => undefined);
    });

    session.on("stream", (stream, headers) => {
      void forward(stream, headers, connectUpstream);
    });
  });

  async function forward(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    connectUpstream: () => Promise<http2.ClientHttp2Session>,
  ): Promise<void> {
    stream.on("error", () => undefined);
    const callPath = String(headers[HTTP2_HEADER_PATH]);
    const call: ProxyCall = { path: callPath, at: Date.now() };
    calls.push(call);
    const answer = (status: number, message: string) => {
      call.answeredWith = status;
      stream.resume(); // discard the request
      if (!stream.destroyed && !stream.headersSent) stream.respond(trailersOnly(status, message), { endStream: true });
    };

    const injection = injections.get(callPath);
    if (injection && injection.remaining > 0) {
      injection.remaining--;
      return answer(injection.status, injection.message);
    }
    const onRequest = takeArmed(callPath, "on-request");
    if (onRequest) void fire(onRequest);
    while (gate) await gate;
    if (stream.destroyed) return;

    let up: http2.ClientHttp2Session;
    try {
      up = await connectUpstream();
    } catch (err) {
      return answer(14, `connection error: dial unix ${d.socket}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (stream.destroyed) return;
    let req: http2.ClientHttp2Stream;
    try {
      req = up.request(passOn(headers), { endStream: false });
    } catch (err) {
      return answer(14, `connection error: ${(err as Error).message}`);
    }
    req.on("error", () => undefined);
    stream.pipe(req);
    const reset = resets.get(callPath);
    if (reset && reset.remaining > 0) {
      reset.remaining--;
      const timer = setTimeout(() => {
        if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
      }, reset.afterMs);
      stream.once("close", () => clearTimeout(timer));
    }
    // The client gave up (deadline, cancel): cancel the daemon's side too.
    stream.once("close", () => {
      if (!req.closed) req.close(NGHTTP2_CANCEL);
    });

    const withhold = takeArmed(callPath, "withhold-response");
    const afterResponse = takeArmed(callPath, "after-response");
    let trailers: http2.OutgoingHttpHeaders | undefined;
    let finished = false;
    /** The response, trailers included, went to the client and its stream closed. */
    const delivered = new Promise<void>((resolve) => stream.once("close", () => resolve()));

    /** The daemon finished the call: fire what is armed on its response. True when the answer must be dropped. */
    const completed = (): boolean => {
      finished = true;
      if (withhold) {
        // The daemon did the work; the client must never hear it: kill, then drop the connection.
        void fire(withhold).finally(() => stream.session?.destroy());
        return true;
      }
      if (afterResponse) void fire(afterResponse, delivered);
      return false;
    };

    req.once("response", (responseHeaders, flags) => {
      if ((flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0) {
        // A trailers-only answer (an error, usually).
        if (!completed() && !stream.destroyed) stream.respond(passOn(responseHeaders), { endStream: true });
        return;
      }
      if (withhold) {
        req.resume();
        return;
      }
      if (stream.destroyed) return;
      stream.respond(passOn(responseHeaders), { waitForTrailers: true });
      stream.once("wantTrailers", () => {
        stream.sendTrailers(trailers ?? { "grpc-status": "13", "grpc-message": "fault proxy: the daemon sent no trailers" });
      });
      req.pipe(stream);
    });
    req.once("trailers", (t) => {
      trailers = passOn(t);
      completed();
    });
    req.once("close", () => {
      if (finished || stream.destroyed || stream.closed) return;
      // No answer: the daemon's connection died (drop the client's, as a dead daemon would) or it reset the stream.
      if (up.destroyed || up.closed) stream.session?.destroy();
      else stream.close(req.rstCode || NGHTTP2_CANCEL);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socket, () => {
      server.off("error", reject);
      resolve();
    });
  });

  return {
    socket,
    address: `unix://${socket}`,
    get calls() {
      return calls;
    },
    attempts(method) {
      const wanted = rpcPath(method);
      return calls.filter((c) => c.path === wanted).length;
    },
    arm(spec) {
      return new Promise<void>((resolve, reject) => {
        armed.push({ path: rpcPath(spec.method), when: spec.when, action: spec.action ?? (() => d.kill()), resolve, reject });
      });
    },
    inject(method, count, status = 14, message = "injected by the fault proxy: unavailable") {
      injections.set(rpcPath(method), { remaining: count, status, message });
    },
    resetStreams(method, count, afterMs) {
      resets.set(rpcPath(method), { remaining: count, afterMs });
    },
    reset() {
      calls = [];
      armed = [];
      injections = new Map();
      resets = new Map();
    },
    async close() {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(socket, { force: true });
    },
  };
}
