import * as pulumi from "@pulumi/pulumi";

/** TLS material (PEM) for a `tcp://` daemon. Kept secret in state and output even when passed as plain strings. */
export interface DaemonTls {
  /** CA certificate(s) the daemon's certificate must chain to. */
  ca: pulumi.Input<string>;
  /** Client certificate for mutual TLS; give it with `key`, or neither when the daemon asks for no client certificate. */
  cert?: pulumi.Input<string>;
  /** PEM private key of `cert` (unencrypted). */
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
  /** Mutual TLS for `tcp://`; marked secret by this package (inputs and outputs), plain strings included. */
  tls?: pulumi.Input<DaemonTls>;
  /** Allow plaintext `tcp://`. Default false: plaintext TCP is refused at check. */
  insecure?: pulumi.Input<boolean>;
}

/** Resource options with TLS material kept secret in outputs too. */
export function withSecretTls(opts: pulumi.CustomResourceOptions | undefined, keys: string[]): pulumi.CustomResourceOptions {
  return { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...keys] };
}

/**
 * `tls` as a secret, however it was passed (plain strings too), the way
 * first-party providers mark key material: undefined stays undefined.
 */
export function secretTls(tls: pulumi.Input<DaemonTls> | undefined): pulumi.Output<unknown> | undefined {
  if (tls === undefined || tls === null) return undefined;
  return pulumi.output(tls).apply((t: unknown) => (t === undefined || t === null ? undefined : pulumi.secret(t)));
}

/** A daemon endpoint (`source` or `target` of a copy) as a secret when it carries TLS material. */
export function secretEndpoint(endpoint: pulumi.Input<unknown>): pulumi.Output<unknown> {
  return pulumi.output(endpoint as pulumi.Input<{ tls?: unknown }>).apply((e) => (e && e.tls !== undefined && e.tls !== null ? pulumi.secret(e) : e));
}

/**
 * The stack-config namespace of provider defaults:
 * `pulumi config set containerd-restore:address tcp://host:7443`, `…:namespace`,
 * `pulumi config set --secret containerd-restore:tls '{"ca":…,"cert":…,"key":…}'`
 * (or `--secret --path containerd-restore:tls.key …`), `…:insecure true`.
 */
export const CONFIG_NAMESPACE = "containerd-restore";

/**
 * `args` with the daemon fields a resource leaves out taken from stack config
 * ({@link CONFIG_NAMESPACE}); an explicit input always wins. `tls` and `insecure`
 * from config belong to the config's address: a resource that names its own
 * `address` gets neither from config. Read in the program (a dynamic provider's
 * process cannot read stack config).
 */
export function withDaemonDefaults<T extends DaemonArgs>(args: T): T {
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  const ownAddress = args.address !== undefined && args.address !== null;
  const pick = <V>(given: V | undefined, fromConfig: () => V | undefined): V | undefined => (given !== undefined && given !== null ? given : fromConfig());
  const merged: T = {
    ...args,
    address: pick(args.address, () => config.get("address")),
    namespace: pick(args.namespace, () => config.get("namespace")),
    tls: pick(args.tls, () => (ownAddress ? undefined : config.getSecretObject<DaemonTls>("tls"))),
    insecure: pick(args.insecure, () => (ownAddress ? undefined : config.getBoolean("insecure"))),
  };
  for (const key of ["address", "namespace", "tls", "insecure"] as const) if (merged[key] === undefined) delete merged[key];
  return merged;
}

/** A copy's endpoint with the daemon defaults from stack config (see {@link withDaemonDefaults}). */
export function endpointWithDefaults<T extends DaemonArgs>(endpoint: pulumi.Input<T>): pulumi.Output<unknown> {
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  const defaults = { address: config.get("address"), namespace: config.get("namespace"), tls: config.getSecretObject<DaemonTls>("tls"), insecure: config.getBoolean("insecure") };
  return pulumi.output(endpoint).apply((e: DaemonArgs & Record<string, unknown>) => {
    const own = e?.address !== undefined && e?.address !== null;
    const merged: Record<string, unknown> = { ...e };
    if (merged.address === undefined && defaults.address !== undefined) merged.address = defaults.address;
    if (merged.namespace === undefined && defaults.namespace !== undefined) merged.namespace = defaults.namespace;
    if (!own && merged.tls === undefined && defaults.tls !== undefined) merged.tls = defaults.tls;
    if (!own && merged.insecure === undefined && defaults.insecure !== undefined) merged.insecure = defaults.insecure;
    return pulumi.output(merged);
  });
}
