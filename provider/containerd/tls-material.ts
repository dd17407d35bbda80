import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";

/** TLS material as given: PEM strings. */
export interface TlsMaterialInput {
  ca?: string;
  cert?: string;
  key?: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** The PEM blocks of `text` by label (`CERTIFICATE`, `PRIVATE KEY`, `EC PRIVATE KEY`…). */
function pemBlocks(text: string): { label: string; pem: string }[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1], pem: m[0] }));
}

const isKeyLabel = (label: string): boolean => /PRIVATE KEY$/.test(label);

/** The first sentence of a node:crypto / OpenSSL error, without the material. */
const why = (err: unknown): string => String((err as Error).message ?? err).split("\n")[0].slice(0, 200);

function certificates(field: string, text: string, problems: string[]): X509Certificate[] {
  const blocks = pemBlocks(text);
  if (blocks.some((b) => isKeyLabel(b.label))) {
    problems.push(`${field} holds a private key, not a certificate: are ${field} and tls.key swapped? ${field} must be PEM certificate(s)`);
    return [];
  }
  const certs = blocks.filter((b) => b.label === "CERTIFICATE");
  if (certs.length === 0) {
    problems.push(`${field} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`);
    return [];
  }
  const parsed: X509Certificate[] = [];
  certs.forEach((block, i) => {
    try {
      parsed.push(new X509Certificate(block.pem));
    } catch (err) {
      problems.push(`${field}${certs.length > 1 ? ` (certificate ${i + 1} of ${certs.length})` : ""} is not a valid certificate (corrupted?): ${why(err)}`);
    }
  });
  return parsed;
}

function privateKey(text: string, problems: string[]): KeyObject | undefined {
  const blocks = pemBlocks(text);
  const keys = blocks.filter((b) => isKeyLabel(b.label));
  if (keys.length === 0) {
    problems.push(
      blocks.some((b) => b.label === "CERTIFICATE")
        ? "tls.key holds a certificate, not a private key: are tls.key and tls.cert swapped? tls.key must be the client's PEM private key"
        : 'tls.key is not a PEM private key (no "-----BEGIN … PRIVATE KEY-----" block)',
    );
    return undefined;
  }
  if (keys[0].label === "ENCRYPTED PRIVATE KEY" || /Proc-Type: 4,ENCRYPTED/.test(keys[0].pem)) {
    problems.push("tls.key is encrypted with a passphrase: give the unencrypted key (as a secret)");
    return undefined;
  }
  try {
    return createPrivateKey(keys[0].pem);
  } catch (err) {
    problems.push(`tls.key is not a valid private key (corrupted?): ${why(err)}`);
    return undefined;
  }
}

function validity(field: string, cert: X509Certificate, now: number, problems: string[]): void {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (Number.isFinite(to) && to < now) problems.push(`${field} expired on ${new Date(to).toISOString()}`);
  else if (Number.isFinite(from) && from > now) problems.push(`${field} is not valid before ${new Date(from).toISOString()}`);
}

/**
 * What is wrong with TLS material, checked with node:crypto before any
 * connection: each of ca, cert and key parses as what it claims to be (a key
 * given as a certificate and the reverse are "swapped"), the key is the
 * certificate's, and the certificates are within their validity. Messages name
 * the field (`tls.ca`, `tls.cert`, `tls.key`) and never quote the material
 * (not even a subject: the material is a secret).
 * Empty when all is well.
 */
export function tlsMaterialProblems(tls: TlsMaterialInput, now = Date.now()): string[] {
  const problems: string[] = [];
  if (tls.ca) for (const ca of certificates("tls.ca", tls.ca, problems)) validity("tls.ca", ca, now, problems);
  const leaf = tls.cert ? certificates("tls.cert", tls.cert, problems)[0] : undefined;
  if (leaf) validity("tls.cert", leaf, now, problems);
  const key = tls.key ? privateKey(tls.key, problems) : undefined;
  if (leaf && key) {
    let matches = false;
    try {
      matches = leaf.checkPrivateKey(key);
    } catch {
      matches = false;
    }
    if (!matches) {
      problems.push(`tls.key is not the private key of tls.cert: give the key the client certificate was issued for`);
    }
  }
  return problems;
}
