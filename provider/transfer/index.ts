/** Moving checkpoints between daemons. */
export { copyCheckpoint, type BlobCopied, type CopyOptions, type CopyResult } from "./copy";
