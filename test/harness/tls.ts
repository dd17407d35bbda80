/**
 * TLS material made at test time with openssl (a CA, a server certificate for
 * 127.0.0.1 and localhost, a client certificate, and an unrelated second CA with
 * its own client certificate), and a mutual-TLS gateway in front of a unix
 * socket.
 *
 * Why a gateway: containerd's own `[grpc] tcp_address` serves only the services
 * that register on TCP, and in containerd 1.6 (and 1.7, 2.x) that is the CRI
 * plugin alone; `containerd.services.*` (version, images, content, tasks…)
 * answer UNIMPLEMENTED there. A `tcp://` containerd is therefore reached through
 * a TLS-terminating proxy in front of its unix socket (stunnel, ghostunnel…),
 * which is what {@link startTlsGateway} is.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import { runProcess } from "./proc";

/** A PEM certificate and its private key, as strings and as files. */
export interface CertKeyPair {
  certPem: string;
  keyPem: string;
  certPath: string;
  keyPath: string;
}

/** Everything {@link generateTlsMaterial} made, in one temp dir. */
export interface TlsMaterial {
  /** The temp dir holding every file. */
  readonly dir: string;
  /** The CA that signed `server` and `client`. */
  readonly ca: CertKeyPair;
  /** Server certificate (CN localhost; SAN IP:127.0.0.1, DNS:localhost; serverAuth), signed by `ca`. */
  readonly server: CertKeyPair;
  /** Client certificate (CN containerd-restore-test-client; clientAuth), signed by `ca`. */
  readonly client: CertKeyPair;
  /** A second CA, unrelated to `ca` (for wrong-CA tests). */
  readonly otherCa: CertKeyPair;
  /** A client certificate signed by `otherCa` (a stranger to the daemon). */
  readonly otherClient: CertKeyPair;
  /** `{ ca, cert, key }` for `connect(…, { tls })`: the right CA and the right client certificate. */
  clientTls(): { ca: string; cert: string; key: string };
  /** Removes the temp dir. Idempotent. */
  remove(): void;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const result = await runProcess("openssl", args.map((a) => (a.startsWith("@") ? path.join(cwd, a.slice(1)) : a)), {
    timeoutMs: 60_000,
  });
  if (result.code !== 0) {
    throw new Error(`openssl ${args.join(" ")} failed (exit ${result.code}): ${result.stderr.toString("utf8").trim()}`);
  }
}

function pair(dir: string, name: string): CertKeyPair {
  const certPath = path.join(dir, `${name}.crt`);
  const keyPath = path.join(dir, `${name}.key`);
  return { certPath, keyPath, certPem: fs.readFileSync(certPath, "utf8"), keyPem: fs.readFileSync(keyPath, "utf8") };
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
// The client key is RSA: a long PEM whose base64 lines are easy to look for in state and logs.
const RSA_KEY = ["-newkey", "rsa:2048"];

async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(
    [
      "req", "-x509", "-new", "-nodes", ...EC_KEY,
      "-keyout", `@${name}.key`, "-out", `@${name}.crt`,
      "-subj", `/CN=${cn}`, "-days", "2",
      "-addext", "basicConstraints=critical,CA:TRUE",
      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
}

async function makeLeaf(dir: string, name: string, ca: string, cn: string, extensions: string[], key: string[]): Promise<void> {
  fs.writeFileSync(path.join(dir, `${name}.ext`), extensions.join("\n") + "\n");
  await openssl(["req", "-new", "-nodes", ...key, "-keyout", `@${name}.key`, "-out", `@${name}.csr`, "-subj", `/CN=${cn}`], dir);
  await openssl(
    [
      "x509", "-req", "-in", `@${name}.csr`, "-CA", `@${ca}.crt`, "-CAkey", `@${ca}.key`,
      "-set_serial", `0x${Buffer.from(name).toString("hex")}`, "-days", "2",
      "-extfile", `@${name}.ext`, "-out", `@${name}.crt`,
    ],
    dir,
  );
}

/**
 * Generates fresh TLS material with openssl in a new temp dir (about a second).
 * Certificates are valid for two days from now.
 */
export async function generateTlsMaterial(): Promise<TlsMaterial> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tls-"));
  fs.chmodSync(dir, 0o700);
  try {
    await Promise.all([makeCa(dir, "ca", "containerd-restore test CA"), makeCa(dir, "other-ca", "unrelated test CA")]);
    const leaf = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"];
    await Promise.all([
      makeLeaf(dir, "server", "ca", "localhost", [...leaf, "extendedKeyUsage=serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost"], EC_KEY),
      makeLeaf(dir, "client", "ca", "containerd-restore-test-client", [...leaf, "extendedKeyUsage=clientAuth"], RSA_KEY),
      makeLeaf(dir, "other-client", "other-ca", "stranger", [...leaf, "extendedKeyUsage=clientAuth"], RSA_KEY),
    ]);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const client = pair(dir, "client");
  const ca = pair(dir, "ca");
  return {
    dir,
    ca,
    server: pair(dir, "server"),
    client,
    otherCa: pair(dir, "other-ca"),
    otherClient: pair(dir, "other-client"),
    clientTls: () => ({ ca: ca.certPem, cert: client.certPem, key: client.keyPem }),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** A free loopback TCP port: bound on 127.0.0.1:0, read, closed. */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A running {@link startTlsGateway}. */
export interface TlsGateway {
  /** `tcp://127.0.0.1:PORT`. */
  readonly address: string;
  readonly port: number;
  /** TLS handshakes the gateway refused (e.g. no or untrusted client certificate), newest last. */
  readonly refusals: readonly string[];
  /** Stops listening and drops every open connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * A mutual-TLS gateway on 127.0.0.1 (ephemeral port) that forwards each
 * connection, once the client presented a certificate signed by `material.ca`,
 * to the unix socket `socketPath` (containerd's gRPC socket: HTTP/2 flows
 * through unchanged). Same policy as containerd's own TCP TLS with
 * `tcp_tls_ca`: RequireAndVerifyClientCert.
 */
export async function startTlsGateway(material: TlsMaterial, socketPath: string): Promise<TlsGateway> {
  const open = new Set<net.Socket>();
  const refusals: string[] = [];
  const server = tls.createServer(
    {
      cert: material.server.certPem,
      key: material.server.keyPem,
      ca: material.ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ["h2"],
    },
    (client) => {
      const upstream = net.connect(socketPath);
      open.add(client);
      open.add(upstream);
      const done = () => {
        client.destroy();
        upstream.destroy();
        open.delete(client);
        open.delete(upstream);
      };
      client.on("error", done).on("close", done);
      upstream.on("error", done).on("close", done);
      client.pipe(upstream);
      upstream.pipe(client);
    },
  );
  // Node ends the handshake itself (with OpenSSL's alert to the client); just record why.
  server.on("tlsClientError", (err) => void refusals.push(err.message));
  server.on("connection", (socket: net.Socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  server.unref();
  const { port } = server.address() as net.AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: `tcp://127.0.0.1:${port}`,
    port,
    refusals,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy();
        open.clear();
      });
      return closing;
    },
  };
}
