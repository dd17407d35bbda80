import * as pulumi from "@pulumi/pulumi";
import { RestoredContainer } from "pulumi-containerd-restore";

const config = new pulumi.Config();

// A container restored from a checkpoint image in the daemon's image store:
// CRIU brings the process back with its memory, so it continues where it was.
const counter = new RestoredContainer("counter", {
  checkpoint: config.get("checkpoint") ?? "checkpoint/counter:v1",
  address: config.get("address") ?? "unix:///run/containerd/containerd.sock",
  namespace: config.get("namespace") ?? "default",
  logPath: config.get("logPath"),
  labels: { app: "counter" },
  // The counter is pid 1 of its container and ignores SIGTERM: do not wait long for it.
  stopTimeoutSeconds: 2,
});

export const containerId = counter.containerId;
export const pid = counter.pid;
export const status = counter.status;
export const checkpointDigest = counter.checkpointDigest;
export const checkpointFormat = counter.checkpointFormat;
export const restoreDurationMs = counter.restoreDurationMs;
export const plan = counter.plan;
