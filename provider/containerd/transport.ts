/**
 * The transport rules of a daemon connection, shared by `connect` (which refuses)
 * and the Pulumi input schemas (which report): one rule each.
 */
import { tlsMaterialProblems } from "./tls-material";

/**
 * Why `tls` cannot be used: it needs a CA, a client certificate comes with its key
 * (or neither, when the daemon asks for none), and the PEM material must parse and
 * match (node:crypto, so a swapped or corrupt key is named, not an OpenSSL throw).
 */
export function invalidTlsReason(tls: { ca?: string; cert?: string; key?: string }): string | undefined {
  if (!tls.ca || !tls.cert !== !tls.key) {
    return "tls needs ca, and cert and key together (or neither when the daemon asks for no client certificate)";
  }
  const problems = tlsMaterialProblems(tls);
  return problems.length > 0 ? problems.join("; ") : undefined;
}

/** True when `address` would be plaintext TCP: a tcp:// address with neither TLS material nor an explicit insecure: true. */
export function isPlaintextTcp(address: string, options: { tls?: unknown; insecure?: boolean }): boolean {
  return address.startsWith("tcp://") && !options.tls && !options.insecure;
}
