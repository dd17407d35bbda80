import { decodeMessage, encodeMessage, messageType } from "./proto";

/** The type URL of runc's options inside a `google.protobuf.Any` (bare: containerd 1.6 resolves only this form). */
export const RUNC_OPTIONS_TYPE_URL = "containerd.runc.v1.Options";

/** runc shim options (containerd.runc.v1.Options), camelCase. */
export interface RuncOptions {
  noPivotRoot?: boolean;
  noNewKeyring?: boolean;
  shimCgroup?: string;
  ioUid?: number;
  ioGid?: number;
  binaryName?: string;
  root?: string;
  criuPath?: string;
  systemdCgroup?: boolean;
  criuImagePath?: string;
  criuWorkPath?: string;
}

/** True for the type URLs runc's options are written with. */
export function isRuncOptionsType(typeUrl: string): boolean {
  return typeUrl === RUNC_OPTIONS_TYPE_URL || typeUrl === `type.googleapis.com/${RUNC_OPTIONS_TYPE_URL}`;
}

const KNOWN_FIELDS = new Set(messageType(RUNC_OPTIONS_TYPE_URL).fieldsArray.map((f) => f.id));

/**
 * The top-level field numbers of a protobuf message, read from the wire format
 * without a schema (a decoder silently skips what it does not know).
 */
export function fieldNumbers(bytes: Uint8Array): number[] {
  const found = new Set<number>();
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= bytes.length || shift > 49) throw new RangeError("truncated varint");
      const byte = bytes[at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < bytes.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    found.add(field);
    switch (tag & 7) {
      case 0:
        varint();
        break;
      case 1:
        at += 8;
        break;
      case 2: {
        const length = varint(); // read first: `at += varint()` would add to the old offset
        at += length;
        break;
      }
      case 5:
        at += 4;
        break;
      default:
        throw new RangeError(`wire type ${tag & 7} of field ${field} is not supported`);
    }
    if (at > bytes.length) throw new RangeError(`field ${field} runs past the end`);
  }
  return [...found];
}

/** Decodes runc's options; `unknownFields` lists field numbers this schema lacks. Throws on malformed bytes. */
export function decodeRuncOptions(bytes: Uint8Array): { options: RuncOptions; unknownFields: number[] } {
  const unknownFields = fieldNumbers(bytes).filter((n) => !KNOWN_FIELDS.has(n));
  return { options: decodeMessage<RuncOptions>(messageType(RUNC_OPTIONS_TYPE_URL), bytes), unknownFields };
}

/** Encodes runc's options: only the fields given, only fields this schema knows. */
export function encodeRuncOptions(options: RuncOptions): Buffer {
  return encodeMessage(messageType(RUNC_OPTIONS_TYPE_URL), options);
}
