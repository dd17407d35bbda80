import * as pulumi from "@pulumi/pulumi";
import { CheckpointCopy, ContainerCheckpoint, RestoredContainer, type DaemonTls } from "pulumi-containerd-restore";

const config = new pulumi.Config();

// Where the container runs now, and where it should run.
const source = { address: config.require("sourceAddress"), namespace: config.get("sourceNamespace") ?? "default" };
const target = {
  address: config.require("targetAddress"),
  namespace: config.get("targetNamespace") ?? "default",
  // For tcp:// targets: { ca, cert, key } as a secret object (`pulumi config set --secret --path targetTls.key …`).
  tls: config.getSecretObject<DaemonTls>("targetTls"),
};

// 1. Checkpoint the running container on the source; keep the image if the stack is destroyed.
const checkpoint = new ContainerCheckpoint(
  "app",
  { ...source, containerId: config.require("containerId"), leaveRunning: config.getBoolean("leaveRunning") ?? true },
  { retainOnDelete: true },
);

// 2. Copy it (and the base image, if the target lacks it) to the target daemon.
const copy = new CheckpointCopy("to-target", { source: { ...source, ref: checkpoint.ref }, target });

// 3. Restore it there: the process continues from the checkpoint.
const restored = new RestoredContainer("app-on-target", {
  ...target,
  checkpoint: copy.targetRef,
  logPath: config.get("logPath"),
  stopTimeoutSeconds: 2,
});

export const checkpointRef = checkpoint.ref;
export const checkpointDigest = checkpoint.digest;
export const bytesMoved = copy.bytesMoved;
export const targetContainerId = restored.containerId;
export const targetPid = restored.pid;
export const targetStatus = restored.status;
