/**
 * The codecs of the two messages that carry blob bytes, Content.Read's answer and
 * Content.Write's WRITE request, without protobufjs or a copy in the data path
 * (grpc-h2.ts carries them):
 *
 * - ReadContentResponse is parsed as its bytes arrive: once its `data` field is
 *   known to be the message's last (as every protobuf encoder writes it: field
 *   order), the bytes are handed on as views of what was received; any other
 *   layout (data not last, repeated, unknown fields before it) is collected
 *   whole and decoded by the generic rules below;
 * - a WriteContentRequest with data is its small header (action, ref, offset;
 *   encoded by protobufjs, a few dozen bytes) and the `data` field's tag and
 *   length, followed by the data buffers as they are.
 *
 * Both produce and accept exactly protobuf's wire format (a field may come in
 * any order; the last occurrence of a field wins), so a daemon cannot tell them
 * from the generic codec; the unit tests round-trip them against protobufjs.
 */
import { status as GrpcCode } from "@grpc/grpc-js";
import { GrpcStatusError, MessageFramer, type BodyDecoder } from "./grpc-h2";

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
function readVarint(buf: Uint8Array, pos: number, end = buf.length): [number, number] {
  const partial = tryVarint(buf, pos, end);
  if (partial === "truncated") throw malformed("truncated varint");
  return partial;
}

/** As readVarint, but `truncated` when the bytes up to `end` stop inside it. */
function tryVarint(buf: Uint8Array, pos: number, end: number): [number, number] | "truncated" {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return "truncated";
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


/** A piece of one answer's data and where it starts in the blob. */
export type ReadPiece = ReadContentResponse;

/** How many of a message's first bytes are looked at for the start of its data (offset and data key + length need at most 22). */
const HEAD_BYTES = 32;

/**
 * Content.Read's answers, decoded as they arrive: each message's `data` comes out
 * in pieces that are views of the received chunks, when the message is laid out
 * as encoders write it (`offset`, then `data` up to its end); any other message is
 * collected whole (at most `maxMessageBytes`, which the framer enforces) and
 * decoded by {@link decodeReadContentResponse}, so the last `data` wins as protobuf
 * says. Empty data gives no piece.
 */
export function readContentDecoder(maxMessageBytes: number): BodyDecoder<ReadPiece> {
  const out: ReadPiece[] = [];
  const head = Buffer.alloc(HEAD_BYTES);
  let length = 0;
  let headHave = 0;
  let mode: "head" | "data" | "whole" = "head";
  let whole: Buffer | undefined;
  let wholeHave = 0;
  let at = 0;

  /**
   * Looks at the head for a data field that runs to the message's end: where in the
   * head its bytes start, `whole` when the message is laid out otherwise, `more`
   * when the head does not tell yet.
   */
  const decide = (): number | "whole" | "more" => {
    const end = headHave;
    let pos = 0;
    let offset = 0;
    while (pos < end) {
      const key = tryVarint(head, pos, end);
      if (key === "truncated") break;
      const field = Math.floor(key[0] / 8);
      const wire = key[0] & 7;
      if (wire === WIRE_VARINT && field !== 0) {
        const value = tryVarint(head, key[1], end);
        if (value === "truncated") break;
        if (field === READ_OFFSET) offset = value[0];
        pos = value[1];
        continue;
      }
      if (wire === WIRE_LENGTH && field === READ_DATA) {
        const dataLength = tryVarint(head, key[1], end);
        if (dataLength === "truncated") break;
        const start = dataLength[1];
        if (start + dataLength[0] !== length) return "whole";
        at = offset;
        return start;
      }
      return "whole";
    }
    // Need more, or the message ends inside the head (onEnd decodes it); a head this long without data is decoded whole.
    return headHave === HEAD_BYTES && headHave < length ? "whole" : "more";
  };
  const collectWhole = (): void => {
    mode = "whole";
    whole = Buffer.allocUnsafe(length);
    head.copy(whole, 0, 0, headHave);
    wholeHave = headHave;
  };
  const emit = (data: Uint8Array): void => {
    out.push({ offset: at, data });
    at += data.length;
  };
  const decodeWhole = (bytes: Uint8Array): void => {
    let message: ReadContentResponse;
    try {
      message = decodeReadContentResponse(bytes);
    } catch (err) {
      throw new GrpcStatusError(GrpcCode.INTERNAL, `the daemon's answer does not decode: ${(err as Error).message}`);
    }
    if (message.data.length > 0) out.push(message);
  };

  const framer = new MessageFramer(maxMessageBytes, {
    onStart: (len) => {
      length = len;
      headHave = 0;
      mode = "head";
    },
    onBytes: (view) => {
      let rest = view;
      while (rest.length > 0) {
        if (mode === "data") return emit(rest);
        if (mode === "whole") {
          rest.copy(whole!, wholeHave);
          wholeHave += rest.length;
          return;
        }
        const before = headHave;
        const take = Math.min(rest.length, HEAD_BYTES - headHave);
        rest.copy(head, headHave, 0, take);
        headHave += take;
        const decision = decide();
        if (decision === "more") {
          rest = rest.subarray(take);
        } else if (decision === "whole") {
          collectWhole();
          rest = rest.subarray(take);
        } else {
          mode = "data";
          // The data as views of this chunk; only what of it came in an earlier chunk is copied (a few bytes).
          if (decision < before) emit(Buffer.from(head.subarray(decision, before)));
          rest = rest.subarray(Math.max(0, decision - before));
        }
      }
    },
    onEnd: () => {
      if (mode === "whole") decodeWhole(whole!);
      else if (mode === "head") decodeWhole(Buffer.from(head.subarray(0, headHave)));
      whole = undefined;
    },
  });
  return {
    push(chunk) {
      framer.push(chunk);
      return out.splice(0);
    },
    end: () => framer.end(),
    weigh: (piece) => piece.data.length + 64,
  };
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

/** gRPC's length prefix (uncompressed) of a message of `length` bytes. */
export function messagePrefix(length: number): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(length, 1);
  return prefix;
}

/**
 * The bytes before a WriteContentRequest's data, as one buffer: gRPC's prefix,
 * `header` (the request without its data, encoded), and the data field's tag and
 * length. The data (`dataLength` bytes) is sent right after it, as it is.
 */
export function writeRequestLead(header: Uint8Array, dataLength: number): Buffer {
  const messageLength = header.length + 1 + varintLength(dataLength) + dataLength;
  const lead = Buffer.allocUnsafe(5 + header.length + 1 + varintLength(dataLength));
  lead[0] = 0;
  lead.writeUInt32BE(messageLength, 1);
  lead.set(header, 5);
  let pos = 5 + header.length;
  lead[pos++] = (WRITE_DATA << 3) | WIRE_LENGTH;
  writeVarint(lead, pos, dataLength);
  return lead;
}
