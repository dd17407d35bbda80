/**
 * The messages we exchange with containerd, as plain objects (protobufjs camelCase
 * field names). Only the fields this project uses are listed; the wire contract is
 * in proto/.
 */

export type Labels = Record<string, string>;

/** google.protobuf.Any. */
export interface Any {
  typeUrl: string;
  value: Uint8Array;
}

/** google.protobuf.Timestamp. */
export interface Timestamp {
  seconds: number;
  nanos: number;
}

/** containerd.types.Descriptor (an OCI content descriptor). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Labels;
}

/** containerd.types.Mount. */
export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

export interface Image {
  name: string;
  labels?: Labels;
  target: Descriptor;
  createdAt?: Timestamp;
  updatedAt?: Timestamp;
}

export interface Container {
  id: string;
  labels?: Labels;
  image?: string;
  runtime?: { name: string; options?: Any | null };
  spec?: Any | null;
  snapshotter?: string;
  snapshotKey?: string;
  createdAt?: Timestamp;
  updatedAt?: Timestamp;
}

export type TaskStatus = "UNKNOWN" | "CREATED" | "RUNNING" | "STOPPED" | "PAUSED" | "PAUSING";

/** containerd.v1.types.Process. */
export interface Process {
  containerId: string;
  id: string;
  pid: number;
  status: TaskStatus;
  exitStatus: number;
  exitedAt?: Timestamp | null;
}

export interface ContentInfo {
  digest: string;
  size: number;
  labels?: Labels;
  createdAt?: Timestamp;
  updatedAt?: Timestamp;
}

export type SnapshotKind = "UNKNOWN" | "VIEW" | "ACTIVE" | "COMMITTED";

export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  labels?: Labels;
}

export interface Lease {
  id: string;
  createdAt?: Timestamp | null;
  labels?: Labels;
}

export interface Plugin {
  type: string;
  id: string;
  initErr?: { code: number; message: string } | null;
}

export type WriteAction = "STAT" | "WRITE" | "COMMIT";

export interface WriteContentRequest {
  action: WriteAction;
  ref: string;
  total?: number;
  expected?: string;
  offset?: number;
  /** `data` (field 6) is not here: it is DuplexCall.send's second argument, sent as it is. */
  labels?: Labels;
}

export interface WriteContentResponse {
  action: WriteAction;
  offset: number;
  total: number;
  digest: string;
}

type Empty = Record<string, never>;

/**
 * Every unary method we call: `service.Method` → [request, response]. The service
 * part maps to `containerd.services.<service>.v1.<Service>` (see SERVICES in proto.ts).
 */
export interface UnaryMethods {
  "version.Version": [Empty, { version: string; revision: string }];
  "namespaces.List": [{ filter?: string }, { namespaces: { name: string; labels?: Labels }[] }];
  "introspection.Plugins": [{ filters?: string[] }, { plugins: Plugin[] }];
  "images.Get": [{ name: string }, { image: Image }];
  "images.List": [{ filters?: string[] }, { images: Image[] }];
  "images.Create": [{ image: Image }, { image: Image }];
  "images.Update": [{ image: Image; updateMask?: { paths: string[] } }, { image: Image }];
  "images.Delete": [{ name: string; sync?: boolean }, Empty];
  "content.Info": [{ digest: string }, { info: ContentInfo }];
  "content.Delete": [{ digest: string }, Empty];
  "content.Update": [{ info: { digest: string; labels?: Labels }; updateMask?: { paths: string[] } }, { info: ContentInfo }];
  "content.Status": [{ ref: string }, { status: { ref: string; offset: number; total: number } }];
  "content.ListStatuses": [{ filters?: string[] }, { statuses: { ref: string; offset: number; total: number }[] }];
  "content.Abort": [{ ref: string }, Empty];
  "snapshots.Prepare": [
    { snapshotter: string; key: string; parent: string; labels?: Labels },
    { mounts: Mount[] },
  ];
  "snapshots.View": [
    { snapshotter: string; key: string; parent: string; labels?: Labels },
    { mounts: Mount[] },
  ];
  "snapshots.Mounts": [{ snapshotter: string; key: string }, { mounts: Mount[] }];
  "snapshots.Commit": [{ snapshotter: string; name: string; key: string; labels?: Labels }, Empty];
  "snapshots.Remove": [{ snapshotter: string; key: string }, Empty];
  "snapshots.Stat": [{ snapshotter: string; key: string }, { info: SnapshotInfo }];
  "diff.Apply": [{ diff: Descriptor; mounts: Mount[] }, { applied: Descriptor }];
  "diff.Diff": [
    { left: Mount[]; right: Mount[]; mediaType?: string; ref?: string; labels?: Labels },
    { diff: Descriptor },
  ];
  "containers.Get": [{ id: string }, { container: Container }];
  "containers.List": [{ filters?: string[] }, { containers: Container[] }];
  "containers.Create": [{ container: Container }, { container: Container }];
  "containers.Update": [{ container: Container; updateMask?: { paths: string[] } }, { container: Container }];
  "containers.Delete": [{ id: string }, Empty];
  "tasks.Create": [
    {
      containerId: string;
      rootfs: Mount[];
      stdin?: string;
      stdout?: string;
      stderr?: string;
      terminal?: boolean;
      checkpoint?: Descriptor;
      options?: Any;
    },
    { containerId: string; pid: number },
  ];
  "tasks.Start": [{ containerId: string; execId?: string }, { pid: number }];
  "tasks.Delete": [{ containerId: string }, { id: string; pid: number; exitStatus: number; exitedAt?: Timestamp }];
  "tasks.Get": [{ containerId: string; execId?: string }, { process: Process }];
  "tasks.List": [{ filter?: string }, { tasks: Process[] }];
  "tasks.Kill": [{ containerId: string; execId?: string; signal: number; all?: boolean }, Empty];
  "tasks.Pause": [{ containerId: string }, Empty];
  "tasks.Resume": [{ containerId: string }, Empty];
  "tasks.Wait": [{ containerId: string; execId?: string }, { exitStatus: number; exitedAt?: Timestamp }];
  "tasks.Checkpoint": [
    { containerId: string; parentCheckpoint?: string; options?: Any },
    { descriptors: Descriptor[] },
  ];
  "leases.Create": [{ id: string; labels?: Labels }, { lease: Lease }];
  "leases.Delete": [{ id: string; sync?: boolean }, Empty];
  "leases.List": [{ filters?: string[] }, { leases: Lease[] }];
  "leases.AddResource": [{ id: string; resource: { id: string; type: string } }, Empty];
}

/** Server-streaming methods. */
export interface ServerStreamMethods {
  /** Answered in pieces: `data` is part of one answer's data, `offset` where it starts in the blob. */
  "content.Read": [{ digest: string; offset?: number; size?: number }, { offset: number; data: Uint8Array }];
}

/** Bidirectional-streaming methods. */
export interface BidiStreamMethods {
  "content.Write": [WriteContentRequest, WriteContentResponse];
}

export type UnaryMethod = keyof UnaryMethods;
export type ServerStreamMethod = keyof ServerStreamMethods;
export type BidiStreamMethod = keyof BidiStreamMethods;
export type Method = UnaryMethod | ServerStreamMethod | BidiStreamMethod;
