import * as fs from "node:fs";
import * as path from "node:path";
import * as protobuf from "protobufjs";
import type { Any, Method } from "./types";

/** Service short name → the .proto file under proto/ and the full service name. */
const SERVICES = {
  version: ["services/version/v1/version.proto", "containerd.services.version.v1.Version"],
  namespaces: ["services/namespaces/v1/namespace.proto", "containerd.services.namespaces.v1.Namespaces"],
  introspection: ["services/introspection/v1/introspection.proto", "containerd.services.introspection.v1.Introspection"],
  images: ["services/images/v1/images.proto", "containerd.services.images.v1.Images"],
  content: ["services/content/v1/content.proto", "containerd.services.content.v1.Content"],
  snapshots: ["services/snapshots/v1/snapshots.proto", "containerd.services.snapshots.v1.Snapshots"],
  diff: ["services/diff/v1/diff.proto", "containerd.services.diff.v1.Diff"],
  containers: ["services/containers/v1/containers.proto", "containerd.services.containers.v1.Containers"],
  tasks: ["services/tasks/v1/tasks.proto", "containerd.services.tasks.v1.Tasks"],
  leases: ["services/leases/v1/leases.proto", "containerd.services.leases.v1.Leases"],
} as const;

const EXTRA_FILES = ["runc/options/oci.proto"];

/** The encode/decode pair and gRPC path of one method. */
export interface MethodCodec {
  path: string;
  encode(message: object): Buffer;
  decode(bytes: Buffer): unknown;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true };

/**
 * The proto/ directory of this package. Found relative to this file, never the
 * process's working directory: the Pulumi dynamic provider runs elsewhere.
 */
export function protoDir(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "proto");
    if (fs.existsSync(path.join(candidate, "types", "descriptor.proto"))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`proto/ directory not found above ${__dirname}`);
  }
}

let root: protobuf.Root | undefined;

/** Loads (once) every .proto file this project uses. */
export function protoRoot(): protobuf.Root {
  if (root) return root;
  const dir = protoDir();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => path.join(dir, target);
  r.loadSync([...Object.values(SERVICES).map(([file]) => file), ...EXTRA_FILES]);
  camelCaseAny(r);
  r.resolveAll();
  root = r;
  return r;
}

/** A message type by full name, e.g. `containerd.runc.v1.Options`. */
export function messageType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(fullName);
}

/** Encodes a plain object as `type`. */
export function encodeMessage(type: protobuf.Type, message: object): Buffer {
  return Buffer.from(type.encode(type.fromObject(message)).finish());
}

/** Decodes bytes of `type` into a plain object with defaults filled in. */
export function decodeMessage<T>(type: protobuf.Type, bytes: Uint8Array): T {
  // A plain Uint8Array view, never a Buffer: protobufjs's Buffer reader silently cuts a
  // string that runs past the end of a truncated message; its array reader throws.
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return type.toObject(type.decode(view), TO_OBJECT) as T;
}

/** A serialized google.protobuf.Any: how checkpoint blobs carry runtime and checkpoint options and the spec. */
export function encodeAny(any: Any): Buffer {
  return encodeMessage(messageType("google.protobuf.Any"), any);
}

/** Decodes a serialized google.protobuf.Any; throws protobufjs's error for bytes that are not one. */
export function decodeAny(bytes: Uint8Array): Any {
  return decodeMessage<Any>(messageType("google.protobuf.Any"), bytes);
}

/** `message` encoded as `typeName`, packed in an Any with the bare type name as URL (what containerd writes). */
export function packAny(typeName: string, message: object): Any {
  return { typeUrl: typeName, value: encodeMessage(messageType(typeName), message) };
}

/**
 * protobufjs always uses its bundled google/protobuf/any.proto, whose field keeps
 * the snake_case name `type_url`; rename it so Any reads like every other message.
 */
function camelCaseAny(r: protobuf.Root): void {
  const any = r.lookupType("google.protobuf.Any");
  const typeUrl = any.fields.type_url;
  if (!typeUrl) return;
  any.remove(typeUrl);
  any.add(new protobuf.Field("typeUrl", typeUrl.id, "string"));
}

const codecs = new Map<Method, MethodCodec>();

/** The codec of `service.Method`, built once from the loaded protos. */
export function methodCodec(method: Method): MethodCodec {
  let codec = codecs.get(method);
  if (codec) return codec;
  const [service, name] = method.split(".") as [keyof typeof SERVICES, string];
  const fullService = SERVICES[service][1];
  const m = protoRoot().lookupService(fullService).methods[name];
  if (!m?.resolvedRequestType || !m.resolvedResponseType) throw new Error(`unknown method ${method}`);
  const requestType = m.resolvedRequestType;
  const responseType = m.resolvedResponseType;
  codec = {
    path: `/${fullService}/${name}`,
    encode: (message) => encodeMessage(requestType, message),
    decode: (bytes) => decodeMessage(responseType, bytes),
  };
  codecs.set(method, codec);
  return codec;
}
