/**
 * Test harness: private containerd daemons, the busybox base image,
 * checkpoint fixtures (made with `ctr`, independent of provider/ and sdk/)
 * and inventories for leak checks.
 */
export * from "./containerd";
export * from "./image";
export * from "./fixtures";
export * from "./inventory";
export * from "./mediatypes";
export { createTar, createOciLayoutTar, sha256Digest, blob, type TarEntry, type LayoutBlob } from "./tar";
export { runProcess, waitFor, sleep, pidAlive, listProcesses, mountsUnder, type ProcessResult, type ProcInfo } from "./proc";
export { generateTlsMaterial, startTlsGateway, freeLoopbackPort, type TlsMaterial, type CertKeyPair, type TlsGateway } from "./tls";
export { SPEC_TYPE_URL, anyBlob, runcOptionsBlob, checkpointSpec, makeHostileCheckpoint, type HostileCheckpointOptions, type RuncOptionsFixture } from "./hostile";
export { daemonSuite, daemonPair, DaemonSuite, type DaemonSuiteOptions, type DaemonPair } from "./suite";
export * from "./versions";
