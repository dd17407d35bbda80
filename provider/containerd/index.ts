export { connect, parseAddress, ContainerdClient, DuplexCall, DEFAULT_ADDRESS, DEFAULT_NAMESPACE } from "./client";
export type { CallOptions, ConnectOptions, DaemonAddress, TlsOptions } from "./client";
export { ContainerdError, isContainerdError, toContainerdError, unlessNotFound } from "./errors";
export type { ContainerdErrorCode } from "./errors";
export { readBlob, readChunks, writeBlob, digestOf } from "./content";
export type { BlobTarget, WriteBlobResult } from "./content";
export { LEASE_TTL_MS, closeLease, openLease } from "./leases";
export { messageType, encodeMessage, decodeMessage, encodeAny, decodeAny, packAny, protoDir } from "./proto";
export type * from "./types";
