/** One home per rule: the library refuses and the Pulumi schemas report with the same functions. No daemon. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ContainerdError, connect, invalidTlsReason, isPlaintextTcp } from "../../provider/containerd";
import { validateInputs } from "../../provider/pulumi/inputs";
import { autoName, checkpointRefRule, containerIdRule } from "../../provider/pulumi/naming";
import { invalidIdReason, invalidLogPathReason, invalidSignalReason, reservedLabelIn } from "../../provider/restore";
import { generateTlsMaterial, type TlsMaterial } from "../harness/tls";

/** Real PEM (openssl, no root): the TLS rule parses the material too. */
let material: TlsMaterial;
before(async () => void (material = await generateTlsMaterial()));
after(() => material?.remove());

const base = { checkpoint: "checkpoint/app:v1", resourceName: "app" };
const failureOf = (news: Record<string, unknown>) => validateInputs({ ...base, ...news }).failures;

function connectError(address: string, options: Parameters<typeof connect>[1]): ContainerdError {
  try {
    connect(address, options).close();
  } catch (err) {
    assert.ok(err instanceof ContainerdError);
    return err;
  }
  assert.fail("connect accepted it");
}

describe("the TLS rule", () => {
  test("a CA alone (no client certificate) is accepted by connect and by the schema alike", () => {
    const ca = material.ca.certPem;
    assert.equal(invalidTlsReason({ ca }), undefined);
    connect("tcp://127.0.0.1:1", { tls: { ca } }).close();
    assert.deepEqual(failureOf({ address: "tcp://127.0.0.1:1", tls: { ca } }), []);
  });

  test("half a client certificate is refused by both, with the same reason", () => {
    const { ca, cert, key } = material.clientTls();
    const reason = invalidTlsReason({ ca, cert });
    assert.ok(reason);
    assert.ok(connectError("tcp://127.0.0.1:1", { tls: { ca, cert } }).message.endsWith(reason));
    assert.deepEqual(failureOf({ address: "tcp://127.0.0.1:1", tls: { ca, key } }), [{ property: "tls", reason }]);
  });

  test("plaintext tcp:// is one predicate: connect refuses it, check reports it, insecure: true allows both", () => {
    assert.equal(isPlaintextTcp("tcp://h:1", {}), true);
    assert.equal(isPlaintextTcp("tcp://h:1", { insecure: true }), false);
    assert.equal(isPlaintextTcp("unix:///run/c.sock", {}), false);
    assert.match(connectError("tcp://127.0.0.1:1", {}).message, /tcp:\/\/ needs TLS/);
    assert.equal(failureOf({ address: "tcp://127.0.0.1:1" })[0]?.property, "address");
    assert.deepEqual(failureOf({ address: "tcp://127.0.0.1:1", insecure: true }), []);
  });
});

describe("restore input rules", () => {
  test("the schema's failures carry the library's reasons", () => {
    assert.match(failureOf({ name: "a/b" })[0].reason, new RegExp(`name "a/b" ${invalidIdReason("a/b")?.replace(/[()]/g, ".")}`));
    assert.equal(failureOf({ logPath: "rel.log" })[0].reason, `logPath ${invalidLogPathReason("rel.log")}`);
    assert.equal(failureOf({ stopSignal: "SIGNOPE" })[0].reason, `${invalidSignalReason("SIGNOPE")}: use a name like SIGTERM or a number`);
    assert.equal(reservedLabelIn({ team: "a", "containerd-restore/mode": "x" }), "containerd-restore/mode");
    assert.equal(failureOf({ labels: { "containerd-restore/mode": "x" } })[0].property, "labels.containerd-restore/mode");
  });

  test("what the rules accept, the schema accepts", () => {
    assert.equal(invalidLogPathReason("/var/log/c.log"), undefined);
    assert.equal(invalidSignalReason("TERM"), undefined);
    assert.equal(invalidSignalReason("9"), undefined);
    assert.deepEqual(failureOf({ name: "app.v2", logPath: "/var/log/c.log", stopSignal: "SIGINT", labels: { team: "a" } }), []);
  });
});

describe("auto-naming", () => {
  test("one function names containers and checkpoints, each by its rule", () => {
    assert.match(autoName("My App!", undefined, containerIdRule), /^My-App-[0-9a-f]{7}$/);
    assert.match(autoName("My App!", undefined, checkpointRefRule), /^checkpoint\/my-app:[0-9a-f]{8}$/);
    assert.match(autoName("%%%", undefined, containerIdRule), /^restored-[0-9a-f]{7}$/);
    assert.match(autoName("%%%", undefined, checkpointRefRule), /^checkpoint\/checkpoint:[0-9a-f]{8}$/);
  });

  test("a kept name wins; a long name is cut to the limit without a separator before the suffix", () => {
    assert.equal(autoName("app", "app-1234567", containerIdRule), "app-1234567");
    const long = autoName(`${"a".repeat(67)}-${"b".repeat(20)}`, undefined, containerIdRule);
    assert.equal(long.length <= 76, true);
    assert.equal(invalidIdReason(long), undefined);
  });
});
