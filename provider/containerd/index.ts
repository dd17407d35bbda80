export { connect, parseAddress, ContainerdClient, DuplexCall, DEFAULT_ADDRESS, DEFAULT_NAMESPACE } from "./client";
export type { CallOptions, ConnectOptions, DaemonAddress, TlsOptions } from "./client";
export { ContainerdError, isContainerdError, toContainerdError, unlessNotFound } from "./errors";
export type { ContainerdErrorCode } from "./errors";
export { readBlob, digestOf } from "./content";
export { messageType, encodeMessage, decodeMessage, protoDir } from "./proto";
export type * from "./types";
