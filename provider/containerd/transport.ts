/**
 * The transport rules of a daemon connection, shared by `connect` (which refuses)
 * and the Pulumi input schemas (which report): one rule each.
 */
/** Why `tls` cannot be used: it needs a CA, and a client certificate comes with its key (or neither, when the daemon asks for none). */
export function invalidTlsReason(tls: { ca?: string; cert?: string; key?: string }): string | undefined {
  if (!tls.ca || !tls.cert !== !tls.key) {
    return "tls needs ca, and cert and key together (or neither when the daemon asks for no client certificate)";
  }
  return undefined;
}

/** True when `address` would be plaintext TCP: a tcp:// address with neither TLS material nor an explicit insecure: true. */
export function isPlaintextTcp(address: string, options: { tls?: unknown; insecure?: boolean }): boolean {
  return address.startsWith("tcp://") && !options.tls && !options.insecure;
}
