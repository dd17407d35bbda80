/**
 * The library over TCP with mutual TLS, against a private containerd: a full
 * restore and teardown through a TLS endpoint; wrong CA, missing or foreign
 * client certificate refused with errors that name the address; plaintext
 * tcp:// refused before any I/O, by connect and at check.
 *
 * Two TCP endpoints (see test/harness/tls.ts): `tcpAddress`, a mutual-TLS
 * gateway in front of the daemon's unix socket, carries containerd's API;
 * `nativeTcpAddress` is containerd's own `[grpc] tcp_address` with
 * `tcp_tls_cert`/`tcp_tls_key`/`tcp_tls_ca`: its TLS is containerd's, but it
 * serves only CRI, never `containerd.services.*`.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { describe, test } from "node:test";
import { ContainerdError, RestoreError, connect, inspect, planRestore, restore, teardown } from "../../provider/index";
import { readBlob } from "../../provider/containerd";
import { check } from "../../provider/pulumi/restored-container";
import { validateInputs } from "../../provider/pulumi/inputs";
import { daemonSuite, generateTlsMaterial, readLog, taskStatus, uniqueId, waitFor, type TlsMaterial } from "../harness";

let material: TlsMaterial;

const suite = daemonSuite({
  daemon: async () => ({ tls: (material = await generateTlsMaterial()) }),
  checkpoints: { counter: { ref: "checkpoint/tls-counter:v1" } },
  // The daemon keeps its own copy of the TLS files.
  tearDown: async () => material?.remove(),
});

const tcp = () => suite.d.tcpAddress!;
const native = () => suite.d.nativeTcpAddress!;
/** Why there is no native endpoint on this daemon (containerd 2.x with CRI disabled), or undefined when there is one. */
const noNative = (): string | undefined =>
  suite.d.behaviour.nativeTcpServes
    ? undefined
    : `containerd ${suite.d.version.text} opens no [grpc] tcp_address endpoint while CRI is disabled ("no tcp grpc services configured"): only the gateway is tested`;

/** The error `promise` rejects with (it must reject). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  assert.fail("expected a rejection");
}

/** The error `fn` throws synchronously (it must throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  assert.fail("expected a throw");
}

/** A loopback TCP listener that counts the connections it gets (proof of "no I/O"). */
async function countingListener(): Promise<{ address: string; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = net.createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    address: `tcp://127.0.0.1:${port}`,
    connections: () => count,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Asserts a refused connection: ContainerdError `unavailable` from the call, RestoreError `daemon-unreachable` from a plan, both naming the address. */
async function assertRefused(address: string, tls: { ca: string; cert?: string; key?: string }, why: RegExp): Promise<void> {
  const client = connect(address, { namespace: suite.d.namespace, tls });
  try {
    const err = await rejection(client.call("version.Version", {}));
    assert.ok(err instanceof ContainerdError, `a ContainerdError, got ${err}`);
    assert.equal(err.code, "unavailable");
    assert.equal(err.address, address);
    assert.ok(err.message.startsWith(`cannot reach containerd at ${address}: version.Version: `), err.message);
    assert.match(err.message, why);

    const planErr = await rejection(planRestore(client, suite.checkpoints.counter.ref));
    assert.ok(planErr instanceof RestoreError, `a RestoreError, got ${planErr}`);
    assert.equal(planErr.code, "daemon-unreachable");
    assert.ok(planErr.message.includes(`cannot reach containerd at ${address}`), planErr.message);
    assert.match(planErr.message, why);
  } finally {
    client.close();
  }
}

describe("the private daemon's TCP endpoints", () => {
  test("both listen on loopback only; containerd's own endpoint is configured with tcp_tls_ca, tcp_tls_cert, tcp_tls_key", (t) => {
    assert.match(tcp(), /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const why = noNative();
    if (why) {
      t.diagnostic(why);
      assert.equal(suite.d.nativeTcpAddress, undefined);
      assert.doesNotMatch(fs.readFileSync(path.join(suite.d.dir, "config.toml"), "utf8"), /tcp_address/);
      return;
    }
    assert.match(native(), /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(tcp(), native());
    const config = fs.readFileSync(path.join(suite.d.dir, "config.toml"), "utf8");
    assert.match(config, new RegExp(`tcp_address = "${native().slice("tcp://".length)}"`));
    for (const key of ["tcp_tls_ca", "tcp_tls_cert", "tcp_tls_key"]) {
      const file = new RegExp(`${key} = "([^"]+)"`).exec(config)?.[1];
      assert.ok(file && fs.existsSync(file) && file.startsWith(suite.d.dir), `${key} names a file in the daemon dir: ${file}`);
    }
    assert.match(fs.readFileSync(suite.d.daemonLog, "utf8"), /setting up tls on tcp GRPC services/);
  });
});

describe("mutual TLS with the right CA and client certificate", () => {
  test("version answers like on the unix socket; with serverName too", async () => {
    const unix = connect(suite.d.address, { namespace: suite.d.namespace });
    const overTls = connect(tcp(), { namespace: suite.d.namespace, tls: material.clientTls() });
    const named = connect(tcp(), { namespace: suite.d.namespace, tls: { ...material.clientTls(), serverName: "localhost" } });
    try {
      const expected = await unix.call("version.Version", {});
      assert.deepEqual(await overTls.call("version.Version", {}), expected);
      assert.deepEqual(await named.call("version.Version", {}), expected);
    } finally {
      unix.close();
      overTls.close();
      named.close();
    }
  });

  test("the content streams (the client's own HTTP/2, not grpc-js) go over the same TLS: a blob reads with and without serverName; another CA is refused there too", async () => {
    const unix = connect(suite.d.address, { namespace: suite.d.namespace });
    const overTls = connect(tcp(), { namespace: suite.d.namespace, tls: material.clientTls() });
    const named = connect(tcp(), { namespace: suite.d.namespace, tls: { ...material.clientTls(), serverName: "localhost" } });
    const wrong = connect(tcp(), { namespace: suite.d.namespace, tls: { ...material.clientTls(), ca: material.otherCa.certPem } });
    try {
      const { image } = await unix.call("images.Get", { name: suite.checkpoints.counter.ref });
      const { digest, size } = image.target;
      const expected = await readBlob(unix, digest, size, { size });
      assert.ok((await readBlob(overTls, digest, size, { size })).equals(expected));
      assert.ok((await readBlob(named, digest, size, { size })).equals(expected));
      const err = await rejection(readBlob(wrong, digest, size, { size }));
      assert.ok(err instanceof ContainerdError && err.code === "unavailable", String(err));
      assert.match(err.message, new RegExp(`cannot reach containerd at ${tcp()}: .*(certificate|verify)`));
    } finally {
      for (const c of [unix, overTls, named, wrong]) c.close();
    }
  });

  test("plan, live restore, inspect and teardown run over TLS; the counter continues; nothing is left", async () => {
    const client = connect(tcp(), { namespace: suite.d.namespace, tls: material.clientTls() });
    try {
      const plan = await planRestore(client, suite.checkpoints.counter.ref);
      assert.equal(plan.checkpoint.digest, suite.checkpoints.counter.digest);
      assert.ok(plan.criuImage && plan.criuImage.size > 0);

      const id = uniqueId("tls");
      const logPath = path.join(suite.d.logDir, `${id}.log`);
      const result = await restore(client, plan, { id, logPath });
      assert.ok(result.pid > 0);
      assert.equal(await taskStatus(suite.d, id), "RUNNING", "ctr on the unix socket sees the task restored over TLS");
      const counts = await waitFor(() => {
        const n = readLog(logPath).filter((l) => /^\d+$/.test(l)).map(Number);
        return n.length >= 2 ? n : undefined;
      }, 10_000, () => `counts in ${logPath}`);
      assert.ok(counts[0] > suite.checkpoints.counter.countBefore && counts[0] <= suite.checkpoints.counter.countAfter + 1, `resumed at ${counts[0]}`);
      assert.equal((await inspect(client, id))?.status, "running");

      const down = await teardown(client, id, { graceMs: 300 });
      assert.equal(down.existed, true);
      assert.equal(await inspect(client, id), undefined);
    } finally {
      client.close();
    }
    await suite.assertUnchanged("after a restore and teardown over TLS");
  });

  test("the provider's check plans over TLS (read-only)", async () => {
    const result = await check({}, {
      checkpoint: suite.checkpoints.counter.ref,
      address: tcp(),
      namespace: suite.d.namespace,
      resourceName: "tls-check",
      tls: material.clientTls(),
    });
    assert.deepEqual(result.failures, undefined);
    assert.equal(result.inputs?.checkpointDigest, suite.checkpoints.counter.digest);
    await suite.assertUnchanged("after check", { settleMs: 0 });
  });

  test("containerd's own tcp_address completes the TLS handshake but serves no containerd API: a clear error naming the address", async (t) => {
    const why = noNative();
    if (why) return t.skip(why);
    await assertRefused(native(), material.clientTls(), /unknown service containerd\.services\.[a-z]+\.v1\.[A-Za-z]+: this endpoint does not serve containerd's API/);
    const result = await check({}, { checkpoint: suite.checkpoints.counter.ref, address: native(), namespace: suite.d.namespace, resourceName: "r", tls: material.clientTls() });
    assert.equal(result.failures?.[0]?.property, "address");
    assert.match(result.failures![0].reason, /does not serve containerd's API/);
  });
});

describe("refused TLS", () => {
  test("a server certificate from another CA is refused by the client, with a clear error naming the address", async (t) => {
    const wrongCa = { ...material.clientTls(), ca: material.otherCa.certPem };
    // The gateway sends its chain (CA included), containerd only its leaf: OpenSSL words the two differently.
    await assertRefused(tcp(), wrongCa, /self-signed certificate in certificate chain|unable to verify/);
    if (noNative()) t.diagnostic(noNative()!);
    else await assertRefused(native(), wrongCa, /unable to verify the first certificate/);
    // At check, the failure is on `address`.
    const result = await check({}, { checkpoint: suite.checkpoints.counter.ref, address: tcp(), namespace: suite.d.namespace, resourceName: "r", tls: wrongCa });
    assert.equal(result.failures?.[0]?.property, "address");
    assert.match(result.failures![0].reason, new RegExp(`cannot reach containerd at ${tcp()}: .*certificate`));
  });

  test("without a client certificate, the daemon refuses the connection", async (t) => {
    const caOnly = { ca: material.ca.certPem };
    // containerd (Go, RequireAndVerifyClientCert) answers with a bad_certificate alert.
    if (noNative()) t.diagnostic(noNative()!);
    else await assertRefused(native(), caOnly, /alert bad certificate|alert certificate required/);
    await assertRefused(tcp(), caOnly, /alert certificate required|alert bad certificate/);
  });

  test("a client certificate from another CA is refused by the daemon", async (t) => {
    const stranger = { ca: material.ca.certPem, cert: material.otherClient.certPem, key: material.otherClient.keyPem };
    // Go's TLS stack words it by its own version: bad_certificate (Go 1.19, Debian's 1.6.20),
    // unknown_ca (Go 1.26, the 1.7 and 2.x builds).
    if (noNative()) t.diagnostic(noNative()!);
    else await assertRefused(native(), stranger, /alert bad certificate|alert unknown ca/);
    // The gateway (Node) drops the connection without an alert: the client only sees it fail.
    await assertRefused(tcp(), stranger, /No connection established/);
  });

  test("half a client certificate (cert without key) is refused before any I/O", () => {
    const err = thrown(() => connect(tcp(), { tls: { ca: material.ca.certPem, cert: material.client.certPem } }));
    assert.ok(err instanceof ContainerdError, String(err));
    assert.equal(err.code, "invalid-argument");
    assert.match(err.message, /cert and key together/);
    assert.ok(err.message.includes(tcp()));
  });
});

describe("plaintext tcp://", () => {
  test("without insecure: true, connect refuses it before any I/O", async () => {
    const listener = await countingListener();
    try {
      const err = thrown(() => connect(listener.address, { namespace: suite.d.namespace }));
      assert.ok(err instanceof ContainerdError, String(err));
      assert.equal(err.code, "invalid-argument");
      assert.equal(err.address, listener.address);
      assert.ok(err.message.includes(`address "${listener.address}"`), err.message);
      assert.match(err.message, /TLS material|insecure: true/);

      // insecure: true is accepted, and still connects lazily.
      const lazy = connect(listener.address, { namespace: suite.d.namespace, insecure: true });
      await new Promise((resolve) => setTimeout(resolve, 200));
      lazy.close();
      assert.equal(listener.connections(), 0, "nothing was dialled");
    } finally {
      await listener.close();
    }
  });

  test("at check, validateInputs fails on property address; with tls or insecure it passes", async () => {
    const base = { checkpoint: suite.checkpoints.counter.ref, address: tcp(), namespace: suite.d.namespace, resourceName: "plain" };
    const refused = validateInputs(base);
    assert.equal(refused.inputs, undefined);
    assert.equal(refused.failures.length, 1);
    assert.equal(refused.failures[0].property, "address");
    assert.match(refused.failures[0].reason, /plaintext TCP/);
    assert.ok(refused.failures[0].reason.includes(tcp()));

    assert.deepEqual(validateInputs({ ...base, insecure: true }).failures, []);
    assert.deepEqual(validateInputs({ ...base, tls: material.clientTls() }).failures, []);

    // The provider's check says the same, without dialling.
    const listener = await countingListener();
    try {
      const result = await check({}, { ...base, address: listener.address });
      assert.equal(result.failures?.[0]?.property, "address");
      assert.equal(listener.connections(), 0);
    } finally {
      await listener.close();
    }
  });
});

test("the daemon holds exactly what it held before the TLS tests", async () => {
  await suite.assertUnchanged("after the TLS tests");
});
