import * as pulumi from "@pulumi/pulumi";
import { CheckpointCopy, RestoredContainer } from "pulumi-containerd-restore";

const config = new pulumi.Config();

// The checkpoint, on the daemon that has it.
const source = { address: config.require("sourceAddress"), namespace: config.get("sourceNamespace") ?? "default", ref: config.require("checkpoint") };
// The fleet: one restored container per daemon address. The engine runs them in parallel.
const daemons = config.requireObject<string[]>("daemons");
const namespace = config.get("namespace") ?? "default";

const replicas = daemons.map((address, i) => {
  const copy = new CheckpointCopy(`copy-${i}`, { source, target: { address, namespace } });
  return new RestoredContainer(`replica-${i}`, { checkpoint: copy.targetRef, address, namespace, stopTimeoutSeconds: 2 });
});

export const containerIds = replicas.map((r) => r.containerId);
export const pids = replicas.map((r) => r.pid);
export const statuses = replicas.map((r) => r.status);
