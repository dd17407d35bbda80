/** Container labels this project writes (containerd does not restore labels). */
export const Label = {
  /** Marks containers this project restored and manages. */
  managedBy: "containerd-restore/managed-by",
  checkpointRef: "containerd-restore/checkpoint-ref",
  checkpointDigest: "containerd-restore/checkpoint-digest",
  checkpointFormat: "containerd-restore/checkpoint-format",
  /** Who manages the container, e.g. `pulumi:<project>/<stack>/<resource name>` (free-form). */
  owner: "containerd-restore/owner",
  /** How the container was restored: `live` (CRIU) or `cold` (filesystem only). */
  mode: "containerd-restore/mode",
  /** containerd's own stop-signal label, honoured by ctr and by our teardown. */
  stopSignal: "io.containerd.image.config.stop-signal",
} as const;

export const MANAGED_BY = "pulumi-containerd-restore";

/** True for label keys this project owns (users may not set them): the `containerd-restore/` prefix and containerd's stop signal. */
export function isReservedLabel(key: string): boolean {
  return key.startsWith("containerd-restore/") || key === Label.stopSignal;
}
