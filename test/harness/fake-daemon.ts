/**
 * A fake containerd: a grpc-js server on a unix socket that speaks containerd's
 * API (the project's protos) and answers only what a test scripts. For what a
 * real daemon cannot do on demand: trickle a blob one byte at a time, go silent
 * in the middle of a stream, or put terminal escapes in its error messages.
 * Methods without a handler answer UNIMPLEMENTED.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { protoRoot } from "../../provider/containerd/proto";

/** Full service names by the short names the client uses (`images`, `content`…). */
const SERVICES: Record<string, string> = {
  version: "containerd.services.version.v1.Version",
  introspection: "containerd.services.introspection.v1.Introspection",
  images: "containerd.services.images.v1.Images",
  content: "containerd.services.content.v1.Content",
  snapshots: "containerd.services.snapshots.v1.Snapshots",
  containers: "containerd.services.containers.v1.Containers",
  tasks: "containerd.services.tasks.v1.Tasks",
  leases: "containerd.services.leases.v1.Leases",
};

/** A scripted error: a gRPC status with containerd-style details. */
export class FakeStatus extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(details);
  }
}

export type UnaryHandler = (request: Record<string, unknown>) => Promise<object> | object;
/** Writes responses with `send`; resolves when the stream should end; `cancelled` is set when the client gave up. */
export type StreamHandler = (request: Record<string, unknown>, send: (message: object) => void, call: { cancelled: boolean }) => Promise<void>;

export interface FakeDaemon {
  readonly socket: string;
  /** `unix://` + socket. */
  readonly address: string;
  /** Calls seen, as `service.Method`. */
  readonly calls: string[];
  /** Streams the client cancelled (e.g. on a stall timeout), as `service.Method`. */
  readonly cancelled: string[];
  stop(): Promise<void>;
}

/** Starts a fake daemon answering `handlers` (`"images.Get": (req) => ({ image })`, `"content.Read": async (req, send) => …`). */
export async function startFakeDaemon(given: Record<string, UnaryHandler | StreamHandler>): Promise<FakeDaemon> {
  // Poses as a supported containerd unless told otherwise: the library asks the Version service first.
  const handlers: Record<string, UnaryHandler | StreamHandler> = { "version.Version": () => ({ version: "v1.6.20-fake", revision: "fake" }), ...given };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-ctrd-"));
  const socket = path.join(dir, "fake.sock");
  const root = protoRoot();
  const server = new grpc.Server();
  const calls: string[] = [];
  const cancelled: string[] = [];
  for (const [short, full] of Object.entries(SERVICES)) {
    const service = root.lookupService(full);
    const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(service.methods)) {
      method.resolve();
      const req = method.resolvedRequestType!;
      const res = method.resolvedResponseType!;
      const key = `${short}.${name}`;
      definition[name] = {
        path: `/${full}/${name}`,
        requestStream: !!method.requestStream,
        responseStream: !!method.responseStream,
        requestSerialize: (m: object) => Buffer.from(req.encode(req.fromObject(m)).finish()),
        requestDeserialize: (b: Buffer) => req.toObject(req.decode(b), { longs: Number, defaults: true }) as object,
        responseSerialize: (m: object) => Buffer.from(res.encode(res.fromObject(m)).finish()),
        responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), { longs: Number, defaults: true }) as object,
      };
      const handler = handlers[key];
      const fail = (err: unknown) =>
        err instanceof FakeStatus ? { code: err.code, details: err.details } : { code: grpc.status.UNKNOWN, details: String((err as Error).message ?? err) };
      if (method.responseStream) {
        implementation[name] = async (call: grpc.ServerWritableStream<Record<string, unknown>, object>) => {
          calls.push(key);
          const state = { cancelled: false };
          call.on("cancelled", () => {
            state.cancelled = true;
            cancelled.push(key);
          });
          if (!handler) return call.destroy(Object.assign(new Error(`${key} not scripted`), { code: grpc.status.UNIMPLEMENTED }));
          try {
            await (handler as StreamHandler)(call.request, (m) => call.write(m), state);
            if (!state.cancelled) call.end();
          } catch (err) {
            if (!state.cancelled) call.destroy(Object.assign(new Error("fake"), fail(err)));
          }
        };
      } else {
        implementation[name] = (call: grpc.ServerUnaryCall<Record<string, unknown>, object>, callback: grpc.sendUnaryData<object>) => {
          calls.push(key);
          if (!handler) return callback({ code: grpc.status.UNIMPLEMENTED, details: `${key} not scripted` });
          Promise.resolve()
            .then(() => (handler as UnaryHandler)(call.request))
            .then((response) => callback(null, response), (err) => callback(fail(err)));
        };
      }
    }
    server.addService(definition as grpc.ServiceDefinition, implementation);
  }
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  return {
    socket,
    address: `unix://${socket}`,
    calls,
    cancelled,
    async stop() {
      server.forceShutdown();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
