/**
 * A stand-in for ContainerdClient that needs no daemon: each unary method the
 * code under test calls answers from a handler, and every call is recorded with
 * the lease it was made under. Like containerd's `fakeImage`, it implements only
 * what the steps use.
 */
import assert from "node:assert/strict";
import { RestoreError } from "../../provider/errors";
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
  /** The content store: Content.Read streams from it, Content.Write commits into it, Content.Info answers from it. */
  content: Map<string, Buffer>;
  /** `service.Method` of every call, with `@lease` when made under one. */
  log(): string[];
}

/** The RestoreError `work` rejects with; fails the test when it succeeds or throws anything else. */
export async function restoreErrorOf(work: Promise<unknown>): Promise<RestoreError> {
  const err = await work.then(
    () => assert.fail("succeeded, but a RestoreError was expected"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof RestoreError, `a RestoreError, not ${String(err)}`);
  return err;
}

/** A ContainerdError as the client would throw it. */
export function daemonFailure(code: ContainerdErrorCode, method: string, details = `${code} (fake)`): ContainerdError {
  return new ContainerdError(code, method, details, "unix:///fake.sock");
}

/** Methods that answer with an empty message unless a handler says otherwise. */
const EMPTY_BY_DEFAULT = new Set<string>(["leases.Create", "leases.Delete", "tasks.Pause", "tasks.Resume", "tasks.Kill", "tasks.Delete", "containers.Delete", "snapshots.Remove", "images.Delete"]);

export function fakeDaemon(handlers: Handlers = {}, options: { address?: string; namespace?: string } = {}): FakeDaemon {
  const calls: RecordedCall[] = [];
  const content = new Map<string, Buffer>();
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
        if (method === "content.Info") {
          const { digest } = request as { digest: string };
          const blob = content.get(digest);
          if (!blob) throw daemonFailure("not-found", method, `content digest ${digest}: not found`);
          return { info: { digest, size: blob.length } };
        }
        if (EMPTY_BY_DEFAULT.has(method)) return {};
        throw daemonFailure("unimplemented", method, `fake daemon has no handler for ${method}`);
      },
      async *stream(method: string, request: { digest: string; offset?: number; size?: number }) {
        calls.push({ method, lease, request });
        const blob = content.get(request.digest);
        if (!blob) throw daemonFailure("not-found", method, `content digest ${request.digest}: not found`);
        const offset = request.offset ?? 0;
        yield { offset, data: blob.subarray(offset, request.size ? offset + request.size : undefined) };
      },
      duplex(method: string) {
        calls.push({ method, lease, request: undefined });
        return fakeWrite(content);
      },
    };
    // The fake implements the part of the client the code under test uses.
    return fake as unknown as ContainerdClient;
  };
  return {
    client: make(undefined),
    calls,
    content,
    log: () => calls.map((c) => (c.lease ? `${c.method}@lease` : c.method)),
  };
}

/** Content.Write against a map: STAT from offset 0, WRITE appends, COMMIT stores the bytes under the expected digest. */
function fakeWrite(content: Map<string, Buffer>) {
  const chunks: Buffer[] = [];
  let offset = 0;
  const replies: { action: string; offset: number; total: number; digest: string }[] = [];
  return {
    async send(request: { action: string; expected?: string; total?: number }, data?: readonly Uint8Array[]) {
      if (request.action === "WRITE" && data) {
        for (const d of data) {
          chunks.push(Buffer.from(d));
          offset += d.length;
        }
      }
      if (request.action === "COMMIT" && request.expected) {
        if (content.has(request.expected)) throw daemonFailure("already-exists", "content.Write", `content ${request.expected}: already exists`);
        content.set(request.expected, Buffer.concat(chunks));
      }
      replies.push({ action: request.action, offset, total: request.total ?? offset, digest: request.expected ?? "" });
    },
    async receive() {
      const reply = replies.shift();
      if (!reply) throw daemonFailure("unknown", "content.Write", "nothing sent");
      return reply;
    },
    end: () => undefined,
    cancel: () => undefined,
  };
}
