/**
 * A stand-in for ContainerdClient that needs no daemon: each unary method the
 * code under test calls answers from a handler, and every call is recorded with
 * the lease it was made under. Like containerd's `fakeImage`, it implements only
 * what the steps use.
 */
import { ContainerdError, type ContainerdClient, type ContainerdErrorCode, type UnaryMethod, type UnaryMethods } from "../../provider/containerd";

export interface RecordedCall {
  method: string;
  lease?: string;
  request: unknown;
}

type Handler<M extends UnaryMethod> = (request: UnaryMethods[M][0]) => UnaryMethods[M][1] | Promise<UnaryMethods[M][1]>;
export type Handlers = { [M in UnaryMethod]?: Handler<M> };

export interface FakeDaemon {
  client: ContainerdClient;
  calls: RecordedCall[];
  /** `service.Method` of every call, with `@lease` when made under one. */
  log(): string[];
}

/** A ContainerdError as the client would throw it. */
export function daemonFailure(code: ContainerdErrorCode, method: string, details = `${code} (fake)`): ContainerdError {
  return new ContainerdError(code, method, details, "unix:///fake.sock");
}

/** Methods that answer with an empty message unless a handler says otherwise. */
const EMPTY_BY_DEFAULT = new Set<string>(["leases.Create", "leases.Delete", "tasks.Pause", "tasks.Resume", "tasks.Kill", "tasks.Delete", "containers.Delete", "snapshots.Remove", "images.Delete"]);

export function fakeDaemon(handlers: Handlers = {}, options: { address?: string; namespace?: string } = {}): FakeDaemon {
  const calls: RecordedCall[] = [];
  const make = (lease: string | undefined): ContainerdClient => {
    const fake = {
      address: options.address ?? "unix:///fake.sock",
      namespace: options.namespace ?? "fake",
      lease,
      withLease: (id: string | undefined) => make(id),
      close: () => undefined,
      async call(method: UnaryMethod, request: unknown) {
        calls.push({ method, lease, request });
        const handler = handlers[method] as ((request: unknown) => unknown) | undefined;
        if (handler) return handler(request);
        if (EMPTY_BY_DEFAULT.has(method)) return {};
        throw daemonFailure("unimplemented", method, `fake daemon has no handler for ${method}`);
      },
    };
    // The fake implements the part of the client the code under test uses.
    return fake as unknown as ContainerdClient;
  };
  return {
    client: make(undefined),
    calls,
    log: () => calls.map((c) => (c.lease ? `${c.method}@lease` : c.method)),
  };
}
