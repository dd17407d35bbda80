import type * as pulumi from "@pulumi/pulumi";

/** TLS material (PEM) for a `tcp://` daemon. Pass it as `pulumi.secret(...)`. */
export interface DaemonTls {
  /** CA certificate(s) the daemon's certificate must chain to. */
  ca: pulumi.Input<string>;
  /** Client certificate for mutual TLS; give it with `key`, or neither when the daemon asks for no client certificate. */
  cert?: pulumi.Input<string>;
  key?: pulumi.Input<string>;
  /** Name to verify in the daemon's certificate when it differs from the address host. */
  serverName?: pulumi.Input<string>;
}

/** How to reach a containerd daemon. */
export interface DaemonArgs {
  /** `unix:///path/containerd.sock` (default the system socket) or `tcp://host:port`. */
  address?: pulumi.Input<string>;
  /** containerd namespace. Default `default`. */
  namespace?: pulumi.Input<string>;
  /** Mutual TLS for `tcp://`; kept secret in state. */
  tls?: pulumi.Input<DaemonTls>;
  /** Allow plaintext `tcp://`. Default false: plaintext TCP is refused at check. */
  insecure?: pulumi.Input<boolean>;
}

/** Resource options with TLS material kept secret in outputs too. */
export function withSecretTls(opts: pulumi.CustomResourceOptions | undefined, keys: string[]): pulumi.CustomResourceOptions {
  return { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...keys] };
}
