/**
 * The codecs of the two messages that carry blob bytes, Content.Read's answer and
 * Content.Write's WRITE request, without protobufjs in the data path:
 *
 * - ReadContentResponse is parsed by hand and its `data` is a view into the
 *   message buffer grpc-js received (no copy, no Reader/toObject objects);
 * - a WriteContentRequest with data is its small header (action, ref, total,
 *   expected, offset; encoded by protobufjs, a few dozen bytes) followed by the
 *   `data` field framed as tag + length + the bytes, written once into the
 *   buffer grpc-js sends (protobufjs would copy the bytes into its writer and
 *   then again out of it).
 *
 * Both produce and accept exactly protobuf's wire format (a field may come in
 * any order; the last occurrence of a scalar wins), so a daemon cannot tell them
 * from the generic codec; the unit tests round-trip them against protobufjs.
 */
import type * as protobuf from "protobufjs";

/** Field numbers (containerd/api/services/content/v1/content.proto). */
const READ_OFFSET = 1;
const READ_DATA = 2;
const WRITE_DATA = 6;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;

export interface ReadContentResponse {
  offset: number;
  data: Uint8Array;
}

/** Thrown for bytes that are not a well-formed message (grpc-js turns a deserializer's throw into INTERNAL). */
function malformed(why: string): Error {
  return new Error(`ReadContentResponse: ${why}`);
}

/** A base-128 varint at `pos` as a Number (exact below 2^53: offsets and lengths), and where it ends. */
function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw malformed("truncated varint");
    const b = buf[pos++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, pos];
    scale *= 128;
  }
  throw malformed("varint longer than 10 bytes");
}

/** Decodes a ReadContentResponse; `data` is a view of `buf` (valid as long as `buf` is). */
export function decodeReadContentResponse(buf: Uint8Array): ReadContentResponse {
  let offset = 0;
  let data: Uint8Array = buf.subarray(0, 0);
  let pos = 0;
  while (pos < buf.length) {
    let key: number;
    [key, pos] = readVarint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 0) throw malformed("field number 0");
    if (wire === WIRE_VARINT) {
      let value: number;
      [value, pos] = readVarint(buf, pos);
      if (field === READ_OFFSET) offset = value;
    } else if (wire === WIRE_LENGTH) {
      let length: number;
      [length, pos] = readVarint(buf, pos);
      if (pos + length > buf.length) throw malformed(`field ${field} runs ${pos + length - buf.length} bytes past the end`);
      if (field === READ_DATA) data = buf.subarray(pos, pos + length);
      pos += length;
    } else if (wire === WIRE_FIXED64 || wire === WIRE_FIXED32) {
      pos += wire === WIRE_FIXED64 ? 8 : 4;
      if (pos > buf.length) throw malformed("truncated fixed-width field");
    } else {
      throw malformed(`unsupported wire type ${wire}`);
    }
  }
  return { offset, data };
}

function varintLength(n: number): number {
  let length = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    length++;
  }
  return length;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/**
 * The encoder of WriteContentRequest: `encodeHeader` is the generic encoder
 * (protobufjs), used for the message without its data; the data bytes are then
 * framed after it in one buffer, copied once.
 */
export function writeContentRequestEncoder(encodeHeader: (message: object) => Buffer): (message: object) => Buffer {
  return (message) => {
    const { data, ...rest } = message as { data?: Uint8Array };
    if (!data || data.length === 0) return encodeHeader(message);
    const header = encodeHeader(rest);
    const tag = (WRITE_DATA << 3) | WIRE_LENGTH;
    const out = Buffer.allocUnsafe(header.length + 1 + varintLength(data.length) + data.length);
    header.copy(out, 0);
    let pos = header.length;
    out[pos++] = tag;
    pos = writeVarint(out, pos, data.length);
    out.set(data, pos);
    encoded.set(message, out);
    return out;
  };
}

/** Each WRITE request's encoding, until the writer releases it (see releaseEncoded). */
const encoded = new WeakMap<object, Buffer>();

/**
 * Frees, now, the memory behind `buffer` when it is a whole allocation of its own
 * (at least 64 KiB, the view spanning all but a message header of it: never a
 * slice of Node's shared pool). V8 would free it at its next GC, but lets dozens
 * of MiB of such garbage pile up first (external memory counts late); detaching
 * keeps a copy's memory flat. Only for bytes nobody else holds.
 */
export function release(buffer: Uint8Array): void {
  const ab = buffer.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer; detached?: boolean };
  if (ab instanceof ArrayBuffer && !ab.detached && ab.byteLength >= 64 * 1024 && ab.byteLength - buffer.byteLength <= 64 && ab.transfer) ab.transfer(0);
}

/** Frees the encoding of a WRITE request once the transport has taken it (grpc-js has copied it into its frame by then). */
export function releaseEncoded(message: object): void {
  const out = encoded.get(message);
  encoded.delete(message);
  if (out) release(out);
}

/** The generic protobufjs encoder of `type`, as the header encoder above expects. */
export function protobufEncoder(type: protobuf.Type): (message: object) => Buffer {
  return (message) => {
    const bytes = type.encode(type.fromObject(message)).finish();
    // protobufjs gives a Buffer on Node; a view, not a copy, either way.
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}
