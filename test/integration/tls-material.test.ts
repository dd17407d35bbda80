/**
 * Malformed TLS material (issue 8, item 8) is found before any connection: the
 * providers' check reports a failure on the `tls` property (RestoredContainer)
 * or `source.tls`/`target.tls` (CheckpointCopy) whose reason names the field and
 * never quotes the material, and the library's connect() throws a typed
 * ContainerdError (invalid-argument) instead of OpenSSL's raw error. Material
 * made with openssl at test time; no daemon is involved.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { ContainerdError, connect } from "../../provider/index";
import { check as checkCopy } from "../../provider/pulumi/copy";
import { check } from "../../provider/pulumi/restored-container";
import { generateTlsMaterial, type TlsMaterial } from "../harness";

let material: TlsMaterial;
type Tls = { ca: string; cert: string; key: string };
let good: Tls;
const cases: [string, () => Tls, RegExp][] = [];

before(async () => {
  material = await generateTlsMaterial();
  good = material.clientTls();
});
after(() => material?.remove());

const corruptLine = (pem: string): string => {
  const lines = pem.split("\n");
  lines[2] = lines[2].split("").reverse().join("");
  return lines.join("\n");
};

cases.push(
  ["key and certificate swapped", () => ({ ...good, cert: good.key, key: good.cert }), /tls\.cert holds a private key, not a certificate: are tls\.cert and tls\.key swapped\?/],
  ["a key that is not the certificate's (another client's)", () => ({ ...good, key: material.otherClient.keyPem }), /tls\.key is not the private key of tls\.cert/],
  ["a corrupted certificate", () => ({ ...good, cert: corruptLine(good.cert) }), /tls\.cert is not a valid certificate \(corrupted\?\)/],
  ["a corrupted key", () => ({ ...good, key: corruptLine(good.key) }), /tls\.key is not a valid private key \(corrupted\?\)|tls\.key is not the private key of tls\.cert/],
  ["the CA given the CA's key", () => ({ ...good, ca: material.ca.keyPem }), /tls\.ca holds a private key, not a certificate/],
  ["text that is no PEM at all", () => ({ ...good, cert: "not a certificate" }), /tls\.cert is not a PEM certificate/],
  ["an encrypted key", () => ({ ...good, key: encrypted(good.key) }), /tls\.key is encrypted with a passphrase/],
);

/** `key` encrypted with a passphrase (openssl pkcs8 -topk8 -v2 aes256). */
function encrypted(key: string): string {
  const file = path.join(material.dir, "plain.key");
  fs.writeFileSync(file, key);
  return execFileSync("openssl", ["pkcs8", "-topk8", "-v2", "aes256", "-in", file, "-passout", "pass:secret"], { encoding: "utf8" });
}

/** Every base64 body line of the material involved: none may appear in a reason or message. */
function assertNoMaterial(text: string, tls: Tls): void {
  for (const pem of [tls.ca, tls.cert, tls.key, good.key, good.cert]) {
    for (const line of pem.split("\n").filter((l) => l.length >= 16 && !l.startsWith("-----"))) assert.ok(!text.includes(line), `no PEM line in ${JSON.stringify(text.slice(0, 80))}…`);
  }
}

describe("tls material at check", () => {
  test("good material passes", async () => {
    // Nothing listens on port 1: the failure, if any, is the connection's (on address), never tls.
    const result = await check({}, { checkpoint: "checkpoint/x:v1", address: "tcp://127.0.0.1:1", tls: good, resourceName: "tls" });
    assert.ok(!(result.failures ?? []).some((f) => f.property.startsWith("tls")), JSON.stringify(result.failures));
  });

  for (const [name, make, reason] of cases) {
    test(`${name}: RestoredContainer check fails on tls, CheckpointCopy on target.tls, connect throws invalid-argument`, async () => {
      const tls = make();
      const result = await check({}, { checkpoint: "checkpoint/x:v1", address: "tcp://127.0.0.1:1", tls, resourceName: "tls" });
      const failure = result.failures?.find((f) => f.property === "tls");
      assert.ok(failure, `a failure on tls: ${JSON.stringify(result.failures)}`);
      assert.match(failure.reason, reason);
      assertNoMaterial(failure.reason, tls);

      const copy = await checkCopy({}, {
        source: { address: "unix:///nonexistent.sock", ref: "checkpoint/x:v1" },
        target: { address: "tcp://127.0.0.1:1", tls },
        resourceName: "tls",
      });
      const copyFailure = copy.failures?.find((f) => f.property === "target.tls");
      assert.ok(copyFailure, `a failure on target.tls: ${JSON.stringify(copy.failures)}`);
      assert.match(copyFailure.reason, reason);

      let thrown: unknown;
      try {
        connect("tcp://127.0.0.1:1", { tls }).close();
      } catch (err) {
        thrown = err;
      }
      assert.ok(thrown instanceof ContainerdError, `a ContainerdError, not OpenSSL's: ${thrown}`);
      assert.equal(thrown.code, "invalid-argument");
      assert.match(thrown.message, reason);
      assertNoMaterial(thrown.message, tls);
    });
  }
});
