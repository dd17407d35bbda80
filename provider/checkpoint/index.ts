/** Checkpoint images: decoding, reading them from a daemon, and making them. */
export { chainId } from "./chain-id";
export { decodeCheckpointIndex, type CheckpointFormat, type CheckpointIndex, type OciDescriptor, type Platform } from "./decode";
export { Annotation, MediaType, SPEC_TYPE_URL, hostPlatform } from "./media-types";
export {
  checkpointPlatform,
  readBaseImage,
  readCheckpointConfig,
  readCheckpointImage,
  type BaseImage,
  type CheckpointConfig,
  type CheckpointImage,
  type RuntimeOptions,
} from "./reader";
export { imageDigest, removeImage } from "./images";
export { checkpointContainer, type CheckpointOptions, type CheckpointResult } from "./create";
